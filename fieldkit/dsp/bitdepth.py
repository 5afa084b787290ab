"""Sample formats: integer PCM to float32 in [-1, 1], and float to int16 with TPDF dither.

Full scale follows soundfile/libsndfile: an integer is divided by ``2**(width - 1)``, so
int16 -32768 becomes exactly -1.0 and 32767 becomes 1 - 2**-15. soundfile returns 24-bit PCM
as *left-justified* int32 (the 24 bits in the top of the word, ``left_justified=True``, the
default); for right-justified values in a wider container (e.g. 24-bit in int32 from another
reader) pass ``bits=24, left_justified=False`` and the divisor becomes ``2**(bits - 1)``.
Float input is never clipped: a 32-bit float recording may hold values beyond +-1 and they
are kept.
"""

from __future__ import annotations

import numpy as np

from fieldkit.config.params import BitDepthParams
from fieldkit.errors import ValidationError

__all__ = ["full_scale", "to_float32", "to_int16", "apply_bit_depth"]

_INT16_FULL_SCALE = 32768.0


def full_scale(
    dtype: np.dtype | str, bits: int | None = None, left_justified: bool = True
) -> float:
    """Full-scale magnitude of integer samples; 1.0 for float dtypes.

    ``2**(width - 1)`` for left-justified samples, ``2**(bits - 1)`` for right-justified
    ones. ``bits`` (significant bits) defaults to the width of ``dtype`` and must not exceed it.
    """
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return 1.0
    if dt.kind not in "iu":
        raise ValidationError(f"expected integer or float samples; got dtype {dt}.")
    width = 8 * dt.itemsize
    bits = width if bits is None else bits
    if not 2 <= bits <= width:
        raise ValidationError(f"bits = {bits!r} is invalid for {dt}; expected 2..{width}.")
    return float(2 ** ((width if left_justified else bits) - 1))


def to_float32(
    samples: np.ndarray, bits: int | None = None, left_justified: bool = True
) -> np.ndarray:
    """Normalise PCM samples to float32 full scale.

    Parameters
    ----------
    samples : ndarray, any shape
        int8/int16/int32 (signed), uint8 (offset binary, as 8-bit WAV), float32 or float64.
    bits : int, optional
        Significant bits of integer samples; defaults to the width of the dtype.
    left_justified : bool
        Whether the significant bits are the top bits of the container (soundfile's way).

    Returns
    -------
    ndarray, float32, same shape
        A new array in [-1, 1) for integer input; float input is cast, never clipped.
    """
    x = np.asarray(samples)
    scale = full_scale(x.dtype, bits, left_justified)
    if x.dtype.kind == "f":
        return x.astype(np.float32, copy=True)
    y = x.astype(np.float32)
    if x.dtype.kind == "u":
        y -= np.float32(2 ** (8 * x.dtype.itemsize - 1))
    y *= np.float32(1.0 / scale)
    return y


def _tpdf(shape: tuple[int, ...], seed: int, key: tuple[int, ...]) -> np.ndarray:
    """Triangular noise in (-1, 1) LSB: the difference of two uniform variables."""
    rng = np.random.default_rng([seed, *key])
    return rng.random(shape) - rng.random(shape)


def to_int16(
    samples: np.ndarray, params: BitDepthParams | None = None, key: tuple[int, ...] = ()
) -> np.ndarray:
    """Quantise float samples in full-scale units to int16, with TPDF dither by default.

    Parameters
    ----------
    samples : ndarray, float, any shape
        Values in [-1, 1]; beyond that they saturate at -32768 / 32767. NaN becomes 0.
    params : BitDepthParams, optional
        ``dither`` ("tpdf" or "none") and ``seed``; ``BitDepthParams(policy="int16")`` if
        omitted.
    key : tuple of int >= 0
        Extra seed words, e.g. ``(recording_id, clip_index)``: the dither of a clip then
        depends only on (seed, key), never on which task or block computed it.

    Returns
    -------
    ndarray, int16, same shape
        Without dither, ``to_int16(to_float32(x))`` returns ``x`` exactly for int16 ``x``.
    """
    params = BitDepthParams(policy="int16") if params is None else params
    x = np.asarray(samples)
    if x.dtype.kind != "f":
        raise ValidationError(f"to_int16 expects float samples; got {x.dtype}.")
    y = x.astype(np.float64) * _INT16_FULL_SCALE
    if params.dither == "tpdf":
        y += _tpdf(y.shape, params.seed, tuple(int(k) for k in key))
    y = np.nan_to_num(y, nan=0.0, posinf=32767.0, neginf=-32768.0)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def apply_bit_depth(
    samples: np.ndarray, params: BitDepthParams, key: tuple[int, ...] = ()
) -> np.ndarray:
    """Store format by policy: float32 samples as they are (a copy), or int16 via :func:`to_int16`.

    ``samples`` are float in full-scale units, any shape.
    """
    if params.policy == "int16":
        return to_int16(samples, params, key)
    return np.asarray(samples, dtype=np.float32).copy()
