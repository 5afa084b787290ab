"""Bit-depth normalisation and int16 quantisation with TPDF dither."""

from __future__ import annotations

import numpy as np
import pytest

from fieldkit.config.params import BitDepthParams
from fieldkit.dsp.bitdepth import apply_bit_depth, full_scale, to_float32, to_int16
from fieldkit.errors import ValidationError

NO_DITHER = BitDepthParams(policy="int16", dither="none")


def test_int16_extremes_and_exactness():
    x = np.array([-32768, -1, 0, 1, 32767], np.int16)
    y = to_float32(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.array([-1, -1 / 32768, 0, 1 / 32768, 32767 / 32768]))


def test_int24_left_justified_as_soundfile_reads_it():
    codes = np.array([-(2**23), -1, 0, 2**23 - 1], np.int64)
    left = (codes << 8).astype(np.int32)
    np.testing.assert_array_equal(to_float32(left), codes / 2.0**23)
    right = codes.astype(np.int32)
    np.testing.assert_array_equal(to_float32(right, bits=24, left_justified=False),
                                  codes / 2.0**23)


def test_int32_uint8_int8():
    np.testing.assert_array_equal(to_float32(np.array([-(2**31), 2**30], np.int32)), [-1.0, 0.5])
    np.testing.assert_array_equal(to_float32(np.array([0, 128, 255], np.uint8)),
                                  np.array([-1.0, 0.0, 127 / 128], np.float32))
    np.testing.assert_array_equal(to_float32(np.array([-128, 64], np.int8)), [-1.0, 0.5])


def test_float_is_kept_beyond_full_scale_and_never_clipped():
    x = np.array([[1.5, -2.0, 0.25]], np.float64)
    y = to_float32(x)
    assert y.dtype == np.float32 and y.shape == (1, 3)
    np.testing.assert_array_equal(y, x)
    z = to_float32(y)
    assert z is not y


def test_full_scale_and_bad_formats():
    assert full_scale("int16") == 32768.0 and full_scale("float32") == 1.0
    assert full_scale("int32", 24) == 2.0**31 and full_scale("int32", 24, False) == 2.0**23
    with pytest.raises(ValidationError, match="bits = 40"):
        full_scale("int32", 40)
    with pytest.raises(ValidationError, match="complex"):
        to_float32(np.zeros(3, np.complex64))


def test_int16_round_trip_without_dither_is_identity():
    x = np.arange(-32768, 32768, dtype=np.int16)
    np.testing.assert_array_equal(to_int16(to_float32(x), NO_DITHER), x)


def test_quantisation_saturates_and_maps_nan_to_zero():
    x = np.array([2.0, -2.0, np.inf, -np.inf, np.nan, 0.5], np.float32)
    np.testing.assert_array_equal(to_int16(x, NO_DITHER), [32767, -32768, 32767, -32768, 0, 16384])


def test_tpdf_dither_is_seeded_bounded_and_triangular():
    x = np.full(200_000, 0.1, np.float32)
    p = BitDepthParams(policy="int16", seed=7)
    a, b = to_int16(x, p), to_int16(x, p)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, to_int16(x, BitDepthParams(policy="int16", seed=8)))
    assert not np.array_equal(a, to_int16(x, p, key=(3, 1)))
    np.testing.assert_array_equal(to_int16(x, p, key=(3, 1)), to_int16(x, p, key=(3, 1)))
    error = a.astype(np.float64) - 0.1 * 32768  # dither +-1 LSB, then rounding +-0.5 LSB
    assert np.max(np.abs(error)) <= 1.5
    assert abs(np.mean(error)) < 0.01  # unbiased
    assert abs(np.var(error) - (1 / 6 + 1 / 12)) < 0.01  # TPDF variance 1/6 + rounding 1/12


def test_dither_removes_the_error_correlation_of_a_tiny_tone():
    t = np.arange(16000) / 16000
    x = (0.4 / 32768 * np.sin(2 * np.pi * 100 * t)).astype(np.float32)  # below 1 LSB
    assert not np.any(to_int16(x, NO_DITHER))
    assert np.any(to_int16(x, BitDepthParams(policy="int16")))


def test_apply_bit_depth_by_policy_and_inputs_unchanged():
    x = np.array([0.5, -0.25], np.float32)
    copy = x.copy()
    assert apply_bit_depth(x, BitDepthParams()).dtype == np.float32
    assert apply_bit_depth(x, NO_DITHER).dtype == np.int16
    np.testing.assert_array_equal(x, copy)
    with pytest.raises(ValidationError, match="float samples"):
        to_int16(np.zeros(3, np.int16))
