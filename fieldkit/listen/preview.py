"""Listen to a recording: a loudness-normalised excerpt, time expansion, heterodyne or frequency
division, plus its spectrogram (docs/architecture.md, "Previews").

Bat listening: an excerpt can be centred on the loudest call the energy/band detector of
:mod:`fieldkit.dsp.call_energy` finds (its parameters are returned with the preview); time
expansion of an ultrasonic recording is high-passed first (:data:`HIGHPASS_HZ`); heterodyne is
tuned :data:`~fieldkit.dsp.listening.HETERODYNE_OFFSET_HZ` below the call's peak. The classic
manipulations (reverse, speed, pitch shift, echo: :mod:`fieldkit.dsp.manipulate`) apply to
every mode.

Reads only the excerpt's frames from the archived copy, calls the pure kernels of
:mod:`fieldkit.dsp.listening` and writes ``rec<ID>-<mode>.wav`` and ``rec<ID>-<mode>.png`` with
:mod:`fieldkit.io.render.media`. Every preview is loudness-normalised to :data:`TARGET_LUFS` under a
:data:`PEAK_DBFS` true-peak ceiling, so it is never clipped; the spectrogram always shows the
original samples in real units (seconds of the recording, kHz as recorded).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.signal

from fieldkit.catalogue.listing import RecordingFilter
from fieldkit.catalogue.queries import list_recordings
from fieldkit.catalogue.records import RecordingRow
from fieldkit.dsp import listening as kernels
from fieldkit.dsp.call_energy import CallDetectorParams, CallEvent, call_window
from fieldkit.dsp.manipulate import Manipulations
from fieldkit.dsp.manipulate import apply as manipulate
from fieldkit.dsp.resample import resample
from fieldkit.errors import ConfigError, NotFoundError, UnknownNameError, ValidationError
from fieldkit.io.audio.stream import read_excerpt
from fieldkit.io.render.media import spectrogram_png, write_wav

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = [
    "DEFAULT_EXCERPT_S",
    "MODES",
    "PEAK_DBFS",
    "TARGET_LUFS",
    "ULTRASONIC_RATE_HZ",
    "Excerpt",
    "PreviewOptions",
    "default_carrier_hz",
    "default_mode",
    "find_call",
    "dominant_hz",
    "find_recording",
    "preview_recording",
    "read_recording_excerpt",
    "render_preview",
]

MODES = ("excerpt", "time-expansion", "heterodyne", "frequency-division")
DEFAULT_EXCERPT_S = 10.0
#: EBU R 128 programme loudness; quiet enough that time-expanded bat calls reach it too.
TARGET_LUFS = -23.0
PEAK_DBFS = -1.0
#: From this rate on, the default mode is time expansion (bat detectors record at 192-500 kHz).
ULTRASONIC_RATE_HZ = 192_000
#: Heterodyne's default carrier is the dominant frequency above this, rounded to 1 kHz.
CARRIER_FLOOR_HZ = 15_000.0
PLAYABLE = ("ok", "truncated")
#: High-pass before time-expanding an ultrasonic recording (Hz): below it lie wind, handling and
#: insects, not bats, and expanded they become a rumble that the loudness normalisation would
#: otherwise bring up.
HIGHPASS_HZ = 8_000.0
#: A call-centred excerpt lasts this long by default (5 s once expanded ten times).
CALL_EXCERPT_S = 0.5
#: How much of a recording the call detector scans from the start asked for.
CALL_SCAN_S = 60.0


@dataclass(frozen=True)
class Excerpt:
    """The original samples of an excerpt and where they come from."""

    recording: RecordingRow
    samples: np.ndarray  # float32 (channels, frames), full scale
    rate_hz: float
    start_s: float

    @property
    def duration_s(self) -> float:
        return self.samples.shape[-1] / self.rate_hz


def find_recording(ws: Workspace, key: str | int) -> RecordingRow:
    """A catalogued recording by id or by a sha256 prefix of at least 8 hex digits."""
    text = str(key).strip().lower()
    with ws.catalogue.read() as session:
        if text.isdigit():
            found = list_recordings(session, RecordingFilter(ids=(int(text),)))
        else:
            found = [r for r in list_recordings(session) if len(text) >= 8 and r.sha256.startswith(text)]
    if len(found) != 1:
        raise NotFoundError(f"recording {key!r} matches {len(found)} recordings; expected an id or a sha256 "
                            "prefix of at least 8 hex digits naming exactly one.",
                            hint="List them with 'fieldkit catalog recordings'.")
    return found[0]


def _check_playable(rec: RecordingRow) -> None:
    if rec.status not in PLAYABLE or not rec.sample_rate_hz or not rec.frames_present:
        why = "; ".join(x for x in (rec.reason, rec.status_message) if x) or "no audio frames"
        raise ValidationError(f"recording {rec.id} (archive/{rec.archive_path}) is {rec.status} ({why}); "
                              "it has no audio to preview.",
                              hint="Its bytes are kept in the archive; see 'fieldkit catalog recordings'.")


def read_archived_excerpt(ws: Workspace, rec: RecordingRow, start_frame: int, n_frames: int) -> np.ndarray:
    """Frames of a recording read from the archive root: a local file, or ranged reads of its
    object on a URL root (only the blocks of the excerpt are fetched, never the whole file)."""
    archive = ws.roots.archive
    if archive.is_local:
        return read_excerpt(ws.paths.archive / rec.archive_path, rec.frames_present, start_frame, n_frames,
                            subtype=rec.subtype)
    if not archive.exists(rec.archive_path):
        raise NotFoundError(f"recording {rec.id}: its archive object {archive.uri(rec.archive_path)} is missing.",
                            path=archive.uri(rec.archive_path),
                            hint="Run 'fieldkit verify' to check the archive against the catalogue.")
    with archive.open_read(rec.archive_path) as handle:
        return read_excerpt(handle, rec.frames_present, start_frame, n_frames, subtype=rec.subtype)


def read_recording_excerpt(ws: Workspace, rec: RecordingRow, start_s: float = 0.0,
                           duration_s: float | None = None) -> Excerpt:
    """Read ``duration_s`` seconds (default :data:`DEFAULT_EXCERPT_S`) from ``start_s``."""
    _check_playable(rec)
    duration_s = DEFAULT_EXCERPT_S if duration_s is None else duration_s
    if not (math.isfinite(start_s) and start_s >= 0 and math.isfinite(duration_s) and duration_s > 0):
        raise ConfigError(f"--start {start_s!r} and --duration {duration_s!r} are invalid; expected seconds, "
                          "start >= 0 and duration > 0.")
    rate = float(rec.sample_rate_hz)
    if start_s >= rec.frames_present / rate:
        raise ConfigError(f"--start {start_s:g} s is past the end of recording {rec.id} "
                          f"({rec.frames_present / rate:.3f} s long).")
    samples = read_archived_excerpt(ws, rec, round(start_s * rate), max(1, round(duration_s * rate)))
    return Excerpt(rec, samples, rate, start_s)


def dominant_hz(samples: np.ndarray, rate_hz: float, floor_hz: float = 0.0) -> float | None:
    """Frequency (Hz) of the strongest Welch-spectrum bin above ``floor_hz`` (DC excluded);
    None when no bin lies above ``floor_hz`` or the excerpt is silent."""
    mono = np.asarray(samples, np.float64).reshape(-1, samples.shape[-1]).mean(axis=0)
    freqs, power = scipy.signal.welch(mono, rate_hz, nperseg=min(4096, mono.size))
    band = (freqs > max(floor_hz, 0.0)) & (freqs > 0)
    if not band.any() or not np.any(power[band] > 0):
        return None
    return float(freqs[band][np.argmax(power[band])])


def default_carrier_hz(ex: Excerpt, call: CallEvent | None = None) -> float:
    """Tuned so the call is heard at a few kHz: the peak frequency of the call (or, without
    one, the dominant frequency above 15 kHz) less the offset, rounded to 1 kHz."""
    peak = call.peak_hz if call is not None else dominant_hz(ex.samples, ex.rate_hz, CARRIER_FLOOR_HZ)
    if peak is None:
        raise ConfigError(f"recording {ex.recording.id} ({ex.rate_hz:g} Hz) has nothing above "
                          f"{CARRIER_FLOOR_HZ / 1000:g} kHz to tune a heterodyne to.",
                          hint="Give --carrier-hz, or use --mode excerpt.")
    highest = math.ceil(ex.rate_hz / 2 / 1000) * 1000 - 1000
    return float(max(1000.0, min(round((peak - kernels.HETERODYNE_OFFSET_HZ) / 1000) * 1000, highest)))


def default_mode(rate_hz: float) -> str:
    """Time expansion for ultrasonic rates (>= 192 kHz), else a plain excerpt."""
    return "time-expansion" if rate_hz >= ULTRASONIC_RATE_HZ else "excerpt"


# -- modes: (excerpt, options) -> (samples, playback rate, parameters, GUANO fields or None) --------------

@dataclass(frozen=True)
class PreviewOptions:
    """Mode parameters (None: the default), the playback-rate cap, mono, manipulations.

    ``highpass_hz``: before time expansion and frequency division (default
    :data:`HIGHPASS_HZ` at ultrasonic rates, none below; 0 disables); ``band_hz``: the
    heterodyne low-pass; ``divisor``: frequency division ratio (10).
    """

    factor: int | None = None
    carrier_hz: float | None = None
    max_rate_hz: float | None = None  # cap on the playback rate of excerpts and heterodyne
    mono: bool = False
    band_hz: float | None = None
    divisor: int = 10
    highpass_hz: float | None = None
    manipulations: Manipulations = Manipulations()
    call: CallEvent | None = None  # the call the excerpt is centred on, when it is

    def high_pass(self, rate_hz: float) -> float | None:
        if self.highpass_hz is not None:
            return self.highpass_hz or None
        return HIGHPASS_HZ if rate_hz >= ULTRASONIC_RATE_HZ else None


def _excerpt(ex: Excerpt, opt: PreviewOptions) -> tuple[np.ndarray, float, dict, dict | None]:
    if opt.max_rate_hz and ex.rate_hz > opt.max_rate_hz:
        return resample(ex.samples, ex.rate_hz, opt.max_rate_hz), float(opt.max_rate_hz), {}, None
    return ex.samples, ex.rate_hz, {}, None


def _time_expansion(ex: Excerpt, opt: PreviewOptions) -> tuple[np.ndarray, float, dict, dict | None]:
    factor = opt.factor if opt.factor is not None else kernels.default_expansion_factor(ex.rate_hz, dominant_hz(ex.samples, ex.rate_hz))
    cutoff = opt.high_pass(ex.rate_hz)
    samples = kernels.high_pass(ex.samples, ex.rate_hz, cutoff) if cutoff else ex.samples
    y, rate = kernels.time_expand(samples, ex.rate_hz, factor)
    guano: dict[str, Any] = {"TE": factor, "Samplerate": round(ex.rate_hz), "Length": round(ex.duration_s, 6),
                             "Original Filename": Path(ex.recording.archive_path).name,
                             "fieldkit|Preview": "time expansion",
                             "fieldkit|Recording": ex.recording.sha256}
    if cutoff:
        guano["fieldkit|High-pass Hz"] = cutoff
    start = ex.recording.start_time_utc
    if start:
        guano["Timestamp"] = dt.datetime.fromisoformat(start) + dt.timedelta(seconds=ex.start_s)
    return y, rate, {"factor": factor, "highpass_hz": cutoff}, guano


def _out_rate(opt: PreviewOptions) -> float:
    return min(opt.max_rate_hz or kernels.MAX_PLAYBACK_RATE_HZ, kernels.MAX_PLAYBACK_RATE_HZ)


def _heterodyne(ex: Excerpt, opt: PreviewOptions) -> tuple[np.ndarray, float, dict, dict | None]:
    carrier = opt.carrier_hz if opt.carrier_hz is not None else default_carrier_hz(ex, opt.call)
    band = opt.band_hz if opt.band_hz is not None else kernels.HETERODYNE_BAND_HZ
    y, rate = kernels.heterodyne(ex.samples, ex.rate_hz, carrier, out_rate_hz=_out_rate(opt), cutoff_hz=band)
    return y, rate, {"carrier_hz": carrier, "band_hz": min(band, 0.45 * rate, 0.45 * ex.rate_hz)}, None


def _frequency_division(ex: Excerpt, opt: PreviewOptions) -> tuple[np.ndarray, float, dict, dict | None]:
    cutoff = opt.high_pass(ex.rate_hz)
    y, rate = kernels.frequency_divide(ex.samples, ex.rate_hz, opt.divisor, _out_rate(opt), cutoff)
    return y, rate, {"divisor": opt.divisor, "highpass_hz": cutoff}, None


_RENDERERS: dict[str, Callable[[Excerpt, PreviewOptions], tuple[np.ndarray, float, dict, dict | None]]] = {
    "excerpt": _excerpt, "time-expansion": _time_expansion, "heterodyne": _heterodyne,
    "frequency-division": _frequency_division,
}


def render_preview(ex: Excerpt, mode: str | None, out_dir: Path,
                   options: PreviewOptions = PreviewOptions()) -> dict[str, Any]:
    """Render one mode of an excerpt to ``rec<ID>-<mode>.wav`` and ``.png`` in ``out_dir``."""
    mode = mode or default_mode(ex.rate_hz)
    if mode not in _RENDERERS:
        raise UnknownNameError("preview mode", mode, MODES)
    y, rate, params, guano = _RENDERERS[mode](ex, options)
    if options.manipulations.active:
        shifter = None
        if options.manipulations.semitones:  # librosa only when asked for (fieldkit.dsp.pitch_shift)
            from fieldkit.dsp.pitch_shift import pitch_shift as shifter
        y = manipulate(y, rate, options.manipulations, shifter)
        params["manipulations"] = options.manipulations.to_dict()
        guano = None if guano is None else {**guano, "fieldkit|Manipulated": "yes"}
    if options.mono and y.ndim == 2:
        y = y.mean(axis=0)
    y, loudness = kernels.loudness_normalise(y, rate, target_lufs=TARGET_LUFS, peak_dbfs=PEAK_DBFS)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"rec{ex.recording.id}-{mode}"
    wav = write_wav(stem.with_suffix(".wav"), y, rate, guano=guano)
    title = f"recording {ex.recording.id}: {ex.start_s:.2f}-{ex.start_s + ex.duration_s:.2f} s ({mode})"
    png = spectrogram_png(stem.with_suffix(".png"), ex.samples, ex.rate_hz, title, te_factor=params.get("factor"),
                          start_s=ex.start_s)
    return {"recording_id": ex.recording.id, "sha256": ex.recording.sha256, "mode": mode, "wav": wav,
            "png": png, "start_s": ex.start_s, "excerpt_s": ex.duration_s, "rate_hz": ex.rate_hz,
            "playback_rate_hz": rate, "preview_s": y.shape[-1] / rate, "channels": 1 if y.ndim == 1 else y.shape[0],
            **params, "loudness": loudness}


def find_call(ws: Workspace, rec: RecordingRow, start_s: float, duration_s: float,
              detector: CallDetectorParams = CallDetectorParams()) -> tuple[float, CallEvent | None, int]:
    """Where a ``duration_s`` excerpt centred on the loudest call in :data:`CALL_SCAN_S` seconds
    of ``rec`` from ``start_s`` starts, that call and the number found (times in the recording)."""
    scan = read_recording_excerpt(ws, rec, start_s, CALL_SCAN_S)
    offset, best, count = call_window(scan.samples, scan.rate_hz, duration_s, detector)
    if best is None:
        return start_s, None, 0
    shifted = CallEvent(best.start_s + start_s, best.end_s + start_s, best.peak_s + start_s, best.peak_db,
                        best.peak_hz)
    return start_s + offset, shifted, count


def preview_recording(ws: Workspace, recording: str | int, start_s: float = 0.0, duration_s: float | None = None,
                      mode: str | None = None, factor: int | None = None, carrier_hz: float | None = None,
                      out_dir: Path | str | None = None, *, max_rate_hz: float | None = None,
                      mono: bool = False, call: bool = False, detector: CallDetectorParams = CallDetectorParams(),
                      band_hz: float | None = None, divisor: int = 10, highpass_hz: float | None = None,
                      manipulations: Manipulations = Manipulations()) -> dict[str, Any]:
    """Write a listening preview of a catalogued recording and its spectrogram.

    Parameters
    ----------
    ws : Workspace
    recording : str or int
        Recording id, or a sha256 prefix (>= 8 hex digits).
    start_s, duration_s : float
        Excerpt of the recording, seconds (default: the first :data:`DEFAULT_EXCERPT_S` s;
        with ``call``, :data:`CALL_EXCERPT_S` s around the call).
    mode : {"excerpt", "time-expansion", "heterodyne", "frequency-division"}, optional
        Default: time expansion at >= 192 kHz, else an excerpt.
    factor : int, optional
        Time-expansion factor (default: the smallest of 1, 2, 5, 10, 20... that makes it audible).
    carrier_hz : float, optional
        Heterodyne carrier (default: 4 kHz below the call's peak, else below the dominant
        frequency above 15 kHz, to 1 kHz).
    out_dir : path, optional
        Default ``<workspace>/exports/previews``.
    max_rate_hz, mono
        Keep previews small (the HTML report): playback rate cap and channel mix-down.
    call : bool
        Centre the excerpt on the loudest call found from ``start_s`` (energy/band detector
        with ``detector``'s parameters); without a call, the excerpt starts at ``start_s``.
    band_hz, divisor, highpass_hz, manipulations
        Heterodyne low-pass, frequency-division ratio, high-pass before time expansion and
        division (see :class:`PreviewOptions`), and reverse/speed/pitch/echo.

    Returns
    -------
    dict
        Paths (``wav``, ``png``), the mode's parameters, durations (``excerpt_s`` of the
        recording, ``preview_s`` of playback), the loudness report and, with ``call``,
        ``call`` (the event, ``calls_found`` and the ``detector`` parameters).
    """
    rec = find_recording(ws, recording)
    found: CallEvent | None = None
    call_info: dict[str, Any] = {}
    if call:
        _check_playable(rec)
        duration_s = CALL_EXCERPT_S if duration_s is None else duration_s
        start_s, found, count = find_call(ws, rec, start_s, duration_s, detector)
        call_info = {"call": {**(found.to_dict() if found else {"none": "no call above the threshold"}),
                              "calls_found": count, "detector": detector.to_dict()}}
    ex = read_recording_excerpt(ws, rec, start_s, duration_s)
    options = PreviewOptions(factor, carrier_hz, max_rate_hz, mono, band_hz, divisor, highpass_hz, manipulations,
                             found)
    with ws.default_output("previews", out_dir) as target:
        out = Path(out_dir) if out_dir is not None else target.folder
        return target.publish({**render_preview(ex, mode, out, options), **call_info})
