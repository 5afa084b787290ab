"""Resampling equals soxr, whole or streamed block by block."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit.dsp.resample import StreamingResampler, resample
from fieldkit.errors import ConfigError, ProcessingError, ValidationError
from fieldkit.testing import signals

RATES = [(48000, 16000), (44100, 16000), (96000, 22050), (8000, 48000), (250000, 32000),
         (16000, 16000.5)]


@pytest.mark.parametrize(("rate_in", "rate_out"), RATES)
def test_mono_equals_soxr(rate_in, rate_out):
    x = signals.white_noise(0.5, rate_in, seed=1)
    np.testing.assert_array_equal(resample(x, rate_in, rate_out), soxr.resample(x, rate_in,
                                                                               rate_out, "HQ"))


@pytest.mark.parametrize("quality", ["QQ", "LQ", "MQ", "HQ", "VHQ"])
def test_channels_first_equals_soxr_channels_last(quality):
    x = signals.white_noise(0.5, 44100, seed=2, channels=3)
    out = resample(x, 44100, 16000, quality)
    ref = soxr.resample(np.ascontiguousarray(x.T), 44100, 16000, quality).T
    assert out.shape == ref.shape and out.flags.c_contiguous and out.dtype == np.float32
    np.testing.assert_array_equal(out, ref)


def test_one_channel_2d_keeps_its_shape_and_dtypes_pass_through():
    x = signals.white_noise(0.2, 48000, seed=3)[np.newaxis, :]
    assert resample(x, 48000, 16000).shape == (1, 3200)
    assert resample(x.astype(np.float64), 48000, 16000).dtype == np.float64
    assert resample((x * 1000).astype(np.int16), 48000, 16000).dtype == np.int16


def test_equal_rates_return_a_copy():
    x = signals.tone(440, 0.1, 16000)
    out = resample(x, 16000, 16000)
    np.testing.assert_array_equal(out, x)
    assert out is not x


def test_a_tone_keeps_its_frequency_and_level():
    x = signals.tone(1000.0, 1.0, 48000, amplitude=0.5)
    y = resample(x, 48000, 16000)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert abs(np.argmax(spectrum) * 16000 / len(y) - 1000.0) <= 1.0
    assert abs(np.max(np.abs(y[1000:-1000])) - 0.5) < 1e-3


def _streamed(x: np.ndarray, rate_in: float, rate_out: float, cuts: list[int]) -> np.ndarray:
    channels = 1 if x.ndim == 1 else x.shape[0]
    stream = StreamingResampler(rate_in, rate_out, channels)
    bounds = [0, *sorted(cuts), x.shape[-1]]
    parts = [stream.process(x[..., a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    parts.append(stream.flush() if x.ndim == 2 else stream.flush()[0])
    return np.concatenate(parts, axis=-1)


@pytest.mark.parametrize(("rate_in", "rate_out"), RATES[:5])
def test_streaming_equals_whole_signal(rate_in, rate_out):
    x = signals.white_noise(1.0, rate_in, seed=4, channels=2)
    cuts = list(range(997, x.shape[-1], 4099))
    np.testing.assert_array_equal(_streamed(x, rate_in, rate_out, cuts),
                                  resample(x, rate_in, rate_out))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 24000), max_size=8), st.sampled_from(RATES[:5]))
def test_streaming_equals_whole_signal_for_any_block_split(cuts, rates):
    x = signals.chirp(100, 3000, 0.5, 48000)[: 24000]
    whole = resample(x, *rates)
    streamed = _streamed(x, *rates, cuts)
    assert streamed.shape == whole.shape
    assert np.max(np.abs(streamed - whole)) <= 1e-6


def test_last_block_flag_ends_the_stream():
    x = signals.white_noise(0.1, 48000)
    stream = StreamingResampler(48000, 16000)
    out = np.concatenate([stream.process(x[:1000]), stream.process(x[1000:], last=True)])
    np.testing.assert_array_equal(out, resample(x, 48000, 16000))
    with pytest.raises(ProcessingError, match="last block"):
        stream.process(x)


def test_invalid_arguments():
    x = signals.white_noise(0.1, 16000)
    with pytest.raises(ConfigError, match="rate_out_hz = 0"):
        resample(x, 16000, 0)
    with pytest.raises(ConfigError, match="quality = 'best'"):
        resample(x, 16000, 8000, "best")
    with pytest.raises(ValidationError, match="cannot resample int8"):
        resample(x.astype(np.int8), 16000, 8000)
    with pytest.raises(ValidationError, match="shape"):
        resample(np.zeros((1, 2, 3), np.float32), 16000, 8000)
    with pytest.raises(ValidationError, match="2 channel"):
        StreamingResampler(16000, 8000, channels=2).process(x)
    with pytest.raises(ConfigError, match="dtype"):
        StreamingResampler(16000, 8000, dtype="int8")
