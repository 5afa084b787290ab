"""Listen to the data: the clips of a run, a dataset or a deployment as a melody
(docs/architecture.md, "Previews"; after V. Granville, "Sound Generation in Python: Turning
Your Data into Music").

One note per data point, in time order: a data point is a clip (frame features averaged over
the clip's frames, per-clip QC as it is), or for "a night in a minute" a group of consecutive
clips. The notes come from :func:`fieldkit.dsp.melody.melody`; the WAV and the plots of the three
series (and the deployment's timeline) are written by :mod:`fieldkit.io.render.media`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fieldkit.catalogue import labels as label_rows
from fieldkit.catalogue import runs as run_rows
from fieldkit.catalogue.records import RunRow
from fieldkit.dsp.melody import melody
from fieldkit.errors import ConfigError, NotFoundError, UnknownNameError
from fieldkit.io.render.media import series_plot_png, timeline_png, write_wav
from fieldkit.store.zarr_store import open_store

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["DUR_RANGE_S", "RATE_HZ", "Points", "SonifyOptions", "available_features", "clip_points",
           "group_points", "melody_points", "sonify_dataset", "sonify_deployment", "sonify_run",
           "sonify_run_samples"]

RATE_HZ = 22_050
#: Shortest and longest note, seconds (the issue's 0.1-0.5 s).
DUR_RANGE_S = (0.1, 0.5)
_NOT_FEATURES = {"waveform", "valid_samples"}
_BLOCK_CLIPS = 1024  # clips read at once: memory stays flat on long runs


@dataclass(frozen=True)
class SonifyOptions:
    """Which features drive pitch, duration and volume, and the scale they are played on.

    A feature is a store variable (``centroid``, ``rms``, ``peak_dbfs``...) or ``NAME:K``,
    band ``K`` of a banded one (``mfcc:1``); banded features without ``:K`` are averaged over
    their bands.
    """

    pitch: str = "centroid"
    duration: str = "rms"
    volume: str = "peak_dbfs"
    scale: str = "pentatonic"
    n_notes: int | None = None

    @property
    def features(self) -> tuple[str, str, str]:
        return self.pitch, self.duration, self.volume


@dataclass
class Points:
    """Data points in time order: their start times and the three feature series."""

    times: np.ndarray  # datetime64[ns], NaT when unknown
    clips: np.ndarray  # clips per point (1 for clip-level points)
    values: dict[str, np.ndarray] = field(default_factory=dict)


# -- reading per-clip features ---------------------------------------------------------------

def available_features(ds: Any) -> list[str]:
    """Store variables that can drive a note (every data variable over ``clip`` but waveforms)."""
    return sorted(n for n, v in ds.data_vars.items() if v.dims[:1] == ("clip",) and n not in _NOT_FEATURES)


def _variable(ds: Any, spec: str) -> Any:
    name, _, band = spec.partition(":")
    if name not in available_features(ds):
        raise UnknownNameError("feature", spec, available_features(ds))
    var = ds[name]
    if not band:
        return var
    if var.ndim != 3 or not band.isdigit() or int(band) >= var.shape[2]:
        raise ConfigError(f"feature {spec!r} is invalid; expected NAME:K with K < {var.shape[-1]} for a "
                          f"banded feature ({name} has dims {var.dims}).")
    return var.isel({var.dims[2]: int(band)})


def _clip_means(var: Any, clips: np.ndarray) -> np.ndarray:
    """Per-clip mean over every non-clip axis, ignoring NaN; read in blocks of clips."""
    out = np.full(clips.size, np.nan)
    for start in range(0, clips.size, _BLOCK_CLIPS):
        block = np.asarray(var.isel(clip=clips[start:start + _BLOCK_CLIPS]).values, np.float64)
        block = block.reshape(block.shape[0], -1)
        finite = np.isfinite(block)
        count = finite.sum(axis=1)
        total = np.where(finite, block, 0.0).sum(axis=1)
        out[start:start + block.shape[0]] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def _time_order(times: np.ndarray, clips: np.ndarray) -> np.ndarray:
    """Order by start time (unknown times last), then by clip index."""
    key = times.astype("datetime64[ns]").astype(np.int64)
    key = np.where(np.isnat(times), np.iinfo(np.int64).max, key)
    return np.lexsort((clips, key))


def clip_points(store_path: Path, features: tuple[str, ...], clips: np.ndarray | None = None,
                where: Any = None) -> Points:
    """One point per real clip of a store (padding excluded), in time order.

    ``clips`` restricts to those clip indices; ``where(coords) -> bool mask`` filters on the
    coordinates (``site``, ``deployment``...).
    """
    ds = open_store(store_path, chunks=None)
    try:
        specs = {f: _variable(ds, f) for f in dict.fromkeys(features)}
        coords = {k: ds[k].values for k in ("recording_id", "start_time", "site", "deployment")}
        keep = coords["recording_id"] >= 0
        if where is not None:
            keep &= where(coords)
        index = np.flatnonzero(keep) if clips is None else np.asarray(clips, np.int64)[keep[clips]]
        index = index[_time_order(coords["start_time"][index], index)]
        values = {f: _clip_means(var, index) for f, var in specs.items()}
    finally:
        ds.close()
    return Points(coords["start_time"][index], np.ones(index.size, np.int64), values)


def group_points(points: Points, max_points: int) -> Points:
    """Consecutive points averaged into at most ``max_points`` groups (time of the first)."""
    n = points.times.size
    if n <= max_points:
        return points
    groups = np.array_split(np.arange(n), max_points)
    firsts = np.array([g[0] for g in groups])
    values = {}
    for name, v in points.values.items():
        values[name] = np.array([np.nanmean(v[g]) if np.isfinite(v[g]).any() else np.nan for g in groups])
    return Points(points.times[firsts], np.array([points.clips[g].sum() for g in groups]), values)


# -- writing ----------------------------------------------------------------------------------

def _outputs(out: Path | str | None, default: Path) -> tuple[Path, Path, Path]:
    wav = Path(out) if out is not None else default
    wav.parent.mkdir(parents=True, exist_ok=True)
    return wav, wav.with_name(wav.stem + "-series.png"), wav.with_name(wav.stem + "-timeline.png")


def melody_points(points: Points, opt: SonifyOptions) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The melody of ``points``: float32 samples at :data:`RATE_HZ` and the notes played."""
    series = [points.values[f] for f in opt.features]
    return melody(*series, scale=opt.scale, n_notes=opt.n_notes, rate_hz=RATE_HZ, dur_range=DUR_RANGE_S)


def _write(points: Points, opt: SonifyOptions, out: Path | str | None, default: Path, title: str,
           timeline: bool = False) -> tuple[dict[str, Any], np.ndarray]:
    if points.times.size == 0:
        raise NotFoundError(f"{title} has no clips to sonify.", hint="Check the run with 'fieldkit catalog run ID'.")
    wav, series_png, timeline_png_path = _outputs(out, default)
    samples, notes = melody_points(points, opt)
    write_wav(wav, samples, RATE_HZ)
    pitch, duration, volume = (points.values[f] for f in opt.features)
    series_plot_png(series_png, pitch, duration, volume,
                    f"{title}: pitch {opt.pitch}, duration {opt.duration}, volume {opt.volume}")
    result = {"title": title, "wav": wav, "series_png": series_png, "points": int(points.times.size),
              "clips": int(points.clips.sum()), "rests": int(points.times.size - len(notes)),
              "duration_s": samples.size / RATE_HZ, "rate_hz": RATE_HZ, "scale": opt.scale,
              "features": dict(zip(("pitch", "duration", "volume"), opt.features)), "notes": notes}
    if timeline:
        timed = ~np.isnat(points.times)
        timeline_png(timeline_png_path, points.times[timed], pitch[timed], title, ylabel=opt.pitch)
        result["timeline_png"] = timeline_png_path
    return result, samples


def _default_dir(ws: Workspace) -> Path:
    return ws.paths.exports / "sonify"


def sonify_run_samples(ws: Workspace, run_id: int, opt: SonifyOptions = SonifyOptions(),
                       out: Path | str | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`sonify_run`, also returning the melody's samples (for the data video)."""
    with ws.catalogue.read() as session:
        run = run_rows.get_run(session, run_id)
    points = clip_points(ws.root / run.store_path, opt.features)
    result, samples = _write(points, opt, out, _default_dir(ws) / f"run{run_id}.wav", f"run {run_id}")
    return {"run_id": run_id, **result}, samples


def sonify_run(ws: Workspace, run_id: int, opt: SonifyOptions = SonifyOptions(),
               out: Path | str | None = None) -> dict[str, Any]:
    """Sonify every clip of a processing run, in time order: one note per clip.

    Parameters
    ----------
    ws : Workspace
    run_id : int
    opt : SonifyOptions
        Features for pitch, duration (rescaled to 0.1-0.5 s) and volume, and the scale.
    out : path, optional
        The WAV (default ``<workspace>/exports/sonify/run<ID>.wav``); the plot of the three
        series is written next to it as ``<stem>-series.png``.

    Returns
    -------
    dict
        ``wav``, ``series_png``, ``points``, ``rests``, ``duration_s``, ``notes`` (one dict per
        note played: ``index``, ``freq_hz``, ``start_s``, ``duration_s``, ``amplitude``).
    """
    return sonify_run_samples(ws, run_id, opt, out)[0]


def sonify_dataset(ws: Workspace, name: str, opt: SonifyOptions = SonifyOptions(), out: Path | str | None = None,
                   version: int | None = None) -> dict[str, Any]:
    """Sonify the clips of a dataset (latest version by default), as :func:`sonify_run`."""
    with ws.catalogue.read() as session:
        dataset = label_rows.get_dataset(session, name, version)
    clips = np.array(sorted(i.clip_id for i in dataset.items), np.int64)
    points = clip_points(ws.root / dataset.store_path, opt.features, clips=clips)
    title = f"dataset {name} v{dataset.version}"
    default = _default_dir(ws) / f"dataset-{name}-v{dataset.version}.wav"
    result, _ = _write(points, opt, out, default, title)
    return {"dataset": name, "version": dataset.version, "run_id": dataset.run_id, **result}


def _deployment_filter(name: str) -> Any:
    site, _, deployment = name.rpartition("/")
    return lambda c: (c["deployment"] == deployment) & ((c["site"] == site) if site else True)


def _latest_run_with(ws: Workspace, name: str) -> RunRow:
    """The latest complete run whose store holds clips of deployment ``name`` (``SITE/NAME`` or ``NAME``)."""
    with ws.catalogue.read() as session:
        complete = [r for r in run_rows.list_runs(session) if r.state == "complete"]
    for run in sorted(complete, key=lambda r: r.id, reverse=True):
        ds = open_store(ws.root / run.store_path, chunks=None)
        try:
            coords = {k: ds[k].values for k in ("site", "deployment")}
        finally:
            ds.close()
        if _deployment_filter(name)(coords).any():
            return run
    raise NotFoundError(f"no complete processing run has clips of deployment {name!r} "
                        f"(complete runs: {', '.join(str(r.id) for r in complete) or 'none'}).",
                        hint="Process it first: 'fieldkit process WORKFLOW' with the deployment selected.")


def sonify_deployment(ws: Workspace, name: str, seconds: float = 60.0, opt: SonifyOptions = SonifyOptions(),
                      out: Path | str | None = None) -> dict[str, Any]:
    """"A night in a minute": a deployment's clips of the latest complete run as a short melody.

    Clips with a start time, in time order, are grouped (consecutive clips averaged) into at
    most ``seconds / 0.3`` points (0.3 s: the mean note duration), so the melody lasts about
    ``seconds``; a timeline of the pitch feature is drawn next to the series plot.

    Parameters
    ----------
    name : str
        Deployment name, or ``SITE/NAME`` when names repeat across sites.
    seconds : float
        Target length of the melody, seconds (> 0).
    """
    if not seconds > 0:
        raise ConfigError(f"seconds = {seconds!r} is invalid; expected a duration > 0.")
    run = _latest_run_with(ws, name)
    points = clip_points(ws.root / run.store_path, opt.features, where=_deployment_filter(name))
    timed = ~np.isnat(points.times)
    untimed = int((~timed).sum())
    points = Points(points.times[timed], points.clips[timed], {k: v[timed] for k, v in points.values.items()})
    max_points = max(1, int(seconds / (sum(DUR_RANGE_S) / 2)))
    grouped = group_points(points, max_points)
    stem = name.replace("/", "-")
    result, _ = _write(grouped, opt, out, _default_dir(ws) / f"deployment-{stem}.wav",
                       f"deployment {name} (run {run.id})", timeline=True)
    return {"deployment": name, "run_id": run.id, "max_points": max_points, "clips_without_time": untimed,
            **result}
