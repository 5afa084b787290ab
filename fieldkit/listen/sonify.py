"""Listen to the data: the clips of a run, a dataset or a deployment as a melody
(docs/architecture.md, "Previews"; after V. Granville, "Sound Generation in Python: Turning
Your Data into Music").

One note per data point, in time order: a data point is a clip (frame features averaged over
the clip's frames, per-clip QC as it is), or for "a night in a minute" the clips of one clock
slot (:mod:`fieldkit.listen.night`). Five dimensions - pitch, duration, volume, pan, timbre - are
each driven by a feature, ``count`` (clips per point) or, for pan and timbre, a category; the
defaults carry five different pieces of information (:data:`DEFAULTS`). The notes come from
:func:`fieldkit.dsp.melody.melody`; next to the WAV go a legend (JSON: which feature drives
what, with ranges and units), the series picture (:mod:`fieldkit.io.render.media`) and, on
request, a MIDI file (:mod:`fieldkit.io.render.midi`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fieldkit.catalogue import labels as label_rows
from fieldkit.catalogue import runs as run_rows
from fieldkit.catalogue.records import RunRow
from fieldkit.dsp.melody import INSTRUMENTS, melody
from fieldkit.dsp.scales import MAPS, parse_scale, parse_scl, positions
from fieldkit.errors import ConfigError, NotFoundError, UnknownNameError
from fieldkit.io.render.media import series_plot_png, write_wav
from fieldkit.io.render.midi import write_midi
from fieldkit.listen.points import CATEGORIES, COUNT, Points, clip_points, store_features
from fieldkit.store.zarr_store import open_store

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = [
    "DIMENSIONS",
    "DUR_RANGE_S",
    "RATE_HZ",
    "SonifyOptions",
    "deployment_filter",
    "melody_points",
    "resolve_dimensions",
    "run_points",
    "run_with_deployment",
    "sonify_dataset",
    "sonify_dataset_plot",
    "sonify_run",
    "sonify_run_samples",
    "write_melody",
]

RATE_HZ = 22_050
#: Shortest and longest note, seconds (the issue's 0.1-0.5 s).
DUR_RANGE_S = (0.1, 0.5)
AMP_RANGE = (0.1, 0.8)
DIMENSIONS = ("pitch", "duration", "volume", "pan", "timbre")
#: Default feature of each dimension: the first one the store has and no earlier dimension took,
#: so that the five defaults carry five different pieces of information: where the spectrum
#: sits (centroid), how wide it is (bandwidth), how loud the clip is (rms), its spectral slope
#: (mfcc:1, left = steep) and where it was recorded (site).
DEFAULTS: dict[str, tuple[str, ...]] = {
    "pitch": ("centroid", "mfcc:2", "rms"),
    "duration": ("bandwidth", "mfcc:2", "silent_fraction"),
    "volume": ("rms", "peak_dbfs"),
    "pan": ("mfcc:1", "mfcc:3", "dc_offset"),
    "timbre": ("site",),
}
FEATURE_UNITS = {"centroid": "Hz", "bandwidth": "Hz", "rms": "full scale", "peak_dbfs": "dBFS",
                 "mfcc": "cepstral coefficient", "mel": "power", "logmel": "dB", "chroma": "relative 0-1",
                 "clipped_fraction": "fraction", "dc_offset": "full scale", "silent_fraction": "fraction",
                 COUNT: "clips"}


@dataclass(frozen=True)
class SonifyOptions:
    """Which features drive the five dimensions, the scale, maps, instruments and outputs.

    A feature is a store variable (``centroid``, ``rms``, ``peak_dbfs``...), ``NAME:K`` (band
    ``K`` of a banded one, ``mfcc:1``; without ``:K`` banded features are averaged over their
    bands), ``count`` (clips per point) or, for any dimension but pitch, duration and volume,
    a category of :data:`CATEGORIES`. None takes the default (:data:`DEFAULTS`); ``"none"``
    leaves pan or timbre out. ``scale`` is a spec of :func:`fieldkit.dsp.scales.parse_scale` or
    the path of a Scala ``.scl`` file; ``maps`` are ``(dimension, map)`` pairs; ``reverse`` the
    dimensions mapped high-to-low; ``mono`` drops pan; ``midi`` also writes a ``.mid`` file.
    """

    pitch: str | None = None
    duration: str | None = None
    volume: str | None = None
    pan: str | None = None
    timbre: str | None = None
    scale: str = "pentatonic"
    n_notes: int | None = None
    base_hz: float | None = None
    maps: tuple[tuple[str, str], ...] = ()
    reverse: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ("flute", "clarinet", "strings", "organ", "sine")
    mono: bool = False
    midi: bool = False

    def check(self) -> None:
        """Refuse unknown dimensions, maps and instruments before anything is read."""
        for dim, method in self.maps:
            if dim not in DIMENSIONS:
                raise UnknownNameError("dimension", dim, DIMENSIONS)
            if method not in MAPS:
                raise UnknownNameError("map", method, MAPS)
        for dim in self.reverse:
            if dim not in DIMENSIONS:
                raise UnknownNameError("dimension", dim, DIMENSIONS)
        for name in self.instruments:
            if name not in INSTRUMENTS:
                raise UnknownNameError("instrument", name, tuple(INSTRUMENTS))
        if not self.instruments:
            raise ConfigError("at least one instrument is needed.")


# -- the five dimensions ------------------------------------------------------------------------

def _offered(spec: str, offered: list[str]) -> bool:
    return spec.partition(":")[0] in offered


def resolve_dimensions(opt: SonifyOptions, offered: list[str]) -> dict[str, str]:
    """The feature of each dimension: the given one, or the first default the store offers that
    no earlier dimension took. Pan is left out in mono, pan and timbre when ``"none"``."""
    opt.check()
    chosen: dict[str, str] = {}
    for dim in DIMENSIONS:
        given = getattr(opt, dim)
        if (dim == "pan" and opt.mono) or (given or "").lower() == "none":
            continue
        if given is not None:
            if dim in ("pitch", "duration", "volume") and given in CATEGORIES:
                raise ConfigError(f"--{dim} {given} is a category; pitch, duration and volume need a number "
                                  f"(categories drive pan or timbre).")
            chosen[dim] = given
            continue
        free = [f for f in DEFAULTS[dim] if _offered(f, offered) and f not in chosen.values()]
        if free:
            chosen[dim] = free[0]
    missing = [d for d in ("pitch", "duration", "volume") if d not in chosen]
    if missing:
        raise ConfigError(f"no feature for {', '.join(missing)}: the store offers {', '.join(offered)}.",
                          hint=f"Name one with --{missing[0]} FEATURE.")
    return chosen


def _scale_hz(opt: SonifyOptions) -> tuple[np.ndarray, dict[str, Any]]:
    spec = opt.scale
    if spec.lower().endswith(".scl"):
        path = Path(spec)
        if not path.is_file():
            raise NotFoundError(f"Scala file {spec} does not exist.", path=path,
                                hint="Give a .scl file (https://www.huygens-fokker.org/scala/scl_format.html).")
        scale = parse_scl(path.read_text(encoding="utf-8", errors="replace"), name=path.name)
        scale = type(scale)(scale.name, scale.cents, scale.period_cents, None)
    else:
        scale = parse_scale(spec)
    freqs = scale.frequencies(opt.n_notes, opt.base_hz)
    return freqs, {**scale.to_dict(), "spec": spec, "notes": int(freqs.size),
                   "lowest_hz": float(freqs[0]), "highest_hz": float(freqs[-1])}


def _timbre_index(points: Points, spec: str, opt: SonifyOptions) -> tuple[np.ndarray, dict[str, str]]:
    """Instrument index per point and which instrument plays what (the legend's words)."""
    n = len(opt.instruments)
    if spec in CATEGORIES:
        labels = points.categories[spec]
        names = sorted(set(labels.tolist()))
        if "timbre" in opt.reverse:
            names = names[::-1]
        code = {name: i % n for i, name in enumerate(names)}
        return np.array([code[x] for x in labels], np.int64), {name: opt.instruments[code[name]] for name in names}
    pos = positions(points.series(spec), dict(opt.maps).get("timbre", "linear"), "timbre" in opt.reverse)
    index = np.minimum(np.nan_to_num(pos, nan=0.0) * n, n - 1).astype(np.int64)
    return index, {f"bin {i + 1} of {n} (low to high)": opt.instruments[i] for i in range(n)}


def melody_points(points: Points, opt: SonifyOptions, dims: dict[str, str] | None = None,
                  onsets_s: np.ndarray | None = None) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, Any]]:
    """The melody of ``points``: float32 samples at :data:`RATE_HZ`, the notes played and the
    legend (which feature drives what, with ranges and units)."""
    dims = dims or resolve_dimensions(opt, [*points.values, *points.categories, COUNT])
    freqs, scale = _scale_hz(opt)
    timbre, instruments = (_timbre_index(points, dims["timbre"], opt) if "timbre" in dims
                           else (None, {"all": opt.instruments[0]}))
    maps = dict(opt.maps)
    samples, notes = melody(
        *(points.series(dims[d]) for d in ("pitch", "duration", "volume")), rate_hz=RATE_HZ,
        dur_range=DUR_RANGE_S, amp_range=AMP_RANGE, scale_hz=freqs,
        pan_values=points.series(dims["pan"]) if "pan" in dims else None,
        instrument_index=timbre, instruments=opt.instruments, maps=maps, reverse=tuple(opt.reverse),
        onsets_s=onsets_s)
    outputs = {"pitch": f"{scale['notes']} notes, {scale['lowest_hz']:.1f}-{scale['highest_hz']:.1f} Hz",
               "duration": f"{DUR_RANGE_S[0]}-{DUR_RANGE_S[1]} s", "volume": f"{AMP_RANGE[0]}-{AMP_RANGE[1]} peak",
               "pan": "left (-1) to right (+1)", "timbre": instruments}
    legend = {"dimensions": {d: _legend_entry(points, d, spec, maps, opt, outputs[d]) for d, spec in dims.items()},
              "scale": scale, "instruments": {n: INSTRUMENTS[n]["harmonics"] for n in opt.instruments},
              "rate_hz": RATE_HZ, "channels": 2 if "pan" in dims else 1,
              "rests": "a point with no value for pitch, duration or volume is silent"}
    return samples, notes, legend


def _legend_entry(points: Points, dim: str, spec: str, maps: dict[str, str], opt: SonifyOptions,
                  to: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"feature": spec, "reverse": dim in opt.reverse, "to": to}
    if spec in CATEGORIES:
        return {**entry, "kind": "category", "values": sorted(set(points.categories[spec].tolist()))}
    v = points.series(spec)
    finite = v[np.isfinite(v)]
    return {**entry, "kind": "feature", "unit": FEATURE_UNITS.get(spec.partition(":")[0], ""),
            "map": maps.get(dim, "linear"),
            "range": [float(finite.min()), float(finite.max())] if finite.size else None}


# -- writing ----------------------------------------------------------------------------------

def _stem_paths(wav: Path) -> dict[str, Path]:
    return {"series_png": wav.with_name(wav.stem + "-series.png"),
            "timeline_png": wav.with_name(wav.stem + "-timeline.png"),
            "legend": wav.with_name(wav.stem + "-legend.json"), "midi": wav.with_suffix(".mid")}


def write_melody(points: Points, opt: SonifyOptions, out: Path | str | None, default: Path, title: str, *,
           dims: dict[str, str], onsets_s: np.ndarray | None = None, marks: list[tuple[float, str]] | None = None,
           extra_legend: dict[str, Any] | None = None) -> tuple[dict[str, Any], np.ndarray, dict[str, Any]]:
    """Render ``points`` and write the WAV, legend, series picture (and MIDI): (result, samples,
    the series picture's arguments, for :func:`fieldkit.io.render.media.series_video`)."""
    if points.times.size == 0:
        raise NotFoundError(f"{title} has no clips to sonify.", hint="Check the run with 'fieldkit catalog run ID'.")
    wav = Path(out) if out is not None else default
    wav.parent.mkdir(parents=True, exist_ok=True)
    paths = _stem_paths(wav)
    samples, notes, legend = melody_points(points, opt, dims, onsets_s)
    legend = {"title": title, **legend, **(extra_legend or {})}
    write_wav(wav, samples, RATE_HZ)
    paths["legend"].write_text(json.dumps(legend, indent=2, default=str) + "\n", encoding="utf-8")
    sounding = [n["index"] for n in notes]
    starts = (onsets_s if onsets_s is not None else
              np.interp(np.arange(points.times.size), sounding, [n["start_s"] for n in notes]) if notes
              else np.zeros(points.times.size))
    plot = {"starts_s": starts, "series": _plot_series(points, dims, legend), "notes": notes, "title": title,
            "legend_lines": _legend_lines(legend), "marks": marks}
    series_plot_png(paths["series_png"], **plot)
    result = {"title": title, "wav": wav, "series_png": paths["series_png"], "legend": paths["legend"],
              "points": int(points.times.size), "clips": int(points.clips.sum()),
              "rests": int(points.times.size - len(notes)), "duration_s": samples.shape[-1] / RATE_HZ,
              "rate_hz": RATE_HZ, "channels": legend["channels"], "scale": opt.scale, "features": dims,
              "notes": notes}
    if opt.midi:
        programs = {n: INSTRUMENTS[n]["program"] for n in opt.instruments}
        result["midi"] = write_midi(paths["midi"], notes, programs)
    return result, samples, plot


def _plot_series(points: Points, dims: dict[str, str], legend: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    out = []
    for dim, spec in dims.items():
        if spec in CATEGORIES:
            continue
        unit = legend["dimensions"][dim].get("unit")
        out.append((f"{dim} ← {spec}" + (f" ({unit})" if unit else ""), points.series(spec)))
    return out


def _legend_lines(legend: dict[str, Any]) -> list[str]:
    lines = []
    for dim, e in legend["dimensions"].items():
        to = e["to"] if isinstance(e["to"], str) else ", ".join(f"{k}: {v}" for k, v in e["to"].items())
        how = f" [{e['map']}{', reversed' if e['reverse'] else ''}]" if e["kind"] == "feature" else ""
        lines.append(f"{dim}: {e['feature']}{how} → {to}")
    lines.append(f"scale: {legend['scale']['spec']}")
    return lines


def run_points(store: Path, opt: SonifyOptions, clips: np.ndarray | None = None,
               where: Any = None, also: tuple[str, ...] = ()) -> tuple[Points, dict[str, str]]:
    """The points of a store's clips with the features of ``opt``'s dimensions (and ``also``)."""
    dims = resolve_dimensions(opt, store_features(store))
    return clip_points(store, (*dims.values(), *also), clips=clips, where=where), dims


def sonify_run_samples(ws: Workspace, run_id: int, opt: SonifyOptions = SonifyOptions(),
                       out: Path | str | None = None) -> tuple[dict[str, Any], np.ndarray, dict[str, Any]]:
    """:func:`sonify_run`, also returning the melody's samples and the series picture's
    arguments (for the data video)."""
    with ws.catalogue.read() as session:
        run = run_rows.get_run(session, run_id)
    points, dims = run_points(ws.store_location(run.store_path), opt)
    title = f"run {run_id}: {points.times.size} clips in time order, one note each"
    with ws.default_output("sonify", out) as target:
        result, samples, plot = write_melody(points, opt, out, target.folder / f"run{run_id}.wav", title, dims=dims)
        return {"run_id": run_id, **target.publish(result)}, samples, plot


def sonify_run(ws: Workspace, run_id: int, opt: SonifyOptions = SonifyOptions(),
               out: Path | str | None = None) -> dict[str, Any]:
    """Sonify every clip of a processing run, in time order: one note per clip.

    Parameters
    ----------
    ws : Workspace
    run_id : int
    opt : SonifyOptions
        Features of the five dimensions, scale, maps, instruments, mono, MIDI.
    out : path, optional
        The WAV (default ``<workspace>/exports/sonify/run<ID>.wav``); next to it
        ``<stem>-series.png`` (the series and the notes), ``<stem>-legend.json`` (which
        feature drives what, ranges and units) and, with ``opt.midi``, ``<stem>.mid``.

    Returns
    -------
    dict
        ``wav``, ``series_png``, ``legend``, ``midi``, ``points``, ``rests``, ``duration_s``,
        ``channels``, ``features`` (dimension -> feature), ``notes`` (one dict per note played:
        ``index``, ``freq_hz``, ``midi``, ``start_s``, ``duration_s``, ``amplitude``, ``pan``,
        ``instrument``).
    """
    return sonify_run_samples(ws, run_id, opt, out)[0]


def sonify_dataset(ws: Workspace, name: str, opt: SonifyOptions = SonifyOptions(), out: Path | str | None = None,
                   version: int | None = None) -> dict[str, Any]:
    """Sonify the clips of a dataset (latest version by default), as :func:`sonify_run`."""
    return sonify_dataset_plot(ws, name, opt, out, version)[0]


def sonify_dataset_plot(ws: Workspace, name: str, opt: SonifyOptions = SonifyOptions(),
                        out: Path | str | None = None, version: int | None = None) -> tuple[dict[str, Any], dict]:
    """:func:`sonify_dataset`, also returning the series picture's arguments (for the video)."""
    with ws.catalogue.read() as session:
        dataset = label_rows.get_dataset(session, name, version)
    clips = np.array(sorted(i.clip_id for i in dataset.items), np.int64)
    points, dims = run_points(ws.store_location(dataset.store_path), opt, clips=clips)
    title = f"dataset {name} v{dataset.version}: {points.times.size} clips in time order, one note each"
    with ws.default_output("sonify", out) as target:
        default = target.folder / f"dataset-{name}-v{dataset.version}.wav"
        result, _, plot = write_melody(points, opt, out, default, title, dims=dims)
        return {"dataset": name, "version": dataset.version, "run_id": dataset.run_id, **target.publish(result)}, plot


def deployment_filter(name: str) -> Any:
    """``where(coords)`` of the clips of deployment ``NAME`` or ``SITE/NAME``."""
    site, _, deployment = name.rpartition("/")
    return lambda c: (c["deployment"] == deployment) & ((c["site"] == site) if site else True)


def run_with_deployment(ws: Workspace, name: str, run_id: int | None = None) -> RunRow:
    """Run ``run_id`` (checked to hold clips of deployment ``name``), or the latest complete
    run that does."""
    with ws.catalogue.read() as session:
        runs = ([run_rows.get_run(session, run_id)] if run_id is not None
                else [r for r in run_rows.list_runs(session) if r.state == "complete"])
    for run in sorted(runs, key=lambda r: r.id, reverse=True):
        ds = open_store(ws.store_location(run.store_path), chunks=None)
        try:
            coords = {k: ds[k].values for k in ("site", "deployment")}
        finally:
            ds.close()
        if deployment_filter(name)(coords).any():
            return run
    which = f"run {run_id} has" if run_id is not None else "no complete processing run has"
    raise NotFoundError(f"{which} no clips of deployment {name!r} "
                        f"(runs looked at: {', '.join(str(r.id) for r in runs) or 'none'}).",
                        hint="Process it first: 'fieldkit process WORKFLOW' with the deployment selected, "
                             "or pick another run with --run.")
