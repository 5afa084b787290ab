"""Band-limited resampling with soxr, whole-signal or block by block.

Arrays are ``(frames,)`` for mono or ``(channels, frames)`` (see :mod:`fieldkit.dsp.channels`);
float32 is the recommended dtype (soxr also takes float64, int16 and int32 and returns the same
dtype). Any input rate can go to any output rate. :class:`StreamingResampler` gives exactly
the output of :func:`resample` on the whole signal when fed consecutive blocks, so long files
are resampled with flat memory.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

from fieldkit.config.params import RESAMPLE_QUALITIES
from fieldkit.dsp.channels import as_channels
from fieldkit.errors import ConfigError, ProcessingError, ValidationError

__all__ = ["SOXR_DTYPES", "resample", "StreamingResampler"]

#: dtypes soxr processes natively.
SOXR_DTYPES = ("float32", "float64", "int16", "int32")


def _check_rates(rate_in_hz: float, rate_out_hz: float, quality: str) -> None:
    for name, rate in (("rate_in_hz", rate_in_hz), ("rate_out_hz", rate_out_hz)):
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ConfigError(f"{name} = {rate!r} is invalid; expected a finite number of Hz > 0.")
    if quality not in RESAMPLE_QUALITIES:
        raise ConfigError(
            f"quality = {quality!r} is invalid; expected one of {', '.join(RESAMPLE_QUALITIES)}."
        )


def _check_dtype(x: np.ndarray) -> None:
    if x.dtype.name not in SOXR_DTYPES:
        raise ValidationError(
            f"soxr cannot resample {x.dtype} samples; expected one of {', '.join(SOXR_DTYPES)} "
            "(normalise with fieldkit.dsp.bitdepth.to_float32 first)."
        )


def resample(
    samples: np.ndarray, rate_in_hz: float, rate_out_hz: float, quality: str = "HQ"
) -> np.ndarray:
    """Resample a whole signal.

    Parameters
    ----------
    samples : ndarray, shape (frames,) or (channels, frames)
        Audio, float32 recommended.
    rate_in_hz, rate_out_hz : float
        Input and output sample rates in Hz.
    quality : str
        soxr preset, one of ``QQ LQ MQ HQ VHQ``.

    Returns
    -------
    ndarray, same ndim and dtype as ``samples``, C-contiguous
        About ``frames * rate_out_hz / rate_in_hz`` frames; equals ``soxr.resample`` of the
        channels-last signal, transposed back. A new array even when the rates are equal.
    """
    _check_rates(rate_in_hz, rate_out_hz, quality)
    x = np.asarray(samples)
    channels = as_channels(x)
    _check_dtype(x)
    if rate_in_hz == rate_out_hz:
        return x.copy()
    if channels.shape[0] == 1:  # mono: no transposes
        out = soxr.resample(np.ascontiguousarray(channels[0]), rate_in_hz, rate_out_hz, quality)
        return out if x.ndim == 1 else out[np.newaxis, :]
    out = soxr.resample(np.ascontiguousarray(channels.T), rate_in_hz, rate_out_hz, quality)
    return np.ascontiguousarray(out.T)


class StreamingResampler:
    """Resample a long signal block by block with flat memory.

    Feed consecutive blocks with :meth:`process` and the last one with ``last=True`` (or call
    :meth:`flush`); the concatenated outputs equal :func:`resample` of the whole signal.

    Parameters
    ----------
    rate_in_hz, rate_out_hz : float
        Input and output sample rates in Hz.
    channels : int
        Number of channels; blocks are ``(channels, frames)``, or ``(frames,)`` when 1.
    quality : str
        soxr preset.
    dtype : str
        Sample dtype of every block, one of :data:`SOXR_DTYPES`.
    """

    def __init__(
        self,
        rate_in_hz: float,
        rate_out_hz: float,
        channels: int = 1,
        quality: str = "HQ",
        dtype: str = "float32",
    ) -> None:
        _check_rates(rate_in_hz, rate_out_hz, quality)
        if dtype not in SOXR_DTYPES or not (isinstance(channels, int) and channels >= 1):
            raise ConfigError(
                f"StreamingResampler(channels={channels!r}, dtype={dtype!r}) is invalid; expected "
                f"channels >= 1 and dtype one of {', '.join(SOXR_DTYPES)}."
            )
        self.rate_in_hz, self.rate_out_hz, self.channels = rate_in_hz, rate_out_hz, channels
        self.dtype = np.dtype(dtype)
        self._stream = soxr.ResampleStream(rate_in_hz, rate_out_hz, channels, dtype, quality)
        self._finished = False

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next block; returns the output frames that are ready.

        ``block`` is ``(channels, frames)`` (or ``(frames,)`` for one channel) of
        ``self.dtype``; the output has the same ndim. ``last=True`` flushes the filter tail.
        """
        if self._finished:
            raise ProcessingError(
                "this StreamingResampler already received its last block; create a new one."
            )
        x = np.asarray(block)
        channels = as_channels(x, "block")
        if channels.shape[0] != self.channels or x.dtype != self.dtype:
            raise ValidationError(
                f"expected a block of {self.channels} channel(s) of {self.dtype}; "
                f"got shape {x.shape} of {x.dtype}."
            )
        self._finished = last
        if self.channels == 1:
            out = self._stream.resample_chunk(np.ascontiguousarray(channels[0]), last=last)
            return out if x.ndim == 1 else out[np.newaxis, :]
        out = self._stream.resample_chunk(np.ascontiguousarray(channels.T), last=last)
        return np.ascontiguousarray(out.T)

    def flush(self) -> np.ndarray:
        """Finish the stream: the remaining output frames, ``(channels, frames)``."""
        shape = (self.channels, 0)
        return self.process(np.zeros(shape, self.dtype), last=True)
