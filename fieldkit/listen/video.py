"""Data video: the data with a moving cursor and its sound (docs/architecture.md, "Previews").

A recording's video shows the spectrogram of its excerpt in real units (seconds of the
recording, kHz, dB re full scale) with its listening preview as the sound (time-expanded for
ultrasonic recordings, so the cursor moves slower than real time; the time axis says so). A
run's, dataset's or deployment's video shows the sonified feature series and the notes played,
with the cursor sweeping them in step with the melody that is its sound. Every video has a
title; it takes the same options as ``preview`` (recordings) and ``sonify`` (the rest).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldkit.errors import ConfigError
from fieldkit.io.render.media import probe_media, series_video, spectrogram_video
from fieldkit.listen.night import ClockMap, sonify_deployment_plot
from fieldkit.listen.preview import find_recording, preview_recording, read_recording_excerpt
from fieldkit.listen.sonify import SonifyOptions, sonify_dataset_plot, sonify_run_samples

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["FPS", "TARGETS", "video"]

FPS = 10
TARGETS = ("run", "dataset", "deployment")


def _split(target: str) -> tuple[str | None, str]:
    """``run:3`` -> ("run", "3"); a recording id or sha256 prefix -> (None, target)."""
    prefix, sep, rest = target.partition(":")
    if not sep or prefix.lower() not in TARGETS:
        return None, target
    if not rest or (prefix.lower() == "run" and not rest.isdigit()):
        raise ConfigError(f"target {target!r} is invalid; expected run:ID (an integer), dataset:NAME or "
                          "deployment:NAME, e.g. run:3.")
    return prefix.lower(), rest


def _recording_video(ws: Workspace, key: str, out_mp4: Path, tmp: Path, start_s: float,
                     duration_s: float | None, mode: str | None, preview: dict[str, Any]) -> dict[str, Any]:
    rec = find_recording(ws, key)
    result = preview_recording(ws, rec.id, start_s, duration_s, mode, out_dir=tmp, **preview)
    ex = read_recording_excerpt(ws, rec, result["start_s"], result["excerpt_s"])
    title = (f"recording {rec.id} ({Path(rec.archive_path).name}): {result['start_s']:.2f}-"
             f"{result['start_s'] + result['excerpt_s']:.2f} s, {result['mode']}")
    spectrogram_video(out_mp4, ex.samples, ex.rate_hz, result["wav"], fps=FPS, title=title,
                      te_factor=result.get("factor"), start_s=ex.start_s)
    params = {k: result[k] for k in ("factor", "carrier_hz", "divisor", "call", "manipulations") if k in result}
    return {"source": f"recording {rec.id}", "title": title, "mode": result["mode"], **params,
            "audio_s": result["preview_s"], "shows": "spectrogram of the recording"}


def _melody_video(kind: str, name: str, ws: Workspace, out_mp4: Path, tmp: Path, opt: SonifyOptions,
                  clock: ClockMap, run_id: int | None) -> dict[str, Any]:
    wav = tmp / "melody.wav"
    if kind == "run":
        result, _, plot = sonify_run_samples(ws, int(name), opt, out=wav)
    elif kind == "dataset":
        result, plot = sonify_dataset_plot(ws, name, opt, out=wav)
    else:
        result, plot = sonify_deployment_plot(ws, name, opt, out=wav, run_id=run_id, clock=clock)
    series_video(out_mp4, audio_path=result["wav"], fps=FPS, **plot)
    return {"source": f"{kind} {name}", "title": plot["title"], "notes": len(result["notes"]),
            "features": result["features"], "audio_s": result["duration_s"],
            "shows": "the sonified feature series and the notes played"}


def video(ws: Workspace, target: str | int, out_mp4: Path | str, *, start_s: float = 0.0,
          duration_s: float | None = None, mode: str | None = None, preview: dict[str, Any] | None = None,
          opt: SonifyOptions | None = None, clock: ClockMap = ClockMap(), run_id: int | None = None) -> dict[str, Any]:
    """Write an MP4 (H.264 + AAC) of a recording's preview or of a sonification.

    Parameters
    ----------
    ws : Workspace
    target : str or int
        A recording (id or sha256 prefix), ``run:ID``, ``dataset:NAME`` or ``deployment:NAME``.
    out_mp4 : path
    start_s, duration_s, mode, preview
        For a recording: the excerpt, the preview mode and the other keyword arguments of
        :func:`fieldkit.listen.preview.preview_recording` (``call``, ``manipulations``...).
    opt, clock, run_id
        For a sonification: as :func:`fieldkit.listen.sonify.sonify_run` and, for a
        deployment, :func:`fieldkit.listen.night.sonify_deployment`.

    Returns
    -------
    dict
        ``mp4``, ``source``, ``title``, ``shows``, ``audio_s`` and what ffmpeg reads back:
        ``duration_s`` and the ``streams`` (kind, codec).
    """
    out = Path(out_mp4)
    out.parent.mkdir(parents=True, exist_ok=True)
    kind, name = _split(str(target))
    with tempfile.TemporaryDirectory(prefix="fieldkit-video-") as tmp:
        if kind is None:
            info = _recording_video(ws, name, out, Path(tmp), start_s, duration_s, mode, preview or {})
        else:
            info = _melody_video(kind, name, ws, out, Path(tmp), opt or SonifyOptions(), clock, run_id)
    probe = probe_media(out)
    streams = [{"kind": s.kind, "codec": s.codec} for s in probe.streams]
    return {"mp4": out, **info, "duration_s": probe.duration_s, "streams": streams}
