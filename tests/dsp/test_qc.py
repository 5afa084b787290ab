"""QC metrics: known answers, non-finite samples, block-wise equals whole-signal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit.config.params import QCParams
from fieldkit.dsp.qc import QCAccumulator, qc_metrics
from fieldkit.errors import ValidationError
from fieldkit.testing import signals

SR = 8000


def test_tone_with_dc_known_answers():
    x = signals.with_dc(signals.tone(100.0, 1.0, SR, amplitude=0.5), 0.1)
    stats = qc_metrics(x, SR)
    np.testing.assert_allclose(stats.peak_dbfs, 20 * np.log10(0.6), atol=1e-5)
    np.testing.assert_allclose(stats.rms_dbfs, 10 * np.log10(0.125 + 0.01), atol=1e-5)
    np.testing.assert_allclose(stats.dc_offset, 0.1, atol=1e-6)
    assert stats.silent_fraction.tolist() == [0.0] and stats.frames == SR


def test_silence_fractions():
    x = np.concatenate([signals.silence(0.5, SR), signals.white_noise(0.25, SR, rms=1e-4),
                        signals.white_noise(0.25, SR, rms=0.1)])
    stats = qc_metrics(x, SR, QCParams(frame_s=0.05, silence_threshold_dbfs=-60))
    assert stats.digital_silence_fraction.tolist() == [0.5]  # 10 of 20 frames are exact zeros
    assert stats.silent_fraction.tolist() == [0.75]  # plus 5 frames at -80 dBFS
    zeros = qc_metrics(signals.silence(0.1, SR, channels=2), SR)
    assert zeros.peak_dbfs.tolist() == [-np.inf, -np.inf]
    assert zeros.digital_silence_fraction.tolist() == [1.0, 1.0]


def test_a_shorter_last_frame_counts_as_a_frame():
    x = np.concatenate([np.full(400, 0.5, np.float32), np.zeros(100, np.float32)])
    stats = qc_metrics(x, SR, QCParams(frame_s=0.05))  # 400-sample frames: one full, one short
    assert stats.digital_silence_fraction.tolist() == [0.5]


def test_nan_and_inf_are_counted_and_excluded():
    x = np.array([[0.5, np.nan, -0.5, np.inf, -np.inf, 0.0]], np.float32)
    stats = qc_metrics(x, SR)
    assert stats.nan_count.tolist() == [1] and stats.inf_count.tolist() == [2]
    np.testing.assert_allclose(stats.peak_dbfs, 20 * np.log10(0.5))
    np.testing.assert_allclose(stats.dc_offset, 0.0)
    np.testing.assert_allclose(stats.rms_dbfs, 10 * np.log10(0.5 / 3))
    assert stats.silent_fraction.tolist() == [0.0]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4000), max_size=10), st.floats(0.001, 0.2))
def test_block_wise_equals_whole_signal(cuts, frame_s):
    x = np.stack([signals.white_noise(0.5, SR, rms=0.01, seed=5),
                  signals.chirp(100, 3000, 0.5, SR)])
    x[0, 1000:2500] = 0.0
    x[1, 17] = np.nan
    params = QCParams(frame_s=frame_s, silence_threshold_dbfs=-45.0)
    whole = qc_metrics(x, SR, params)
    acc = QCAccumulator(SR, 2, params)
    bounds = [0, *sorted(cuts), 4000]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        acc.update(x[:, a:b])
    blocked = acc.result()
    for field in ("frames", "nan_count", "inf_count", "peak_dbfs", "silent_fraction",
                  "digital_silence_fraction"):
        np.testing.assert_array_equal(getattr(blocked, field), getattr(whole, field))
    np.testing.assert_allclose(blocked.rms_dbfs, whole.rms_dbfs, rtol=1e-12)
    np.testing.assert_allclose(blocked.dc_offset, whole.dc_offset, rtol=1e-9, atol=1e-15)


def test_integer_samples_are_rejected_with_a_hint():
    with pytest.raises(ValidationError, match="bitdepth"):
        qc_metrics(np.zeros(10, np.int16), SR)
