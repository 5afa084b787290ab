"""``fieldkit preview``, ``sonify``, ``video`` and ``report``: listen to and look at the data."""

from __future__ import annotations

from pathlib import Path

import typer

from fieldkit.cli.app_state import state
from fieldkit.cli.render import emit_json, err

#: :data:`fieldkit.listen.preview.MODES`, written out so that ``--help`` does not import the listening
#: stack (numpy, scipy, matplotlib); a test keeps the two equal.
MODES = ("excerpt", "time-expansion", "heterodyne", "frequency-division")
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")
MODE = typer.Option(None, "--mode", help=f"{' | '.join(MODES)} (default: time-expansion at >= 192 kHz, else excerpt).")


START = typer.Option(0.0, "--start", help="Start of the excerpt in the recording (or of the call search), seconds.")
FACTOR = typer.Option(None, "--factor", help="Time-expansion factor (default: audible, e.g. 10).")
CARRIER = typer.Option(None, "--carrier-hz", help="Heterodyne carrier, Hz (default: 4 kHz below the call's peak).")
BAND = typer.Option(None, "--band-hz", help="Heterodyne: the band heard either side of the carrier, Hz (default 6000).")
DIVISOR = typer.Option(10, "--divisor", help="Frequency division ratio (10: 45 kHz is heard at 4.5 kHz).")
HIGHPASS = typer.Option(None, "--highpass-hz", help="High-pass before time expansion / division, Hz (default 8000 "
                        "at >= 192 kHz; 0: none).")
CALL = typer.Option(False, "--call", help="Centre the excerpt on the loudest call (energy/band detector).")
BACKWARDS = typer.Option(False, "--backwards", help="Play the preview backwards.")
SPEED = typer.Option(1.0, "--speed", help="Playback speed (0.5: half speed, an octave lower).")
SHIFT = typer.Option(0.0, "--pitch-shift", help="Pitch shift in semitones, duration kept (librosa, soxr).")
ECHO = typer.Option(0.0, "--echo", help="Echo delay, seconds (0: none).")
FEEDBACK = typer.Option(0.4, "--echo-feedback", help="Level of each echo relative to the one before (0-1).")


def preview_kwargs(call: bool, band_hz: float | None, divisor: int, highpass_hz: float | None, backwards: bool,
                   speed: float, pitch_shift: float, echo: float, echo_feedback: float) -> dict:
    """Keyword arguments of :func:`fieldkit.listen.preview.preview_recording` from the shared options."""
    from fieldkit.dsp.manipulate import Manipulations

    return {"call": call, "band_hz": band_hz, "divisor": divisor, "highpass_hz": highpass_hz,
            "manipulations": Manipulations(backwards, speed, pitch_shift, echo, echo_feedback)}


def preview(
    ctx: typer.Context,
    recording: str = typer.Argument(..., help="Recording id or sha256 prefix."),
    start: float = START,
    duration: float | None = typer.Option(None, "--duration", help="Length of the excerpt, seconds (default 10; "
                                          "with --call 0.5)."),
    mode: str | None = MODE,
    factor: int | None = FACTOR,
    carrier_hz: float | None = CARRIER,
    band_hz: float | None = BAND, divisor: int = DIVISOR, highpass_hz: float | None = HIGHPASS, call: bool = CALL,
    backwards: bool = BACKWARDS, speed: float = SPEED, pitch_shift: float = SHIFT, echo: float = ECHO,
    echo_feedback: float = FEEDBACK,
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: exports/previews)."),
    json_out: bool = JSON,
) -> None:
    """Listen to a recording: an excerpt, time expansion, heterodyne or frequency division, plus its spectrogram."""
    from fieldkit.listen.preview import preview_recording

    result = preview_recording(state(ctx).open(), recording, start, duration, mode, factor, carrier_hz, out,
                               **preview_kwargs(call, band_hz, divisor, highpass_hz, backwards, speed, pitch_shift,
                                                echo, echo_feedback))
    if json_out:
        emit_json(result)
        return
    extra = (f" ×{result['factor']}" if "factor" in result else
             f" at {result['carrier_hz'] / 1000:g} kHz" if "carrier_hz" in result else
             f" /{result['divisor']}" if "divisor" in result else "")
    err.print(f"recording {result['recording_id']}: {result['mode']}{extra}, {result['start_s']:.3f} s + "
              f"{result['excerpt_s']:.2f} s → {result['preview_s']:.2f} s at {result['playback_rate_hz']:g} Hz, "
              f"{result['loudness']['output_lufs']:.1f} LUFS")
    if "call" in result:
        c = result["call"]
        err.print(f"  centred on a call at {c['peak_s']:.3f} s, {c['peak_hz'] / 1000:.1f} kHz ({c['calls_found']} found)"
                  if "peak_s" in c else "  [yellow]no call found: the excerpt starts at --start[/yellow]")
    err.print(f"  {result['wav']}\n  {result['png']}")
    if result["loudness"].get("note"):
        err.print(f"  [yellow]note[/yellow]: {result['loudness']['note']}")


FEATURE_HELP = "NAME, NAME:BAND, count or (pan, timbre) site | deployment | recording; 'none' leaves it out"
PITCH = typer.Option(None, "--pitch", help=f"Feature for the pitch (default centroid). {FEATURE_HELP}.")
DURATION = typer.Option(None, "--duration", help="Feature for the note duration, 0.1-0.5 s (default bandwidth).")
VOLUME = typer.Option(None, "--volume", help="Feature for the volume (default rms).")
PAN = typer.Option(None, "--pan", help="Feature for the stereo position (default mfcc:1).")
TIMBRE = typer.Option(None, "--timbre", help="Feature or category for the instrument (default site).")
SCALE = typer.Option("pentatonic", "--scale", help="pentatonic | major | minor | chromatic | whole-tone | "
                     "harmonic-minor | blues | granville | N-tet (19-tet) | cents:0,200,... | FILE.scl.")
NOTES = typer.Option(None, "--notes", help="Notes of the scale used (default: 3 octaves).")
BASE_HZ = typer.Option(None, "--base-hz", help="Lowest note, Hz (default 220; granville: MIDI 35).")
MAPS = typer.Option(None, "--map", help="DIM=linear|quantile|log|asinh, repeatable (default linear).")
REVERSE = typer.Option(None, "--reverse", help="Map DIM high-to-low (e.g. volume: low values loud); repeatable.")
INSTRUMENTS = typer.Option(None, "--instrument", help="Instruments for the timbre, repeatable "
                           "(flute, clarinet, strings, organ, sine; default all five).")
MONO = typer.Option(False, "--mono", help="One channel: no pan.")
MIDI = typer.Option(False, "--midi", help="Also write the notes as a MIDI file (one track per instrument).")


def sonify_options(pitch: str | None, duration: str | None, volume: str | None, pan: str | None,
                   timbre: str | None, scale: str, notes: int | None, base_hz: float | None,
                   maps: list[str] | None, reverse: list[str] | None, instruments: list[str] | None,
                   mono: bool, midi: bool):  # -> SonifyOptions, imported lazily
    """The :class:`~fieldkit.listen.sonify.SonifyOptions` of the shared sonify/video options."""
    from fieldkit.errors import ConfigError
    from fieldkit.listen.sonify import SonifyOptions

    pairs = []
    for item in maps or []:
        dim, sep, method = item.partition("=")
        if not sep:
            raise ConfigError(f"--map {item!r} is invalid; expected DIM=MAP, e.g. pitch=log.")
        pairs.append((dim.strip(), method.strip()))
    extra = {"instruments": tuple(instruments)} if instruments else {}
    return SonifyOptions(pitch, duration, volume, pan, timbre, scale, notes, base_hz, tuple(pairs),
                         tuple(reverse or ()), mono=mono, midi=midi, **extra)


def sonify(
    ctx: typer.Context,
    target: str | None = typer.Argument(None, help="A run id (integer) or a dataset name."),
    deployment: str | None = typer.Option(None, "--deployment", help="'A night in a minute', clock-true: a "
                                             "deployment (NAME or SITE/NAME)."),
    run: int | None = typer.Option(None, "--run", help="With --deployment: the run to play (default: the latest "
                                   "complete run with clips of it)."),
    seconds_per_hour: float = typer.Option(7.5, "--seconds-per-hour", help="With --deployment: seconds of melody "
                                           "per clock hour (7.5: an 8-hour night in a minute)."),
    max_gap_h: float = typer.Option(24.0, "--max-gap-h", help="With --deployment: longer gaps are played as this "
                                    "many hours (and reported)."),
    pitch: str | None = PITCH, duration: str | None = DURATION, volume: str | None = VOLUME,
    pan: str | None = PAN, timbre: str | None = TIMBRE, scale: str = SCALE, notes: int | None = NOTES,
    base_hz: float | None = BASE_HZ, maps: list[str] | None = MAPS, reverse: list[str] | None = REVERSE,
    instruments: list[str] | None = INSTRUMENTS, mono: bool = MONO, midi: bool = MIDI,
    out: Path | None = typer.Option(None, "--out", help="Output WAV (default: exports/sonify/...)."),
    json_out: bool = JSON,
) -> None:
    """Listen to the data: one note per clip (or clock slot), five features as pitch, duration, volume, pan, timbre."""
    from fieldkit.listen.night import ClockMap, sonify_deployment
    from fieldkit.listen.sonify import sonify_dataset, sonify_run

    if (target is None) == (deployment is None):
        raise typer.BadParameter("give a run id or a dataset name, or --deployment NAME (one of them).")
    ws = state(ctx).open()
    opt = sonify_options(pitch, duration, volume, pan, timbre, scale, notes, base_hz, maps, reverse, instruments,
                         mono, midi)
    if deployment is not None:
        result = sonify_deployment(ws, deployment, opt, out, run_id=run,
                                   clock=ClockMap(seconds_per_hour=seconds_per_hour, max_gap_h=max_gap_h))
    elif target.isdigit():
        result = sonify_run(ws, int(target), opt, out)
    else:
        result = sonify_dataset(ws, target, opt, out)
    if json_out:
        emit_json(result)
        return
    dims = ", ".join(f"{d} {f}" for d, f in result["features"].items())
    err.print(f"{result['title']}\n  {result['points']} points ({result['clips']} clips) → {len(result['notes'])} notes, "
              f"{result['rests']} rests, {result['duration_s']:.1f} s on the {result['scale']} scale ({dims})")
    if result.get("clips_without_time"):
        err.print(f"  [yellow]{result['clips_without_time']} clips have no start time and cannot be placed on the "
                  f"clock (recordings {', '.join(map(str, result['recordings_without_time']))})[/yellow]")
    for gap in (result.get("clock") or {}).get("compressed_gaps", []):
        err.print(f"  a {gap['hours']:.0f} h gap ({gap['from']} → {gap['to']}) is played as {gap['played_as_h']:g} h")
    for key in ("wav", "series_png", "legend", "midi"):
        if key in result:
            err.print(f"  {result[key]}")


def video(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="A recording (id or sha256 prefix), run:ID, dataset:NAME or "
                                 "deployment:NAME."),
    out: Path = typer.Option(..., "--out", help="Output MP4."),
    start: float = START,
    duration: float | None = typer.Option(None, "--duration", help="Recording: length of the excerpt, seconds."),
    mode: str | None = MODE, factor: int | None = FACTOR, carrier_hz: float | None = CARRIER,
    band_hz: float | None = BAND, divisor: int = DIVISOR, highpass_hz: float | None = HIGHPASS, call: bool = CALL,
    backwards: bool = BACKWARDS, speed: float = SPEED, pitch_shift: float = SHIFT, echo: float = ECHO,
    echo_feedback: float = FEEDBACK,
    run: int | None = typer.Option(None, "--run", help="deployment:NAME: the run to play."),
    seconds_per_hour: float = typer.Option(7.5, "--seconds-per-hour", help="deployment:NAME: seconds per clock hour."),
    max_gap_h: float = typer.Option(24.0, "--max-gap-h", help="deployment:NAME: longest gap played in full, hours."),
    pitch: str | None = PITCH, duration_feature: str | None = typer.Option(None, "--note-duration",
                                                                          help="Feature for the note duration."),
    volume: str | None = VOLUME, pan: str | None = PAN, timbre: str | None = TIMBRE, scale: str = SCALE,
    notes: int | None = NOTES, base_hz: float | None = BASE_HZ, maps: list[str] | None = MAPS,
    reverse: list[str] | None = REVERSE, instruments: list[str] | None = INSTRUMENTS, mono: bool = MONO,
    json_out: bool = JSON,
) -> None:
    """Data video: the recording's spectrogram or the sonified series with a moving cursor, and their sound."""
    from fieldkit.listen.night import ClockMap
    from fieldkit.listen.video import video as make_video

    opt = sonify_options(pitch, duration_feature, volume, pan, timbre, scale, notes, base_hz, maps, reverse,
                         instruments, mono, False)
    kwargs = preview_kwargs(call, band_hz, divisor, highpass_hz, backwards, speed, pitch_shift, echo, echo_feedback)
    result = make_video(state(ctx).open(), target, out, start_s=start, duration_s=duration, mode=mode,
                        preview={"factor": factor, "carrier_hz": carrier_hz, **kwargs}, opt=opt, run_id=run,
                        clock=ClockMap(seconds_per_hour=seconds_per_hour, max_gap_h=max_gap_h))
    if json_out:
        emit_json(result)
        return
    kinds = ", ".join(f"{s['kind']} {s['codec']}" for s in result["streams"])
    err.print(f"{result['title']}: {result['mp4']} ({result['duration_s']:.1f} s; {kinds}); shows {result['shows']}")


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
