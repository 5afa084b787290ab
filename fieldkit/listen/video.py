"""Data video: a spectrogram with a moving cursor and a sound track (docs/architecture.md,
"Previews").

A recording's video shows the spectrogram of its excerpt in real units with its listening
preview as the sound (time-expanded for ultrasonic recordings, so the cursor moves slower
than real time); a run's video shows the spectrogram of its melody with the melody.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldkit.errors import ConfigError
from fieldkit.io.render.media import probe_media, spectrogram_video
from fieldkit.listen.preview import find_recording, read_recording_excerpt, render_preview
from fieldkit.listen.sonify import RATE_HZ, SonifyOptions, sonify_run_samples

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["FPS", "video"]

FPS = 10


def _run_id(target: str) -> int | None:
    """``run:ID`` -> ID; None for anything else (a recording)."""
    prefix, sep, rest = target.partition(":")
    if not sep or prefix.lower() != "run":
        return None
    if not rest.isdigit():
        raise ConfigError(f"target {target!r} is invalid; expected run:ID with an integer ID, e.g. run:3.")
    return int(rest)


def _recording_video(ws: Workspace, key: str, out_mp4: Path, tmp: Path, start_s: float,
                     duration_s: float | None, mode: str | None) -> dict[str, Any]:
    ex = read_recording_excerpt(ws, find_recording(ws, key), start_s, duration_s)
    preview = render_preview(ex, mode, tmp)
    spectrogram_video(out_mp4, ex.samples, ex.rate_hz, preview["wav"], fps=FPS)
    params = {k: preview[k] for k in ("factor", "carrier_hz") if k in preview}
    return {"source": f"recording {ex.recording.id}", "mode": preview["mode"], **params,
            "audio_s": preview["preview_s"]}


def _run_video(ws: Workspace, run_id: int, out_mp4: Path, tmp: Path, opt: SonifyOptions) -> dict[str, Any]:
    result, samples = sonify_run_samples(ws, run_id, opt, out=tmp / f"run{run_id}.wav")
    spectrogram_video(out_mp4, samples, RATE_HZ, result["wav"], fps=FPS)
    return {"source": f"run {run_id}", "notes": len(result["notes"]), "audio_s": result["duration_s"]}


def video(ws: Workspace, target: str | int, out_mp4: Path | str, *, start_s: float = 0.0,
          duration_s: float | None = None, mode: str | None = None,
          opt: SonifyOptions | None = None) -> dict[str, Any]:
    """Write an MP4 (H.264 + AAC) of a recording's preview or a run's sonification.

    Parameters
    ----------
    ws : Workspace
    target : str or int
        A recording (id or sha256 prefix) or ``run:ID``.
    out_mp4 : path
    start_s, duration_s, mode
        For a recording: the excerpt and the preview mode (see
        :func:`fieldkit.listen.preview.preview_recording`).
    opt : SonifyOptions
        For a run: features and scale of the melody.

    Returns
    -------
    dict
        ``mp4``, ``source``, ``audio_s`` and what ffmpeg reads back: ``duration_s`` and the
        ``streams`` (kind, codec).
    """
    out = Path(out_mp4)
    out.parent.mkdir(parents=True, exist_ok=True)
    run_id = _run_id(str(target))
    with tempfile.TemporaryDirectory(prefix="fieldkit-video-") as tmp:
        if run_id is None:
            info = _recording_video(ws, str(target), out, Path(tmp), start_s, duration_s, mode)
        else:
            info = _run_video(ws, run_id, out, Path(tmp), opt or SonifyOptions())
    probe = probe_media(out)
    streams = [{"kind": s.kind, "codec": s.codec} for s in probe.streams]
    return {"mp4": out, **info, "duration_s": probe.duration_s, "streams": streams}
