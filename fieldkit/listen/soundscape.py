"""Look at a deployment's soundscape: false-colour spectrograms and 24 h heat maps of indices.

Both read the per-clip acoustic indices a run stored (workflows computing them, e.g. the shipped
``soundscape``; definitions in :mod:`fieldkit.dsp.indices`), group the deployment's clips by
their start in the deployment's local clock time, and draw a PNG:

- :func:`ldfc_picture`: Towsey et al. (2014)'s long-duration false-colour spectrogram, R = ACI,
  G = ENT, B = EVN per frequency bin, one column per minute (``step_s``), a whole deployment
  (the minutes with data, gaps closed up and marked) or one local day (00:00-24:00, minutes
  without a recording grey);
- :func:`index_heatmap`: the mean of one per-clip index by hour (columns) and local day (rows).

The run is the newest complete run that stored the indices for clips of the deployment, or the
one asked for; the store is only read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fieldkit.catalogue import queries
from fieldkit.catalogue import runs as run_rows
from fieldkit.catalogue.records import DeploymentRow, RunRow
from fieldkit.config.params import INDICES
from fieldkit.dsp.false_colour import false_colour, group_sums, hour_day_grid, means_of
from fieldkit.errors import ConfigError, NotFoundError, UnknownNameError
from fieldkit.io.render.ldfc_figures import heatmap_png, ldfc_png
from fieldkit.model.times import parse_deployment_zone
from fieldkit.store.zarr_store import open_store

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["LDFC_CHANNELS", "MAX_COLUMNS", "index_heatmap", "indices_run", "ldfc_days", "ldfc_picture"]

#: Towsey et al. (2014)'s ACI-ENT-EVN picture: the store variables for red, green and blue.
LDFC_CHANNELS = ("aci_spectrum", "ent_spectrum", "evn_spectrum")
_MAX_TICKS = 12
#: Widest picture drawn: a week of minutes (Towsey draws a day: 1440). A whole season at one
#: column a minute would be a picture no screen shows and gigabytes of means.
MAX_COLUMNS = 7 * 1440
_BLOCK_CLIPS = 4096  # clips read at once: memory stays flat on a long deployment


def _find_deployment(ws: Workspace, name: str) -> DeploymentRow:
    """The catalogued deployment ``NAME`` or ``SITE/NAME``; a miss lists the known ones."""
    site, _, short = name.rpartition("/")
    with ws.catalogue.read() as session:
        rows = queries.list_deployments(session)
    found = [d for d in rows if d.name == short and (not site or d.site == site)]
    if not found:
        raise NotFoundError(f"no deployment {name!r} in the catalogue; known: "
                            f"{', '.join(f'{d.site}/{d.name}' for d in rows) or '(none)'}.",
                            hint="List them with 'fieldkit catalog deployments'.")
    if len(found) > 1:
        raise ConfigError(f"deployment name {name!r} is used at several sites "
                          f"({', '.join(d.site for d in found)}); give SITE/NAME.")
    return found[0]


def _clip_mask(ds: Any, dep: DeploymentRow) -> np.ndarray:
    return ((ds["recording_id"].values >= 0) & (ds["deployment"].values == dep.name)
            & (ds["site"].values == dep.site) & ~np.isnat(ds["start_time"].values))


def _run_with(ws: Workspace, dep: DeploymentRow, variables: tuple[str, ...], run_id: int | None) -> RunRow:
    """The run asked for, or the newest complete run that stored ``variables`` for the deployment."""
    with ws.catalogue.read() as session:
        candidates = [run_rows.get_run(session, run_id)] if run_id is not None else \
            sorted((r for r in run_rows.list_runs(session) if r.state == "complete"), key=lambda r: -r.id)
    for run in candidates:
        ds = open_store(ws.store_location(run.store_path), chunks=None)
        try:
            if run.state == "complete" and set(variables) <= set(ds.data_vars) and _clip_mask(ds, dep).any():
                return run
        finally:
            ds.close()
    which = f"run {run_id}" if run_id is not None else "no complete processing run"
    raise NotFoundError(f"{which} has {', '.join(variables)} for clips of deployment {dep.site}/{dep.name}"
                        f"{' (or it is not complete)' if run_id is not None else ''}.",
                        hint="Process the deployment with a workflow that computes the acoustic indices, "
                             "e.g. 'fieldkit process soundscape'.")


def indices_run(ws: Workspace, deployment: str, variables: tuple[str, ...] = LDFC_CHANNELS,
                run_id: int | None = None) -> RunRow:
    """The run a picture of ``deployment`` (``NAME`` or ``SITE/NAME``) would read.

    ``run_id`` when it is complete and stored ``variables`` for the deployment's clips, else the
    newest such run; :class:`~fieldkit.errors.NotFoundError` (naming the workflow to run) when none.
    Callers that cache pictures key them on it (``fieldkit serve``).
    """
    return _run_with(ws, _find_deployment(ws, deployment), variables, run_id)


def _clips(ws: Workspace, run: RunRow, dep: DeploymentRow) -> tuple[np.ndarray, pd.DatetimeIndex, dict[str, Any]]:
    """The store indices of the deployment's clips, their local start times, and the layout."""
    ds = open_store(ws.store_location(run.store_path), chunks=None)
    try:
        index = np.flatnonzero(_clip_mask(ds, dep))
        times = ds["start_time"].values[index]
        layout = dict(ds.attrs["layout"])
    finally:
        ds.close()
    zone = parse_deployment_zone(dep.timezone)
    return index, pd.DatetimeIndex(times).tz_localize("UTC").tz_convert(zone).tz_localize(None), layout


def _means_by_key(ws: Workspace, run: RunRow, index: np.ndarray, keys: np.ndarray,
                  variables: tuple[str, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Distinct keys (sorted) and each variable's mean over the clips of each key, read by blocks."""
    unique, inverse = np.unique(keys, return_inverse=True)
    sums: dict[str, list[np.ndarray]] = {}
    ds = open_store(ws.store_location(run.store_path), chunks=None)
    try:
        for start in range(0, index.size, _BLOCK_CLIPS):
            rows = slice(start, start + _BLOCK_CLIPS)
            for v in variables:
                part = group_sums(ds[v].isel(clip=index[rows]).values, inverse[rows], unique.size)
                sums[v] = [a + b for a, b in zip(sums[v], part, strict=True)] if v in sums else list(part)
    finally:
        ds.close()
    return unique, {v: means_of(*sums[v]) for v in variables}


def ldfc_days(ws: Workspace, deployment: str, run_id: int, step_s: int = 60) -> tuple[list[dt.date], bool]:
    """The local days with clips of ``deployment`` in run ``run_id``, and whether every step with
    data fits one picture (at most :data:`MAX_COLUMNS`; else :func:`ldfc_picture` wants a day)."""
    dep = _find_deployment(ws, deployment)
    with ws.catalogue.read() as session:
        run = run_rows.get_run(session, run_id)
    _, local, _ = _clips(ws, run, dep)
    return sorted(set(local.date)), bool(np.unique(_slots(local, step_s)).size <= MAX_COLUMNS)


def _slots(local: pd.DatetimeIndex, step_s: int) -> np.ndarray:
    """Time step of each clip: local seconds since 1970 // step_s."""
    return (local.asi8 // 1_000_000_000) // step_s


def _ticks(labels: list[str]) -> list[tuple[int, str]]:
    every = max(1, -(-len(labels) // _MAX_TICKS))
    return [(i, labels[i]) for i in range(0, len(labels), every)]


def _labels(slots: np.ndarray, step_s: int) -> list[str]:
    times = pd.to_datetime(slots * step_s, unit="s")
    fmt = "%H:%M" if len({t.date() for t in times}) <= 1 else "%Y-%m-%d %H:%M"
    return [t.strftime(fmt) for t in times]


def _out_path(folder: Path, out: Path | str | None, stem: str) -> Path:
    path = Path(out) if out is not None else folder / f"{stem}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _day_columns(present: np.ndarray, means: list[np.ndarray], day: dt.date, step_s: int
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every time step of a local day, and each channel's means on them (NaN where no clip)."""
    first = pd.Timestamp(day).value // 1_000_000_000 // step_s
    every = np.arange(first, first + 86_400 // step_s)
    full = []
    for m in means:
        grid = np.full((every.size, m.shape[1]), np.nan)
        grid[np.searchsorted(every, present)] = m
        full.append(grid)
    return every, full


def ldfc_picture(ws: Workspace, deployment: str, *, day: dt.date | None = None, run_id: int | None = None,
                 out: Path | str | None = None, step_s: int = 60) -> dict[str, Any]:
    """Towsey's ACI-ENT-EVN false-colour spectrogram of a deployment, or of one local day.

    Parameters
    ----------
    deployment : str
        ``NAME`` or ``SITE/NAME``.
    day : datetime.date, optional
        One day in the deployment's local time: 24 h wide, minutes without data grey.
        Without it, every time step with data, in order, gaps closed up (white lines).
    run_id : int, optional
        The run to read (default: the newest complete run that has the indices).
    out : path, optional
        PNG to write (default ``exports/pictures/ldfc-<deployment>[-<day>].png``).
    step_s : int
        Seconds per pixel column (Towsey: 60); clips starting in the same step are averaged.

    Returns
    -------
    dict
        The PNG's path and pixel size, run, deployment, columns, clips, frequency range (kHz),
        channel bounds and the axes drawn.
    """
    if not (isinstance(step_s, int) and step_s >= 1):
        raise ConfigError(f"step_s = {step_s!r} is invalid; expected whole seconds >= 1.")
    dep = _find_deployment(ws, deployment)
    run = _run_with(ws, dep, LDFC_CHANNELS, run_id)
    index, local, layout = _clips(ws, run, dep)
    if day is not None:
        keep = np.asarray(local.date == day)
        if not keep.any():
            days = sorted({str(d) for d in local.date})
            raise NotFoundError(f"deployment {dep.site}/{dep.name} has no clip on {day} (local time) in run "
                                f"{run.id}; days with clips: {', '.join(days)}.")
        index, local = index[keep], local[keep]
    steps = _slots(local, step_s)
    if day is None and np.unique(steps).size > MAX_COLUMNS:
        raise ConfigError(f"deployment {dep.site}/{dep.name} has clips in {np.unique(steps).size} steps of "
                          f"{step_s} s: more than the {MAX_COLUMNS} columns (a week of minutes) of one picture.",
                          hint="Draw one day with --day YYYY-MM-DD, or longer steps with --step.")
    slots, means = _means_by_key(ws, run, index, steps, LDFC_CHANNELS)
    channels = [means[v] for v in LDFC_CHANNELS]
    if day is not None:
        slots, channels = _day_columns(slots, channels, day, step_s)
    rgb, bounds = false_colour(*channels)
    labels = _labels(slots, step_s)
    breaks = [int(i) for i in np.flatnonzero(np.diff(slots) != 1) + 1]
    top_khz = layout["sample_rate_hz"] / 2000
    stem = f"ldfc-{deployment.replace('/', '-')}" + (f"-{day}" if day else "")
    caption = (f"R = ACI {bounds[0][0]:.3g}-{bounds[0][1]:.3g}, G = ENT {bounds[1][0]:.3g}-{bounds[1][1]:.3g}, "
               f"B = EVN {bounds[2][0]:.3g}-{bounds[2][1]:.3g} /s (2nd-98th percentiles); {step_s} s a column; "
               "grey: no recording")
    title = (f"{dep.site}/{dep.name}{f' on {day}' if day else ''}: false-colour spectrogram "
             f"(Towsey et al. 2014), run {run.id}")
    with ws.default_output("pictures", out) as target:
        drawn = target.publish(ldfc_png(_out_path(target.folder, out, stem), rgb, top_khz, _ticks(labels), title,
                                        caption, breaks, xlabel=f"local time ({dep.timezone})"))
    return {**drawn, "deployment": f"{dep.site}/{dep.name}", "run_id": run.id, "day": str(day) if day else None,
            "columns": int(rgb.shape[1]), "columns_with_data": int(np.isfinite(rgb[..., 0]).any(axis=0).sum()),
            "clips": len(local), "bins": int(rgb.shape[0]), "top_khz": top_khz, "step_s": step_s,
            "channels": {name: list(b) for name, b in zip(("aci", "ent", "evn"), bounds, strict=True)},
            "first": labels[0], "last": labels[-1]}


def index_heatmap(ws: Workspace, deployment: str, index: str = "aci", *, run_id: int | None = None,
                  out: Path | str | None = None) -> dict[str, Any]:
    """Mean of a per-clip acoustic index by local hour (columns) and local day (rows), as a PNG.

    ``index`` is one of :data:`fieldkit.config.params.INDICES` that the run stored; other
    arguments as :func:`ldfc_picture`.
    """
    if index not in INDICES:
        raise UnknownNameError("index", index, INDICES)
    dep = _find_deployment(ws, deployment)
    run = _run_with(ws, dep, (index,), run_id)
    clips, local, _ = _clips(ws, run, dep)
    keys = (local.asi8 // 1_000_000_000) // 86_400 * 24 + np.asarray(local.hour)
    present, means = _means_by_key(ws, run, clips, keys, (index,))
    grid, days = hour_day_grid(present, means[index])
    labels = [str(dt.date(1970, 1, 1) + dt.timedelta(days=int(d))) for d in days]
    title = f"{dep.site}/{dep.name}: {index} by hour and day (mean per clip), run {run.id}"
    with ws.default_output("pictures", out) as target:
        drawn = target.publish(heatmap_png(_out_path(target.folder, out, f"heatmap-{index}-{deployment.replace('/', '-')}"),
                                           grid, labels, title, index, xlabel=f"hour (local time, {dep.timezone})"))
    finite = grid[np.isfinite(grid)]
    return {**drawn, "deployment": f"{dep.site}/{dep.name}", "run_id": run.id, "index": index,
            "days": labels, "hours_with_data": int(finite.size), "clips": len(local),
            "min": float(finite.min()), "max": float(finite.max())}
