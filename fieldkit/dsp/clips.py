"""Cutting a stream into fixed-length clips, and per-clip QC — pure, block-fed kernels.

``ClipCutter`` receives the (resampled) signal in arbitrary blocks and returns whole clips of
``clip_len`` samples every ``hop`` samples, so a file is never held in memory at once. The last
clip is zero-padded; ``valid_samples`` says how much of each clip is real. Clip ``k`` covers
samples ``[k * hop, k * hop + clip_len)`` of the stream.
"""

from __future__ import annotations

import math

import numpy as np

from fieldkit.errors import ConfigError

__all__ = ["ClipCutter", "clip_count", "clip_qc", "ClippedCounter", "joined"]


def clip_count(n_samples: int, clip_len: int, hop: int, min_valid_fraction: float) -> int:
    """How many clips a stream of ``n_samples`` yields (the last one kept if real enough)."""
    if n_samples <= 0:
        return 0
    full = max(0, (n_samples - clip_len) // hop + 1)
    start = full * hop
    tail = n_samples - start
    return full + (1 if tail > 0 and tail >= math.ceil(min_valid_fraction * clip_len) else 0)


class ClipCutter:
    """Feed blocks of a mono float32 stream; get back ``(clips, clip_len)`` arrays as they fill.

    Samples live in one growable buffer (amortised doubling, compacted as clips are consumed),
    so feeding costs O(block), not O(buffer): long clips stay cheap.
    """

    def __init__(self, clip_len: int, hop: int, n_clips: int) -> None:
        if clip_len < 1 or hop < 1:
            raise ConfigError(f"clip_len ({clip_len}) and hop ({hop}) must be >= 1 samples.")
        self.clip_len, self.hop, self.n_clips = clip_len, hop, n_clips
        self._buffer = np.zeros(max(clip_len, 1024), dtype=np.float32)
        self._used = 0  # samples in the buffer
        self._buffer_start = 0  # stream index of _buffer[0]
        self._next = 0  # next clip to emit

    def _append(self, block: np.ndarray) -> None:
        need = self._used + len(block)
        if need > len(self._buffer):
            grown = np.zeros(max(need, 2 * len(self._buffer)), dtype=np.float32)
            grown[: self._used] = self._buffer[: self._used]
            self._buffer = grown
        self._buffer[self._used:need] = block
        self._used = need

    def _drop_consumed(self) -> None:
        drop = min(self._next * self.hop - self._buffer_start, self._used)
        if drop > 0:
            self._buffer[: self._used - drop] = self._buffer[drop:self._used]
            self._used -= drop
            self._buffer_start += drop

    def _ready(self, final: bool) -> int:
        """How many clips can be emitted now."""
        if final:
            return self.n_clips - self._next
        complete = (self._buffer_start + self._used - self.clip_len) // self.hop + 1
        return max(0, min(complete, self.n_clips) - self._next)

    def _emit(self, final: bool) -> tuple[np.ndarray, np.ndarray]:
        n = self._ready(final)
        clips = np.zeros((n, self.clip_len), np.float32)  # one copy, straight into the output
        valid = np.zeros(n, np.int32)
        for i in range(n):
            start = self._next * self.hop - self._buffer_start
            have = min(max(self._used - start, 0), self.clip_len)
            clips[i, :have] = self._buffer[start:start + have]
            valid[i] = have
            self._next += 1
        self._drop_consumed()
        return clips, valid

    def feed(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append samples; return the clips completed so far and their valid sample counts."""
        self._append(np.asarray(block, dtype=np.float32))
        return self._emit(final=False)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The remaining planned clips, zero-padded (an empty stream gives all-padding clips)."""
        return self._emit(final=True)


class ClippedCounter:
    """Per-clip count of clipped *original* samples, fed masks of the original stream in blocks.

    Clip ``k`` covers original frames ``[k * hop_in, k * hop_in + len_in)`` (rates converted),
    so clipping is counted before any resampling could hide or smear it.
    """

    def __init__(self, clip_len_in: float, hop_in: float, n_clips: int) -> None:
        self.len_in, self.hop_in, self.n_clips = clip_len_in, hop_in, n_clips
        self._diff = np.zeros(n_clips + 1, dtype=np.int64)
        self._offset = 0

    def skip(self, n_frames: int) -> None:
        """``n_frames`` original frames without any clipped sample."""
        self._offset += n_frames

    def update(self, clipped_per_frame: np.ndarray) -> None:
        """``clipped_per_frame``: clipped samples (over channels) of each original frame."""
        idx = np.flatnonzero(clipped_per_frame)
        if idx.size:
            pos = (idx + self._offset).astype(np.float64)
            lo = np.maximum(np.ceil((pos - self.len_in + 1) / self.hop_in), 0).astype(np.int64)
            hi = np.minimum(np.floor(pos / self.hop_in), self.n_clips - 1).astype(np.int64)
            keep = lo <= hi
            np.add.at(self._diff, lo[keep], clipped_per_frame[idx][keep])
            np.add.at(self._diff, hi[keep] + 1, -clipped_per_frame[idx][keep])
        self._offset += len(clipped_per_frame)

    def counts(self) -> np.ndarray:
        return np.cumsum(self._diff[:-1])


def clip_qc(clips: np.ndarray, valid: np.ndarray, silence_threshold: float = 1e-3) -> dict[str, np.ndarray]:
    """Peak dBFS, DC offset and silent fraction of each clip's valid samples.

    Padding after ``valid`` samples is zero (see :class:`ClipCutter`), so it changes neither the
    peak nor the sum; it is only taken out of the silent count. No masked copy is made; counts
    are taken row by row (``count_nonzero`` with ``axis`` is 2-3x slower), the sum in float32
    pairwise summation (relative error ~1e-7 of the clip's summed magnitude, below float32
    storage precision of the mean).
    """
    n = np.maximum(valid, 1)
    magnitude = np.abs(clips)
    peak = magnitude.max(axis=1) if clips.shape[1] else np.zeros(len(clips), clips.dtype)
    below = magnitude < np.asarray(silence_threshold, dtype=magnitude.dtype)
    del magnitude
    quiet = np.array([np.count_nonzero(row) for row in below], dtype=np.int64) - (clips.shape[1] - valid)
    del below
    with np.errstate(divide="ignore"):
        peak_dbfs = np.where(peak > 0, 20 * np.log10(np.maximum(peak, 1e-30)), -np.inf)
    dc = clips.sum(axis=1, dtype=np.float32).astype(np.float64) / n
    return {"peak_dbfs": peak_dbfs.astype(np.float32), "dc_offset": dc.astype(np.float32),
            "silent_fraction": np.where(valid > 0, quiet / n, 1.0).astype(np.float32)}


def joined(parts: list[np.ndarray]) -> np.ndarray:
    """Batches (of clips, or of their values) end to end along the first axis.

    A single part is returned as it is, not copied: most batches arrive whole, and a copy of a
    shard's values per write or a feature group per batch is measurable on the worker path.
    """
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
