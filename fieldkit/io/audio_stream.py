"""Reading audio in blocks, in its native sample format, with a hard stop at the frames present.

libsndfile clamps truncated files silently; the caller passes ``frames_present`` (from the probe)
so that only real frames are read. Integer PCM is read as integers so clipping can be counted on
the original codes; ``(channels, frames)`` blocks are returned (the dsp convention).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from fieldkit.errors import AudioFormatError

__all__ = ["SampleFormat", "sample_format", "read_blocks"]

# soundfile subtype -> (numpy dtype read as, significant bits)
_FORMATS = {
    "PCM_S8": ("int16", 8), "PCM_U8": ("int16", 8), "PCM_16": ("int16", 16), "PCM_24": ("int32", 24),
    "PCM_32": ("int32", 32), "FLOAT": ("float32", None), "DOUBLE": ("float64", None),
}


@dataclass(frozen=True)
class SampleFormat:
    dtype: str
    bits: int | None  # significant bits, left-justified in the dtype (soundfile's way)


def sample_format(subtype: str | None) -> SampleFormat:
    """How to read a subtype without losing the original codes (float32 for compressed ones)."""
    dtype, bits = _FORMATS.get(subtype or "", ("float32", None))
    return SampleFormat(dtype, bits)


def read_blocks(path: str | os.PathLike[str], frames_present: int, block_frames: int, *,
                subtype: str | None = None) -> Iterator[np.ndarray]:
    """Yield ``(channels, n)`` blocks of at most ``block_frames`` frames, ``frames_present`` in all."""
    fmt = sample_format(subtype)
    try:
        handle = sf.SoundFile(os.fspath(path), mode="r")
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFormatError(f"{path}: cannot be opened for reading ({exc}).",
                               hint="Check it with 'fieldkit catalog recordings'; it may be quarantined.") from exc
    with handle:
        remaining = min(frames_present, handle.frames) if handle.frames >= 0 else frames_present
        while remaining > 0:
            block = handle.read(min(block_frames, remaining), dtype=fmt.dtype, always_2d=True)
            if len(block) == 0:
                break
            remaining -= len(block)
            yield block.T
