"""The data points a sonification plays: one per real clip of a store, in time order (frame
features averaged over the clip's frames, per-clip QC as it is), or one per group of clips
(:func:`merge_groups`, "a night in a minute"). Read in blocks of clips, so memory stays flat on
long runs; categories (site, deployment, recording) and ``count`` ride along."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fieldkit.errors import ConfigError, UnknownNameError
from fieldkit.store.zarr_store import open_store

__all__ = ["CATEGORIES", "COUNT", "Points", "available_features", "clip_points", "merge_groups", "store_features"]

#: Coordinates a dimension can take as a category (an instrument per site, deployment, recording).
CATEGORIES = ("site", "deployment", "recording")
#: The number of clips a point stands for (activity): a feature of every run.
COUNT = "count"
_NOT_FEATURES = {"waveform", "valid_samples"}
_BLOCK_CLIPS = 1024  # clips read at once: memory stays flat on long runs


@dataclass
class Points:
    """Data points in time order: their start times, clips per point, features and categories."""

    times: np.ndarray  # datetime64[ns], NaT when unknown
    clips: np.ndarray  # clips per point (1 for clip-level points)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    categories: dict[str, np.ndarray] = field(default_factory=dict)

    def take(self, index: np.ndarray) -> Points:
        return Points(self.times[index], self.clips[index], {k: v[index] for k, v in self.values.items()},
                      {k: v[index] for k, v in self.categories.items()})

    def series(self, spec: str) -> np.ndarray:
        return self.clips.astype(np.float64) if spec == COUNT else self.values[spec]


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


def _coords(ds: Any) -> dict[str, np.ndarray]:
    coords = {k: ds[k].values for k in ("recording_id", "start_time", "site", "deployment")}
    coords["recording"] = coords["recording_id"].astype(str)
    return coords


def clip_points(store_path: Path, features: tuple[str, ...], clips: np.ndarray | None = None,
                where: Any = None) -> Points:
    """One point per real clip of a store (padding excluded), in time order.

    ``features`` may name categories (:data:`CATEGORIES`) and ``count`` besides store
    variables; ``clips`` restricts to those clip indices; ``where(coords) -> bool mask``
    filters on the coordinates (``site``, ``deployment``...).
    """
    ds = open_store(store_path, chunks=None)
    try:
        wanted = [f for f in dict.fromkeys(features) if f not in CATEGORIES and f != COUNT]
        specs = {f: _variable(ds, f) for f in wanted}
        coords = _coords(ds)
        keep = coords["recording_id"] >= 0
        if where is not None:
            keep &= where(coords)
        index = np.flatnonzero(keep) if clips is None else np.asarray(clips, np.int64)[keep[clips]]
        index = index[_time_order(coords["start_time"][index], index)]
        values = {f: _clip_means(var, index) for f, var in specs.items()}
    finally:
        ds.close()
    categories = {c: np.array([str(x) for x in coords[c][index]], dtype=str) for c in CATEGORIES if c in features}
    return Points(coords["start_time"][index], np.ones(index.size, np.int64), values, categories)


def _mode(labels: np.ndarray) -> str:
    names, counts = np.unique(labels, return_counts=True)
    return str(names[np.argmax(counts)])


def merge_groups(points: Points, groups: list[np.ndarray]) -> Points:
    """One point per group of point indices: features averaged (NaN ignored), clips summed,
    the most frequent category, the time of the first point."""
    firsts = np.array([g[0] for g in groups], np.int64)
    values = {name: np.array([np.nanmean(v[g]) if np.isfinite(v[g]).any() else np.nan for g in groups])
              for name, v in points.values.items()}
    categories = {name: np.array([_mode(c[g]) for g in groups]) for name, c in points.categories.items()}
    return Points(points.times[firsts], np.array([points.clips[g].sum() for g in groups], np.int64), values,
                  categories)


def store_features(store_path: Path) -> list[str]:
    """The features a store offers to :class:`SonifyOptions` (variables, categories, ``count``)."""
    ds = open_store(store_path, chunks=None)
    try:
        return [*available_features(ds), *CATEGORIES, COUNT]
    finally:
        ds.close()
