"""Reading audio in blocks, in its native sample format, with a hard stop at the frames present.

libsndfile clamps truncated files silently; the caller passes ``frames_present`` (from the probe)
so that only real frames are read. Integer PCM is read as integers so clipping can be counted on
the original codes; ``(channels, frames)`` blocks are returned (the dsp convention). A stream may
start anywhere (``start_frame``): a preview of a 12-hour file seeks instead of reading through.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np
import soundfile as sf

from fieldkit.dsp.bitdepth import to_float32
from fieldkit.errors import AudioFormatError

__all__ = ["SampleFormat", "sample_format", "read_blocks", "read_excerpt"]

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


Source = str | os.PathLike[str] | IO[bytes]


def _open(path: Source) -> sf.SoundFile:
    try:  # a file object (a ranged-read object of a URL root) is read through libsndfile's virtual IO
        return sf.SoundFile(path if hasattr(path, "read") else os.fspath(path), mode="r")
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFormatError(f"{path}: cannot be opened for reading ({exc}).",
                               hint="Check it with 'fieldkit catalog recordings'; it may be quarantined.") from exc


def read_blocks(path: Source, frames_present: int, block_frames: int, *,
                subtype: str | None = None, start_frame: int = 0, frames: int | None = None) -> Iterator[np.ndarray]:
    """Yield ``(channels, n)`` blocks of at most ``block_frames`` frames in the native dtype.

    Frames ``[start_frame, start_frame + frames)`` (default: to the end), never past ``frames_present``.
    ``path`` may be a seekable binary file object (e.g. ``Root.open_read``), which the caller closes.
    """
    fmt = sample_format(subtype)
    with _open(path) as handle:
        end = min(frames_present, handle.frames) if handle.frames >= 0 else frames_present
        stop = end if frames is None else min(end, start_frame + frames)
        remaining = max(0, stop - start_frame)
        if remaining and start_frame:
            handle.seek(start_frame)
        while remaining > 0:
            block = handle.read(min(block_frames, remaining), dtype=fmt.dtype, always_2d=True)
            if len(block) == 0:
                break
            remaining -= len(block)
            yield block.T


def read_excerpt(path: str | os.PathLike[str], frames_present: int, start_frame: int, n_frames: int, *,
                 subtype: str | None = None) -> np.ndarray:
    """Frames ``[start_frame, start_frame + n_frames)`` as float32 ``(channels, frames)`` in full-scale
    units; shorter at the end of the file (empty past it)."""
    fmt = sample_format(subtype)
    blocks = [to_float32(b, fmt.bits) for b in read_blocks(path, frames_present, max(n_frames, 1), subtype=subtype,
                                                           start_frame=start_frame, frames=n_frames)]
    if blocks:
        return np.concatenate(blocks, axis=1)
    with _open(path) as handle:
        return np.zeros((handle.channels, 0), np.float32)
