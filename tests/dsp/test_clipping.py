"""Clipping detection is exact on signals with known clipping, whole or block by block."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit.config.params import ClippingParams
from fieldkit.dsp.clipping import ClipCounter, clip_thresholds, detect_clipping
from fieldkit.errors import ValidationError
from fieldkit.testing import signals

FORMATS = ["int16", "int24", "int32", "float32", "float64"]


def _detect(known: signals.KnownClipping, min_run: int = 1):
    return detect_clipping(known.samples, known.bits, known.left_justified,
                           ClippingParams(min_run=min_run))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("min_run", [1, 2, 5, 40])
def test_clipped_tone_is_counted_exactly(fmt, min_run):
    known = signals.clipped_tone(50.0, 1.0, 8000, amplitude=[1.5, 1.0, 0.9, 1.01], fmt=fmt)
    stats = _detect(known, min_run)
    np.testing.assert_array_equal(stats.clipped_samples, known.clipped_per_channel(min_run))
    np.testing.assert_array_equal(stats.n_runs, known.n_runs(min_run))
    np.testing.assert_array_equal(stats.longest_run, known.longest_run(min_run))
    assert stats.frames == 8000
    np.testing.assert_allclose(stats.clipped_fraction, known.clipped_per_channel(min_run) / 8000)
    if min_run == 1:
        assert known.clipped_per_channel()[0] > 4000 and known.clipped_per_channel()[2] == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_bursts_at_known_places(fmt):
    bursts = [(0, 3, 1), (100, 1, -1), (200, 7, 1), (207, 2, -1), (999, 1, 1)]
    known = signals.clip_bursts(1000, bursts, fmt=fmt)
    stats = _detect(known)
    assert known.runs == (((0, 3), (100, 1), (200, 9), (999, 1)),)
    assert stats.clipped_samples.tolist() == [14] and stats.n_runs.tolist() == [4]
    assert stats.longest_run.tolist() == [9]
    assert _detect(known, min_run=3).clipped_samples.tolist() == [12]


def test_24_bit_right_justified_and_int32():
    right = signals.clip_bursts(500, [(10, 4, 1), (20, 2, -1)], fmt="int24", left_justified=False)
    assert right.samples.max() == 2**23 - 1 and right.samples.min() == -(2**23)
    assert detect_clipping(right.samples, 24, False).clipped_samples.tolist() == [6]
    # Read with the wrong justification, right-justified 24-bit never reaches 32-bit full scale.
    assert detect_clipping(right.samples).clipped_samples.tolist() == [0]


def test_thresholds_table():
    assert clip_thresholds("int16") == clip_thresholds(np.int16)
    t = clip_thresholds("int16")
    assert (t.high, t.low) == (32767, -32768)
    t = clip_thresholds("int32", 24)
    assert (t.high, t.low) == ((2**23 - 1) * 256, -(2**31))
    t = clip_thresholds("int32", 24, left_justified=False)
    assert (t.high, t.low) == (2**23 - 1, -(2**23))
    t = clip_thresholds("int32")
    assert (t.high, t.low) == (2**31 - 1, -(2**31))
    assert clip_thresholds("float32").high == 1.0
    t = clip_thresholds("int16", fraction=0.999)  # the perf-anchor floor's threshold
    assert (t.high, t.low) == (32736, -32736)


def test_fraction_lowers_the_threshold():
    x = np.array([32736, 32735, -32736, -32735, 0], np.int16)
    stats = detect_clipping(x, params=ClippingParams(fraction=0.999))
    assert stats.clipped_samples.tolist() == [2]


def test_float_values_beyond_full_scale_and_nan():
    x = np.array([1.0, 1.5, -1.0, -0.999, np.nan, np.inf], np.float32)
    stats = detect_clipping(x)
    assert stats.clipped_samples.tolist() == [4] and stats.n_runs.tolist() == [2]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1999), st.integers(1, 60), st.sampled_from([-1, 1])),
             max_size=12),
    st.lists(st.integers(0, 2000), max_size=10),
    st.integers(1, 8),
    st.sampled_from(FORMATS),
)
def test_block_wise_equals_whole_signal_for_any_split(bursts, cuts, min_run, fmt):
    known = signals.clip_bursts(2000, bursts, fmt=fmt)
    x = np.stack([known.samples, known.samples[::-1]])
    params = ClippingParams(min_run=min_run)
    whole = detect_clipping(x, known.bits, params=params)
    counter = ClipCounter(x.dtype, 2, known.bits, params=params)
    bounds = [0, *sorted(cuts), 2000]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        counter.update(x[:, a:b])  # includes empty blocks
    blocked = counter.result()
    for field in ("clipped_samples", "n_runs", "longest_run"):
        np.testing.assert_array_equal(getattr(blocked, field), getattr(whole, field))
    assert blocked.frames == whole.frames == 2000
    np.testing.assert_array_equal(whole.clipped_samples[0], known.clipped_per_channel(min_run)[0])


def test_result_mid_stream_does_not_change_the_state():
    x = np.array([32767] * 5, np.int16)
    counter = ClipCounter("int16", params=ClippingParams(min_run=3))
    counter.update(x[:2])
    assert counter.result().clipped_samples.tolist() == [0]  # run of 2 so far
    counter.update(x[2:])
    assert counter.result().clipped_samples.tolist() == [5]
    assert counter.result().n_runs.tolist() == [1]


def test_wrong_blocks_are_rejected():
    counter = ClipCounter("int16", channels=2)
    with pytest.raises(ValidationError, match="2 channel"):
        counter.update(np.zeros(10, np.int16))
    with pytest.raises(ValidationError, match="int16"):
        counter.update(np.zeros((2, 10), np.int32))
    with pytest.raises(ValidationError, match="signed integer or float"):
        detect_clipping(np.zeros(4, np.uint8))
