"""The worker side of a store: write one shard-aligned region, and tell what is complete.

Split from :mod:`fieldkit.store.zarr_store` so that a Dask worker imports only zarr and numpy
(not xarray or dask.array): about 1 s and 100 MB less per worker. See that module for the
protocol (alignment checked before writing, ``progress/done`` marker written last).

On a local store whose arrays have the layout fieldkit creates, whole shards are encoded and
written by :mod:`fieldkit.store.shards` (byte-identical objects, about 8x cheaper than
through zarr's asynchronous path); any other store (an fsspec URL, an older marker format)
goes through zarr.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import numpy as np

from fieldkit.errors import StoreError
from fieldkit.store.layout import SCHEMA_VERSION, StoreLayout, VariableSpec
from fieldkit.store.shards import DoneMarker, ShardWriter, Unsupported, local_store_root

if TYPE_CHECKING:
    import zarr

__all__ = ["PROGRESS_GROUP", "RegionStore", "done_mask", "read_layout", "write_region", "padding_arrays",
           "region_is_complete", "completed_regions"]

PathLike = str | os.PathLike[str]
#: Child group holding the completion marker ``done`` (uint8 per clip).
PROGRESS_GROUP = "progress"


def _open_group(path: PathLike, mode: str = "r") -> zarr.Group:
    import zarr  # only for stores the direct writer does not handle: a worker skips ~0.3 s of imports

    try:
        return zarr.open_group(str(path), mode=mode,  # type: ignore[arg-type]
                               use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise StoreError(f"no fieldkit store at {path}; create it with create_store().") from exc


def _layout_of(group: zarr.Group, path: PathLike) -> StoreLayout:
    return _layout_from_attrs(group.attrs.asdict(), path)


def _layout_from_attrs(attrs: dict, path: PathLike) -> StoreLayout:
    if attrs.get("schema_version") != SCHEMA_VERSION or "layout" not in attrs:
        raise StoreError(f"{path} is not a fieldkit store of schema version {SCHEMA_VERSION} "
                         f"(found schema_version={attrs.get('schema_version')!r}).")
    return StoreLayout.from_dict(attrs["layout"])


def read_layout(path: PathLike) -> StoreLayout:
    """The :class:`StoreLayout` a store was created with."""
    root = local_store_root(path)
    if root is not None:
        with open(root / "zarr.json", "rb") as fh:
            return _layout_from_attrs(json.load(fh).get("attributes", {}), path)
    return _layout_of(_open_group(path), path)


def _bounds(clip_slice: slice, layout: StoreLayout, path: PathLike) -> tuple[int, int]:
    """``(start, stop)`` of a step-1 slice inside ``[0, n_clips]``; StoreError otherwise."""
    if not isinstance(clip_slice, slice) or clip_slice.step not in (None, 1):
        raise StoreError(f"region {clip_slice!r} of {path} must be a slice with step 1.")
    start, stop = clip_slice.start or 0, layout.n_clips if clip_slice.stop is None \
        else clip_slice.stop
    if not (0 <= start < stop <= layout.n_clips):
        raise StoreError(f"region [{start}, {stop}) of {path} is empty or outside "
                         f"[0, {layout.n_clips}).")
    return start, stop


def _check_aligned(start: int, stop: int, layout: StoreLayout, path: PathLike) -> None:
    shard = layout.clips_per_shard
    if start % shard == 0 and (stop % shard == 0 or stop == layout.n_clips):
        return
    lo, hi = start - start % shard, min(-(-stop // shard) * shard, layout.n_clips)
    raise StoreError(
        f"region [{start}, {stop}) of {path} is not aligned to its {shard}-clip shards: it "
        f"must start on a multiple of {shard} and end on one or at n_clips={layout.n_clips} "
        f"(the enclosing aligned region is [{lo}, {hi})); two writers sharing a shard would "
        "lose data, so nothing was written. Plan regions with plan_regions().")


def _checked_array(spec: VariableSpec, values: np.ndarray, n: int) -> np.ndarray:
    array = np.asarray(values)
    expected = (n, *spec.shape[1:])
    if array.shape != expected:
        raise StoreError(f"{spec.name} has shape {array.shape}; expected {expected} "
                         f"{spec.dims} for this region.")
    if not np.can_cast(array.dtype, spec.dtype, casting="same_kind"):
        raise StoreError(f"{spec.name} has dtype {array.dtype}; expected {spec.dtype}.")
    return np.ascontiguousarray(array, dtype=spec.dtype)


def _checked_arrays(layout: StoreLayout, n: int,
                    arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    specs = {spec.name: spec for spec in layout.variables()}
    missing, unknown = sorted(set(specs) - set(arrays)), sorted(set(arrays) - set(specs))
    if missing or unknown:
        raise StoreError(f"a region must give every data variable: missing {missing}, "
                         f"unknown {unknown} (expected {', '.join(specs)}).")
    return {name: _checked_array(specs[name], arrays[name], n) for name in specs}


class RegionStore:
    """A store opened once by a task: write shard-aligned regions, tell which are complete.

    Uses the direct shard writer on a local store laid out as fieldkit creates it, zarr
    otherwise; the protocol and the bytes stored are the same either way.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = path
        self.layout = read_layout(path)
        self._direct: ShardWriter | None | bool = None  # None: not tried yet; False: use zarr

    def _writer(self) -> ShardWriter | None:
        if self._direct is None:
            root = local_store_root(self.path)
            try:
                self._direct = False if root is None else ShardWriter(
                    root, [v.name for v in self.layout.variables()], PROGRESS_GROUP,
                    self.layout.clips_per_shard)
            except (Unsupported, OSError, KeyError, ValueError):
                self._direct = False
        return self._direct or None

    def write(self, clip_slice: slice, arrays: dict[str, np.ndarray]) -> None:
        """See :func:`write_region`."""
        start, stop = _bounds(clip_slice, self.layout, self.path)
        _check_aligned(start, stop, self.layout, self.path)
        checked = _checked_arrays(self.layout, stop - start, arrays)
        writer = self._writer()
        if writer is not None:
            writer.write(start, stop, checked)
            return
        group = _open_group(self.path, mode="r+")
        done = group[f"{PROGRESS_GROUP}/done"]
        done[start:stop] = 0  # a rewrite of a done region is incomplete until it finishes
        _write_variables(group, start, stop, checked)
        done[start:stop] = 1

    def is_complete(self, clip_slice: slice) -> bool:
        """Whether every clip of ``clip_slice`` was written by a finished write."""
        start, stop = _bounds(clip_slice, self.layout, self.path)
        writer = self._writer()  # a task asks once per shard: reuse the marker the writer opened
        done = writer.done.read(start, stop) if writer is not None else _done_mask(self.path, self.layout, start, stop)
        return bool(np.all(done == 1))


def write_region(path: PathLike, clip_slice: slice, arrays: dict[str, np.ndarray]) -> None:
    """Write one task's region of every data variable, then mark it done.

    Parameters
    ----------
    path : str or path-like
        The store made by :func:`create_store`.
    clip_slice : slice
        ``[start, stop)`` on ``clip``; start on a shard boundary, stop on one or at
        ``n_clips``. Checked before anything is written (StoreError otherwise).
    arrays : dict of str to ndarray
        Every data variable of the layout, each ``(stop - start, *rest)``; values are cast
        to the stored dtype (``same_kind`` casting: float64 -> float32 is fine, float -> int16
        is not). Padding clips carry ``valid_samples = 0`` (see :func:`padding_arrays`).

    Notes
    -----
    Idempotent: writing the same arrays twice gives byte-identical shard objects.
    """
    RegionStore(path).write(clip_slice, arrays)


def _write_variables(group: zarr.Group, start: int, stop: int,
                     arrays: dict[str, np.ndarray]) -> None:
    for name, values in arrays.items():
        group[name][start:stop] = values


def padding_arrays(layout: StoreLayout, n_clips: int) -> dict[str, np.ndarray]:
    """Every data variable for ``n_clips`` padding clips: ``valid_samples = 0``, waveform 0,
    features and QC NaN. Concatenate after a task's real clips to fill its region."""
    out = {}
    for spec in layout.variables():
        fill = 0 if spec.name == "waveform" else spec.fill_value
        out[spec.name] = np.full((n_clips, *spec.shape[1:]), fill, dtype=spec.dtype)
    return out


def _done_mask(path: PathLike, layout: StoreLayout, start: int, stop: int) -> np.ndarray:
    """``progress/done`` for clips ``[start, stop)``: read directly from a local store's raw
    chunks, through zarr otherwise."""
    root = local_store_root(path)
    if root is not None:
        try:
            return DoneMarker.open(root / PROGRESS_GROUP / "done", layout.clips_per_shard).read(start, stop)
        except Unsupported:
            pass
    return np.asarray(_open_group(path)[f"{PROGRESS_GROUP}/done"][start:stop])


def _done(path: PathLike) -> tuple[np.ndarray, StoreLayout]:
    layout = read_layout(path)
    return _done_mask(path, layout, 0, layout.n_clips), layout


def done_mask(path: PathLike) -> np.ndarray:
    """The completion marker of every clip (uint8, 1 = written by a finished region write)."""
    return _done(path)[0]


def region_is_complete(path: PathLike, clip_slice: slice) -> bool:
    """Whether every clip of ``clip_slice`` was written by a finished :func:`write_region`."""
    return RegionStore(path).is_complete(clip_slice)


def completed_regions(path: PathLike) -> list[slice]:
    """The maximal ``[start, stop)`` runs of completed clips, in order."""
    done, _ = _done(path)
    return _runs(done == 1)


def _runs(mask: np.ndarray) -> list[slice]:
    """Maximal runs of True in a 1-D boolean mask, as slices."""
    flags = np.concatenate([[0], mask.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flags))
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
