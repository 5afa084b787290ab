"""The synthetic signals have the properties their docstrings promise."""

from __future__ import annotations

import numpy as np

from fieldkit.testing import signals


def test_tone_chirp_noise_silence():
    x = signals.tone(1000.0, 0.5, 16000, amplitude=0.25, phase=np.pi / 2)
    assert x.dtype == np.float32 and x.shape == (8000,) and x[0] == np.float32(0.25)
    c = signals.chirp(100.0, 4000.0, 1.0, 16000)
    assert c.shape == (16000,) and abs(np.max(np.abs(c)) - 0.5) < 1e-3
    n = signals.white_noise(2.0, 8000, rms=0.2, seed=1, channels=2)
    assert n.shape == (2, 16000) and abs(np.std(n) - 0.2) < 0.005
    np.testing.assert_array_equal(n, signals.white_noise(2.0, 8000, rms=0.2, seed=1, channels=2))
    assert not np.any(signals.silence(0.1, 8000, channels=3))
    assert signals.silence(1, 10).shape == (10,)


def test_with_dc_does_not_change_its_input():
    x = signals.tone(10.0, 0.1, 1000)
    y = signals.with_dc(x, 0.5)
    assert y.dtype == x.dtype
    np.testing.assert_allclose(y - x, 0.5, atol=1e-7)
    np.testing.assert_array_equal(x, signals.tone(10.0, 0.1, 1000))


def test_runs_of():
    assert signals.runs_of([]) == ()
    assert signals.runs_of([True, True, False, True]) == ((0, 2), (3, 1))


def test_clipped_formats_hit_their_full_scale_codes():
    assert signals.clipped_tone(10, 1, 1000, 2.0, "int16").samples.max() == 32767
    left = signals.clipped_tone(10, 1, 1000, 2.0, "int24").samples
    assert left.dtype == np.int32 and left.max() == (2**23 - 1) << 8 and left.min() == -(2**31)
    assert signals.clipped_tone(10, 1, 1000, 2.0, "float32").samples.max() == 1.0
    k = signals.clipped_tone(10, 1, 1000, [2.0, 0.5])
    assert k.samples.shape == (2, 1000) and k.clipped_per_channel()[1] == 0
