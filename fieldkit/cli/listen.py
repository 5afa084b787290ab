"""``fieldkit preview``, ``sonify``, ``video`` and ``report``: listen to and look at the data."""

from __future__ import annotations

from pathlib import Path

import typer

from fieldkit.cli.app_state import state
from fieldkit.cli.render import emit_json, err

#: :data:`fieldkit.listen.preview.MODES`, written out so that ``--help`` does not import the listening
#: stack (numpy, scipy, matplotlib); a test keeps the two equal.
MODES = ("excerpt", "time-expansion", "heterodyne")
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")
MODE = typer.Option(None, "--mode", help=f"{' | '.join(MODES)} (default: time-expansion at >= 192 kHz, else excerpt).")


def preview(
    ctx: typer.Context,
    recording: str = typer.Argument(..., help="Recording id or sha256 prefix."),
    start: float = typer.Option(0.0, "--start", help="Start of the excerpt in the recording, seconds."),
    duration: float | None = typer.Option(None, "--duration", help="Length of the excerpt, seconds (default 10)."),
    mode: str | None = MODE,
    factor: int | None = typer.Option(None, "--factor", help="Time-expansion factor (default: audible, e.g. 10)."),
    carrier_hz: float | None = typer.Option(None, "--carrier-hz", help="Heterodyne carrier, Hz (default: the "
                                               "dominant frequency above 15 kHz)."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: exports/previews)."),
    json_out: bool = JSON,
) -> None:
    """Listen to a recording: a loudness-normalised excerpt, time expansion or heterodyne, plus its spectrogram."""
    from fieldkit.listen.preview import preview_recording

    result = preview_recording(state(ctx).open(), recording, start, duration, mode, factor, carrier_hz, out)
    if json_out:
        emit_json(result)
        return
    extra = f" ×{result['factor']}" if "factor" in result else (
        f" at {result['carrier_hz'] / 1000:g} kHz" if "carrier_hz" in result else "")
    err.print(f"recording {result['recording_id']}: {result['mode']}{extra}, {result['excerpt_s']:.2f} s → "
              f"{result['preview_s']:.2f} s at {result['playback_rate_hz']:g} Hz, "
              f"{result['loudness']['output_lufs']:.1f} LUFS")
    err.print(f"  {result['wav']}\n  {result['png']}")
    if result["loudness"].get("note"):
        err.print(f"  [yellow]note[/yellow]: {result['loudness']['note']}")


def sonify(
    ctx: typer.Context,
    target: str | None = typer.Argument(None, help="A run id (integer) or a dataset name."),
    deployment: str | None = typer.Option(None, "--deployment", help="'A night in a minute': a deployment "
                                             "(NAME or SITE/NAME) from the latest complete run."),
    pitch: str = typer.Option("centroid", "--pitch", help="Feature for the pitch (NAME or NAME:BAND)."),
    duration: str = typer.Option("rms", "--duration", help="Feature for the note duration (0.1-0.5 s)."),
    volume: str = typer.Option("peak_dbfs", "--volume", help="Feature for the volume."),
    scale: str = typer.Option("pentatonic", "--scale", help="pentatonic | major | minor | chromatic."),
    notes: int | None = typer.Option(None, "--notes", help="Notes of the scale used (default: 3 octaves)."),
    seconds: float = typer.Option(60.0, "--seconds", help="With --deployment: length of the melody, seconds."),
    out: Path | None = typer.Option(None, "--out", help="Output WAV (default: exports/sonify/...)."),
    json_out: bool = JSON,
) -> None:
    """Listen to the data: one note per clip (or group of clips), pitch, duration and volume from features."""
    from fieldkit.listen.sonify import SonifyOptions, sonify_dataset, sonify_deployment, sonify_run

    if (target is None) == (deployment is None):
        raise typer.BadParameter("give a run id or a dataset name, or --deployment NAME (one of them).")
    ws, opt = state(ctx).open(), SonifyOptions(pitch, duration, volume, scale, notes)
    if deployment is not None:
        result = sonify_deployment(ws, deployment, seconds, opt, out)
    elif target.isdigit():
        result = sonify_run(ws, int(target), opt, out)
    else:
        result = sonify_dataset(ws, target, opt, out)
    if json_out:
        emit_json(result)
        return
    err.print(f"{result['title']}: {result['points']} points ({result['clips']} clips) → {len(result['notes'])} notes, "
              f"{result['rests']} rests, {result['duration_s']:.1f} s on the {result['scale']} scale")
    if result.get("clips_without_time"):
        err.print(f"  [yellow]{result['clips_without_time']} clips have no start time and are left out[/yellow]")
    for key in ("wav", "series_png", "timeline_png"):
        if key in result:
            err.print(f"  {result[key]}")


def video(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="A recording (id or sha256 prefix) or run:ID."),
    out: Path = typer.Option(..., "--out", help="Output MP4."),
    start: float = typer.Option(0.0, "--start", help="Recording: start of the excerpt, seconds."),
    duration: float | None = typer.Option(None, "--duration", help="Recording: length of the excerpt, seconds."),
    mode: str | None = MODE,
    json_out: bool = JSON,
) -> None:
    """Data video: a spectrogram with a moving cursor, the preview or the sonification as its sound."""
    from fieldkit.listen.video import video as make_video

    result = make_video(state(ctx).open(), target, out, start_s=start, duration_s=duration, mode=mode)
    if json_out:
        emit_json(result)
        return
    kinds = ", ".join(f"{s['kind']} {s['codec']}" for s in result["streams"])
    err.print(f"{result['source']}: {result['mp4']} ({result['duration_s']:.1f} s; {kinds})")


def report(
    ctx: typer.Context,
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: exports/report)."),
    previews: int = typer.Option(8, "--previews", min=0, help="Recordings with an embedded audio preview."),
    json_out: bool = JSON,
) -> None:
    """A static, self-contained HTML report of the workspace that opens offline."""
    from fieldkit.listen.report import build_report

    result = build_report(state(ctx).open(), out, max_previews=previews)
    if json_out:
        emit_json(result)
        return
    err.print(f"report: {result['html']} ({result['bytes'] / 1e6:.1f} MB; {result['deployments']} deployments, "
              f"{result['runs']} runs, {result['datasets']} datasets, {result['previews']} previews)")


def register(app: typer.Typer) -> None:
    app.command("preview")(preview)
    app.command("sonify")(sonify)
    app.command("video")(video)
    app.command("report")(report)
