"""Run the ffmpeg binary bundled with the imageio-ffmpeg wheel: encode piped frames, probe files.

Always an argument list, never a shell string. ffprobe is not bundled, so :func:`probe_media`
parses the input description that ``ffmpeg -i`` prints on stderr (:func:`parse_ffmpeg_info`,
pure, so it is tested on text too).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

import imageio_ffmpeg
import numpy as np

from fieldkit.errors import ExportError, ValidationError

__all__ = [
    "MediaProbe",
    "MediaStream",
    "ffmpeg_exe",
    "parse_ffmpeg_info",
    "pipe_frames",
    "probe_media",
    "video_codec",
]


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped in the imageio-ffmpeg wheel."""
    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=1)
def video_codec() -> str:
    """``libx264`` when the bundled ffmpeg has it, else ``mpeg4``."""
    done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True,
                          text=True, check=False)
    return "libx264" if re.search(r"^\s*V\S*\s+libx264\s", done.stdout, re.MULTILINE) else "mpeg4"



def pipe_frames(cmd: list[str], frames: Iterable[np.ndarray]) -> None:
    """Run ffmpeg, feed it the frames on stdin; raise ExportError with its message on failure.

    stderr goes to a temporary file so a chatty ffmpeg can never block on a full pipe.
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=err)
        try:
            for frame in frames:
                proc.stdin.write(frame.tobytes())
        except BrokenPipeError:
            pass  # ffmpeg stopped early; its return code and message say why
        finally:
            proc.stdin.close()
            code = proc.wait()
        err.seek(0)
        message = err.read().decode("utf-8", "replace").strip()
    if code != 0:
        raise ExportError(f"ffmpeg failed (exit {code}) writing {cmd[-1]}: "
                          f"{message[-500:] or 'no message'}")





@dataclass(frozen=True)
class MediaStream:
    """One stream of a media file as ``ffmpeg -i`` reports it.

    ``kind`` is ``video``, ``audio``, ``subtitle`` or ``data``; the size, frame rate,
    sample rate and channel layout are filled in for the kinds they belong to.
    """

    index: int
    kind: str
    codec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate_hz: int | None = None
    channel_layout: str | None = None


@dataclass(frozen=True)
class MediaProbe:
    """Container duration (seconds, None when ffmpeg shows N/A) and the streams."""

    duration_s: float | None
    streams: tuple[MediaStream, ...]

    def of_kind(self, kind: str) -> tuple[MediaStream, ...]:
        """The streams of one kind (``"video"``, ``"audio"``...)."""
        return tuple(s for s in self.streams if s.kind == kind)


_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_STREAM_RE = re.compile(
    r"Stream #\d+:(?P<index>\d+)\S*: (?P<kind>Video|Audio|Subtitle|Data): (?P<codec>\w+)(?P<rest>.*)"
)


def _stream(match: re.Match[str]) -> MediaStream:
    rest = match["rest"]
    size = re.search(r"\b(\d{2,5})x(\d{2,5})\b", rest)
    fps = re.search(r"([\d.]+) fps", rest)
    rate = re.search(r"(\d+) Hz", rest)
    layout = re.search(r"Hz, ([^,]+)", rest)
    return MediaStream(index=int(match["index"]), kind=match["kind"].lower(),
                       codec=match["codec"],
                       width=int(size[1]) if size else None, height=int(size[2]) if size else None,
                       fps=float(fps[1]) if fps else None, sample_rate_hz=int(rate[1]) if rate else None,
                       channel_layout=layout[1].strip() if layout else None)


def parse_ffmpeg_info(stderr: str) -> MediaProbe:
    """Parse the input description ``ffmpeg -i`` prints on stderr (pure)."""
    d = _DURATION_RE.search(stderr)
    duration = int(d[1]) * 3600 + int(d[2]) * 60 + float(d[3]) if d else None
    streams = tuple(_stream(m) for m in _STREAM_RE.finditer(stderr))
    return MediaProbe(duration_s=duration, streams=streams)


def probe_media(path: str | os.PathLike[str]) -> MediaProbe:
    """Streams and duration of a media file, from the bundled ``ffmpeg -i`` (no ffprobe).

    Raises ValidationError when ffmpeg cannot open the file.
    """
    done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True, check=False)
    if "Input #0" not in done.stderr:
        raise ValidationError(f"ffmpeg cannot read {path}: "
                              f"{done.stderr.strip()[-300:] or 'no message'}")
    return parse_ffmpeg_info(done.stderr)
