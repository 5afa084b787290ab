"""Quality-control metrics of a recording or clip, whole or block by block.

Input is float audio in full-scale units (after :func:`fieldkit.dsp.bitdepth.to_float32`),
``(frames,)`` or ``(channels, frames)``; every metric is per channel:

- ``peak_dbfs``: ``20 log10(max |x|)`` over finite samples (-inf for all-zero audio);
- ``rms_dbfs``: ``20 log10(sqrt(mean x**2))`` over finite samples;
- ``dc_offset``: mean of the finite samples (full-scale units);
- ``silent_fraction``: fraction of non-overlapping frames of ``frame_s`` seconds whose RMS is
  below ``silence_threshold_dbfs`` (a last, shorter frame counts as a frame);
- ``digital_silence_fraction``: fraction of those frames whose samples are all exactly 0;
- ``nan_count``, ``inf_count``: non-finite samples (excluded from the other metrics; a frame
  holding one is never silent).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fieldkit.config.params import QCParams
from fieldkit.dsp.channels import as_channels
from fieldkit.errors import ValidationError

__all__ = ["QCStats", "QCAccumulator", "qc_metrics"]


@dataclasses.dataclass(frozen=True)
class QCStats:
    """QC metrics per channel; every array is shaped (channels,), float64 or int64."""

    frames: int
    peak_dbfs: np.ndarray
    rms_dbfs: np.ndarray
    dc_offset: np.ndarray
    silent_fraction: np.ndarray
    digital_silence_fraction: np.ndarray
    nan_count: np.ndarray
    inf_count: np.ndarray


def _db(amplitude: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(amplitude)


class QCAccumulator:
    """Accumulates :class:`QCStats` over consecutive blocks (block-wise equals whole-signal).

    Parameters
    ----------
    sample_rate_hz : float
        Sample rate in Hz (sets the frame length of the silence metrics).
    channels : int
        Blocks are (channels, frames), or (frames,) for one channel.
    params : QCParams, optional
        ``frame_s`` and ``silence_threshold_dbfs``.
    """

    def __init__(
        self, sample_rate_hz: float, channels: int = 1, params: QCParams | None = None
    ) -> None:
        params = QCParams() if params is None else params
        self.channels = channels
        self.frame_length = max(1, round(params.frame_s * sample_rate_hz))
        self._silent_ms = 10.0 ** (params.silence_threshold_dbfs / 10.0)  # mean-square level
        self.frames = 0
        # Running sums per channel (float64) and counts (int64).
        self._sum, self._sumsq, self._peak = np.zeros((3, channels), np.float64)
        self._finite, self._nan, self._inf = np.zeros((3, channels), np.int64)
        self._n_frames, self._silent, self._digital = np.zeros((3, channels), np.int64)
        self._pending = np.zeros((channels, 0), np.float32)  # samples of an unfinished frame

    def update(self, block: np.ndarray) -> None:
        """Add the next block, float, (channels, frames) or (frames,) for one channel."""
        x = as_channels(block, "block")
        if x.shape[0] != self.channels or x.dtype.kind != "f":
            raise ValidationError(
                f"expected float samples of {self.channels} channel(s); got shape "
                f"{np.shape(block)} of {x.dtype}. Normalise with fieldkit.dsp.bitdepth first."
            )
        self._add_sample_stats(x)
        self._add_frames(x)
        self.frames += x.shape[1]

    def _add_sample_stats(self, x: np.ndarray) -> None:
        finite = np.isfinite(x)
        if not finite.all():
            self._nan += np.isnan(x).sum(axis=1)
            self._inf += np.isinf(x).sum(axis=1)
            x = np.where(finite, x, 0.0).astype(x.dtype)
        self._finite += finite.sum(axis=1)
        self._sum += x.sum(axis=1, dtype=np.float64)
        self._sumsq += np.einsum("cf,cf->c", x, x, dtype=np.float64)
        if x.shape[1]:
            self._peak = np.maximum(self._peak, np.abs(x).max(axis=1))

    def _add_frames(self, x: np.ndarray) -> None:
        joined = np.concatenate([self._pending, x], axis=1) if self._pending.shape[1] else x
        n_full = joined.shape[1] // self.frame_length
        self._count_frames(joined[:, : n_full * self.frame_length].reshape(
            self.channels, n_full, self.frame_length), self._n_frames, self._silent, self._digital)
        self._pending = np.array(joined[:, n_full * self.frame_length :], dtype=np.float32)

    def _count_frames(
        self, framed: np.ndarray, n_frames: np.ndarray, silent: np.ndarray, digital: np.ndarray
    ) -> None:
        """Add frame counts of ``framed`` (channels, frames, samples) into the given arrays."""
        if framed.shape[1] == 0 or framed.shape[2] == 0:
            return
        mean_square = np.einsum("ctf,ctf->ct", framed, framed, dtype=np.float64) / framed.shape[2]
        n_frames += framed.shape[1]
        silent += (mean_square < self._silent_ms).sum(axis=1)
        digital += (np.count_nonzero(framed, axis=2) == 0).sum(axis=1)

    def result(self) -> QCStats:
        """Metrics so far; an unfinished last frame counts as a frame (state is unchanged)."""
        n_frames, silent, digital = self._n_frames.copy(), self._silent.copy(), self._digital.copy()
        self._count_frames(self._pending[:, np.newaxis, :], n_frames, silent, digital)
        finite = np.maximum(self._finite, 1)
        return QCStats(
            frames=self.frames,
            peak_dbfs=_db(self._peak),
            rms_dbfs=_db(np.sqrt(self._sumsq / finite)),
            dc_offset=self._sum / finite,
            silent_fraction=silent / np.maximum(n_frames, 1),
            digital_silence_fraction=digital / np.maximum(n_frames, 1),
            nan_count=self._nan.copy(),
            inf_count=self._inf.copy(),
        )


def qc_metrics(
    samples: np.ndarray, sample_rate_hz: float, params: QCParams | None = None
) -> QCStats:
    """QC metrics of a whole signal, float, (frames,) or (channels, frames), per channel."""
    x = as_channels(samples)
    acc = QCAccumulator(sample_rate_hz, x.shape[0], params)
    acc.update(x)
    return acc.result()
