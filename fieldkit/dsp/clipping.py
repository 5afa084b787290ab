"""Clipping detection on the original samples, before any resampling or conversion.

A sample is at full scale when it reaches the largest or smallest code of its format:

=====================  ===============================  ===============================
format                 high (x >= high)                 low (x <= low)
=====================  ===============================  ===============================
int16                  32767                            -32768
24-bit, left-justified (2**23 - 1) * 256 = 2147483392   -2**31
in int32 (soundfile)
24-bit, right-justified 2**23 - 1                       -2**23
int32                  2**31 - 1                        -2**31
float                  1.0                              -1.0
=====================  ===============================  ===============================

Counted per channel: clipped samples, runs of consecutive clipped samples and the longest
run. Only runs of at least ``min_run`` samples count (a lone full-scale sample may be a
legitimate peak). Resampling first would smear clipped plateaus and undercount them ~10x
(see ``docs/notes/performance.md``), hence "original samples". Samples are
``(frames,)`` or ``(channels, frames)``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from fieldkit.config.params import ClippingParams
from fieldkit.dsp.channels import as_channels
from fieldkit.errors import ValidationError

__all__ = ["ClipThresholds", "ClipStats", "ClipCounter", "clip_thresholds", "detect_clipping"]


@dataclasses.dataclass(frozen=True)
class ClipThresholds:
    """Sample values at or beyond which a sample counts as clipped: x >= high or x <= low."""

    high: float
    low: float


def clip_thresholds(
    dtype: np.dtype | str,
    bits: int | None = None,
    left_justified: bool = True,
    fraction: float = 1.0,
) -> ClipThresholds:
    """Full-scale thresholds of a sample format (see the module table).

    ``bits`` is the number of significant bits (default: the dtype's width);
    ``fraction`` < 1 lowers both thresholds to ``ceil(fraction * 2**(bits-1))`` codes.
    """
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return ClipThresholds(high=float(fraction), low=-float(fraction))
    if dt.kind != "i":
        raise ValidationError(f"clipping needs signed integer or float samples; got {dt}.")
    width = 8 * dt.itemsize
    bits = width if bits is None else bits
    if not 2 <= bits <= width:
        raise ValidationError(f"bits = {bits!r} is invalid for {dt}; expected 2..{width}.")
    shift = width - bits if left_justified else 0
    half = 2 ** (bits - 1)
    high = half - 1 if fraction >= 1.0 else math.ceil(fraction * half)
    low = -half if fraction >= 1.0 else -high
    return ClipThresholds(high=high << shift, low=low << shift)


@dataclasses.dataclass(frozen=True)
class ClipStats:
    """Clipping per channel; every array is shaped (channels,).

    Attributes
    ----------
    frames : int
        Samples per channel examined.
    clipped_samples : ndarray of int64
        Samples in runs of at least ``min_run`` full-scale samples.
    n_runs : ndarray of int64
        Number of such runs.
    longest_run : ndarray of int64
        Length of the longest such run (0 if none).
    """

    frames: int
    clipped_samples: np.ndarray
    n_runs: np.ndarray
    longest_run: np.ndarray

    @property
    def clipped_fraction(self) -> np.ndarray:
        """Clipped samples / frames per channel, float64 (0 for an empty signal)."""
        return self.clipped_samples / max(self.frames, 1)

    @property
    def total_clipped_fraction(self) -> float:
        """Clipped samples over all channels / all samples."""
        return float(self.clipped_samples.sum() / max(self.frames * len(self.clipped_samples), 1))


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of each run of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    return starts, np.flatnonzero(edges == -1) - starts


class ClipCounter:
    """Accumulates clipping statistics block by block; runs may cross block boundaries.

    Feeding consecutive blocks to :meth:`update` gives the same :meth:`result` as feeding the
    whole signal at once.

    Parameters
    ----------
    dtype : dtype or str
        Sample dtype of every block (the original format, e.g. int16).
    channels : int
        Number of channels; blocks are (channels, frames), or (frames,) for one channel.
    bits, left_justified :
        Sample format, see :func:`clip_thresholds`.
    params : ClippingParams, optional
        ``min_run`` and ``fraction``.
    """

    def __init__(
        self,
        dtype: np.dtype | str,
        channels: int = 1,
        bits: int | None = None,
        left_justified: bool = True,
        params: ClippingParams | None = None,
    ) -> None:
        params = ClippingParams() if params is None else params
        self.dtype, self.channels, self.min_run = np.dtype(dtype), channels, params.min_run
        self.thresholds = clip_thresholds(self.dtype, bits, left_justified, params.fraction)
        self.frames = 0
        self._clipped = np.zeros(channels, np.int64)
        self._n_runs = np.zeros(channels, np.int64)
        self._longest = np.zeros(channels, np.int64)
        self._open = np.zeros(channels, np.int64)  # length of the run touching the block end

    def update(self, block: np.ndarray) -> None:
        """Add the next block of samples, (channels, frames) or (frames,) for one channel."""
        x = as_channels(block, "block")
        if x.shape[0] != self.channels or x.dtype != self.dtype:
            raise ValidationError(
                f"expected a block of {self.channels} channel(s) of {self.dtype}; "
                f"got shape {np.shape(block)} of {x.dtype}."
            )
        if x.shape[1] == 0:
            return  # an empty block must not close a run
        mask = (x >= self.thresholds.high) | (x <= self.thresholds.low)
        for c in np.flatnonzero(~mask.any(axis=1)):  # no clipping: only close an open run
            self._record(c, self._open[c : c + 1])
            self._open[c] = 0
        for c in np.flatnonzero(mask.any(axis=1)):
            self._update_channel(c, mask[c])
        self.frames += x.shape[1]

    def _update_channel(self, c: int, mask: np.ndarray) -> None:
        starts, lengths = _runs(mask)
        touches_end = starts[-1] + lengths[-1] == len(mask)
        if starts[0] == 0:
            lengths[0] += self._open[c]  # the run goes on from the previous block
        else:
            self._record(c, self._open[c : c + 1])
        self._open[c] = lengths[-1] if touches_end else 0
        self._record(c, lengths[:-1] if touches_end else lengths)

    def _record(self, c: int, lengths: np.ndarray) -> None:
        kept = lengths[lengths >= self.min_run]
        if kept.size:
            self._clipped[c] += kept.sum()
            self._n_runs[c] += kept.size
            self._longest[c] = max(self._longest[c], kept.max())

    def result(self) -> ClipStats:
        """Statistics so far, counting a run still open at the end (state is unchanged)."""
        open_ok = self._open >= self.min_run
        return ClipStats(
            frames=self.frames,
            clipped_samples=self._clipped + np.where(open_ok, self._open, 0),
            n_runs=self._n_runs + open_ok.astype(np.int64),
            longest_run=np.maximum(self._longest, np.where(open_ok, self._open, 0)),
        )


def detect_clipping(
    samples: np.ndarray,
    bits: int | None = None,
    left_justified: bool = True,
    params: ClippingParams | None = None,
) -> ClipStats:
    """Clipping statistics of a whole signal, (frames,) or (channels, frames), per channel.

    The sample format is the dtype of ``samples`` plus ``bits``/``left_justified`` (see
    :func:`clip_thresholds`); ``params`` gives ``min_run`` and ``fraction``.
    """
    x = as_channels(samples)
    counter = ClipCounter(x.dtype, x.shape[0], bits, left_justified, params)
    counter.update(x)
    return counter.result()
