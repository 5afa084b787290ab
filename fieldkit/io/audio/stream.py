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


class _Watched:
    """A file object whose errors are kept for the reader to raise.

    libsndfile reads a file object through callbacks (virtual IO) and cannot receive a Python
    exception from them: cffi prints it as "Exception ignored" and answers 0, which libsndfile
    takes for the end of the file. A ranged read of an object store that times out would so end
    the recording early and silently (its last clips zero-padded, the task "done"). Here the
    error is kept, the callback answers an end of file, and the reader raises the kept error
    (:meth:`check`) after each call into libsndfile.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.error: BaseException | None = None

    def _keep(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc

    def readinto(self, buffer) -> int:
        if self.error is not None:
            return 0
        try:
            data = self._raw.read(len(buffer))
        except Exception as exc:  # noqa: BLE001 - kept and raised by check(), outside the callback
            self._keep(exc)
            return 0
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        try:
            return self._raw.seek(offset, whence)
        except Exception as exc:  # noqa: BLE001 - as readinto
            self._keep(exc)
            return 0

    def tell(self) -> int:
        return self._raw.tell()

    def check(self) -> None:
        """Raise the error a callback met, if any."""
        if self.error is not None:
            raise self.error


def _open(path: Source) -> tuple[sf.SoundFile, _Watched | None]:
    watched = _Watched(path) if hasattr(path, "read") else None
    try:  # a file object (a ranged-read object of a URL root) is read through libsndfile's virtual IO
        return sf.SoundFile(watched if watched is not None else os.fspath(path), mode="r"), watched
    except (sf.LibsndfileError, RuntimeError) as exc:
        if watched is not None and watched.error is not None:  # the storage failed, not the file
            raise watched.error from exc
        raise AudioFormatError(f"{path}: cannot be opened for reading ({exc}).",
                               hint="Check it with 'fieldkit catalog recordings'; it may be quarantined.") from exc


def read_blocks(path: Source, frames_present: int, block_frames: int, *,
                subtype: str | None = None, start_frame: int = 0, frames: int | None = None) -> Iterator[np.ndarray]:
    """Yield ``(channels, n)`` blocks of at most ``block_frames`` frames in the native dtype.

    Frames ``[start_frame, start_frame + frames)`` (default: to the end), never past ``frames_present``.
    ``path`` may be a seekable binary file object (e.g. ``Root.open_read``), which the caller closes.
    """
    fmt = sample_format(subtype)
    handle, watched = _open(path)
    check = watched.check if watched is not None else _nothing
    with handle:
        end = min(frames_present, handle.frames) if handle.frames >= 0 else frames_present
        stop = end if frames is None else min(end, start_frame + frames)
        remaining = max(0, stop - start_frame)
        try:
            if remaining and start_frame:
                handle.seek(start_frame)
                check()
            while remaining > 0:
                block = handle.read(min(block_frames, remaining), dtype=fmt.dtype, always_2d=True)
                check()  # a failed ranged read is an error, never an early end of the recording
                if len(block) == 0:
                    break
                remaining -= len(block)
                yield block.T
        except (sf.LibsndfileError, RuntimeError):  # libsndfile's view of a read the storage failed
            check()
            raise


def read_excerpt(path: str | os.PathLike[str], frames_present: int, start_frame: int, n_frames: int, *,
                 subtype: str | None = None) -> np.ndarray:
    """Frames ``[start_frame, start_frame + n_frames)`` as float32 ``(channels, frames)`` in full-scale
    units; shorter at the end of the file (empty past it)."""
    fmt = sample_format(subtype)
    blocks = [to_float32(b, fmt.bits) for b in read_blocks(path, frames_present, max(n_frames, 1), subtype=subtype,
                                                           start_frame=start_frame, frames=n_frames)]
    if blocks:
        return np.concatenate(blocks, axis=1)
    handle, _ = _open(path)
    with handle:
        return np.zeros((handle.channels, 0), np.float32)


def _nothing() -> None:
    return None
