"""Streaming ingest QC: peak, clipping, DC offset, digital silence, NaN/Inf.

Samples are read with soundfile in blocks, so memory stays flat whatever the file length or
sample rate. Integer PCM is read as ``int32`` (libsndfile left-justifies every integer format to
32 bits), which lets clipping be counted exactly at the format's own full-scale codes instead
of with a float threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf

from fieldkit.model.audio import QCMetrics

__all__ = ["DEFAULT_BLOCK_FRAMES", "INTEGER_BITS", "ScanResult", "scan_samples"]

DEFAULT_BLOCK_FRAMES = 65_536
#: soundfile integer subtypes and their container bits.
INTEGER_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
_INT32_SCALE = float(2**31)
_MAX_NONFINITE_POSITIONS = 20
#: Block size used to salvage frames after a decode error (a FLAC frame is often 4096).
_SALVAGE_BLOCK_FRAMES = 4096


@dataclass(frozen=True)
class ScanResult:
    """Outcome of a streaming scan: the metrics, frames read and a decode error, if any."""

    qc: QCMetrics
    frames_read: int
    error: str | None = None


@dataclass
class _Accumulator:
    """Running sums over blocks (float64 sums, so long files do not lose precision)."""

    channels: int
    clip_high: float
    clip_low: float
    samples: int = 0
    peak: float = 0.0
    clipped: int = 0
    zeros: int = 0
    nonfinite: int = 0
    nonfinite_frames: list[int] = field(default_factory=list)
    sums: np.ndarray | None = None

    def add(self, block: np.ndarray, first_frame: int, scale: float) -> None:
        """Fold one ``(frames, channels)`` block whose first frame index is ``first_frame``."""
        self.clipped += int(np.count_nonzero((block >= self.clip_high) | (block <= self.clip_low)))
        values = block.astype(np.float64) / scale
        finite = np.isfinite(values)
        if not finite.all():
            self._note_nonfinite(finite, first_frame)
            values = np.where(finite, values, 0.0)
        self.samples += values.size
        self.zeros += int(np.count_nonzero(block == 0))
        self.peak = max(self.peak, float(np.max(np.abs(values), initial=0.0)))
        sums = values.sum(axis=0)
        self.sums = sums if self.sums is None else self.sums + sums

    def _note_nonfinite(self, finite: np.ndarray, first_frame: int) -> None:
        bad_frames = np.nonzero(~finite.all(axis=1))[0]
        self.nonfinite += int(np.count_nonzero(~finite))
        room = _MAX_NONFINITE_POSITIONS - len(self.nonfinite_frames)
        self.nonfinite_frames.extend(int(i) + first_frame for i in bad_frames[:room])

    def result(self, frames: int) -> QCMetrics:
        """Freeze the sums into :class:`QCMetrics`."""
        per_channel = frames if frames else 1
        means = (self.sums / per_channel) if self.sums is not None else np.zeros(1)
        dc = float(means[int(np.argmax(np.abs(means)))])
        silent = self.zeros / self.samples if self.samples else 1.0
        return QCMetrics(
            frames_analysed=frames,
            peak=self.peak,
            peak_dbfs=20.0 * math.log10(self.peak) if self.peak > 0 else None,
            clipped_samples=self.clipped,
            dc_offset=dc,
            silent_fraction=silent,
            digital_silence=frames > 0 and self.zeros == self.samples,
            nonfinite_samples=self.nonfinite,
            nonfinite_frames=tuple(self.nonfinite_frames),
        )


def _read_plan(subtype: str, valid_bits: int | None) -> tuple[str, float, float, float]:
    """Return (dtype, scale to full scale 1.0, clip-high code, clip-low code) for a subtype."""
    bits = INTEGER_BITS.get(subtype)
    if bits is not None:
        if valid_bits and 8 < valid_bits < bits:
            bits = valid_bits  # e.g. 20 valid bits in a 24-bit container

        high = float((2 ** (bits - 1) - 1) << (32 - bits))
        return "int32", _INT32_SCALE, high, -_INT32_SCALE
    # Float formats keep their headroom (> 1.0 is legal); lossy and companded formats are
    # decoded to float by libsndfile, where full scale is 1.0 as well.
    return "float64", 1.0, 1.0, -1.0


def scan_samples(
    sound: sf.SoundFile,
    frames_limit: int | None,
    *,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    valid_bits: int | None = None,
) -> ScanResult:
    """Stream through an open sound file and measure ingest QC.

    Parameters
    ----------
    sound : soundfile.SoundFile
        Open for reading, positioned at frame 0.
    frames_limit : int or None
        Read at most this many frames (the frames actually present); None reads to the end.
    block_frames : int
        Frames per block (memory is about ``block_frames * channels * 8`` bytes).
    valid_bits : int or None
        Meaningful bits of integer PCM when fewer than the container holds (full scale is
        then ``2**(valid_bits-1) - 1`` shifted into place).

    Returns
    -------
    ScanResult
        The metrics, the frames read, and the libsndfile error text if decoding stopped early.
    """
    dtype, scale, high, low = _read_plan(sound.subtype, valid_bits)
    acc = _Accumulator(sound.channels, high, low)
    frames_read, error, block = 0, None, block_frames
    while frames_limit is None or frames_read < frames_limit:
        want = block if frames_limit is None else min(block, frames_limit - frames_read)
        try:
            data = sound.read(want, dtype=dtype, always_2d=True)
        except sf.LibsndfileError as exc:  # a corrupt or cut FLAC frame, a short read...
            error = str(exc)
            if block <= _SALVAGE_BLOCK_FRAMES or not _rewind(sound, frames_read):
                break
            block = _SALVAGE_BLOCK_FRAMES  # retry in small blocks to keep every good frame
            continue
        if len(data) == 0:
            break
        acc.add(data, frames_read, scale)
        frames_read += len(data)
    return ScanResult(acc.result(frames_read), frames_read, error)


def _rewind(sound: sf.SoundFile, frame: int) -> bool:
    """Seek back to ``frame`` after a failed read; False when even that fails."""
    try:
        sound.seek(frame)
    except sf.LibsndfileError:
        return False
    return True
