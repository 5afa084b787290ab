"""The worker side of a store: write one shard-aligned region, and tell what is complete.

Split from :mod:`fieldkit.store.zarr_store` so that a Dask worker imports only zarr and numpy
(not xarray or dask.array): about 1 s and 100 MB less per worker. See that module for the
protocol (alignment checked before writing, ``progress/done`` marker written last).

Writes go through a sink (the contract is in :mod:`fieldkit.store.sinks`), which
:func:`open_sink` chooses once per opened store: on a local store whose arrays have the layout
fieldkit creates, whole shards are encoded and written by :mod:`fieldkit.store.shards`
(byte-identical objects, about 8x cheaper than through zarr's asynchronous path); on an object
store (an fsspec URL) laid out the same way, by :mod:`fieldkit.store.objects` (the same objects,
one request each); any other store (an older marker format) goes through zarr
(:class:`ZarrShardSink`).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import numpy as np

from fieldkit.errors import StoreError
from fieldkit.store.layout import SCHEMA_VERSIONS, StoreLayout
from fieldkit.store.shards import DirectShardSink, DoneMarker, Unsupported, local_store_root
from fieldkit.store.sinks import PROGRESS_GROUP, ShardSink, SinkCapabilities, store_name, zarr_target
from fieldkit.store.sinks import StoreLike as PathLike  # a path, or a zarr store object

if TYPE_CHECKING:
    import zarr

__all__ = ["PROGRESS_GROUP", "ZarrShardSink", "open_sink", "done_mask", "read_layout", "write_region",
           "padding_arrays", "region_is_complete", "completed_regions"]

log = logging.getLogger(__name__)


def _open_group(path: PathLike, mode: str = "r") -> zarr.Group:
    import zarr  # only for stores the direct writer does not handle: a worker skips ~0.3 s of imports

    try:
        return zarr.open_group(zarr_target(path), mode=mode,  # type: ignore[arg-type]
                               use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise StoreError(f"no fieldkit store at {store_name(path)}; create it with create_store().") from exc


def _layout_of(group: zarr.Group, path: PathLike) -> StoreLayout:
    return _layout_from_attrs(group.attrs.asdict(), path)


def _layout_from_attrs(attrs: dict, path: PathLike) -> StoreLayout:
    if attrs.get("schema_version") not in SCHEMA_VERSIONS or "layout" not in attrs:
        raise StoreError(f"{store_name(path)} is not a fieldkit store of schema version {' or '.join(SCHEMA_VERSIONS)} "
                         f"(found schema_version={attrs.get('schema_version')!r}).")
    return StoreLayout.from_dict(attrs["layout"], attrs["schema_version"])


def read_layout(path: PathLike) -> StoreLayout:
    """The :class:`StoreLayout` a store was created with."""
    root = local_store_root(path)
    if root is not None:
        with open(root / "zarr.json", "rb") as fh:
            return _layout_from_attrs(json.load(fh).get("attributes", {}), path)
    from fieldkit.store.objects import group_attributes

    try:  # an object store: one GET, not zarr's probes of the v2 documents (a HEAD and a LIST each)
        return _layout_from_attrs(group_attributes(path), path)
    except Unsupported:
        return _layout_of(_open_group(path), path)


class ZarrShardSink(ShardSink):
    """The store contract through zarr: any store zarr opens (an fsspec URL, other encodings).

    The sink lives for one task: it opens the group once read-only (to tell what is complete:
    a store one may not write to can still be asked) and once read-write on its first write, and
    keeps the arrays it opened, so that on an object store a shard costs one PUT per variable
    rather than a metadata GET per variable too. The variables of a shard are written
    concurrently (:func:`_write_variables`), the ``done`` marker strictly before and after them.
    """

    capabilities = SinkCapabilities("zarr", remote=True, other_encodings=True)

    def __init__(self, path: PathLike, layout: StoreLayout) -> None:
        super().__init__(path, layout)
        self._groups: dict[str, _OpenedGroup] = {}

    def _group(self, mode: str = "r") -> _OpenedGroup:
        if mode not in self._groups:
            self._groups[mode] = _OpenedGroup(_open_group(self.path, mode=mode))
        return self._groups[mode]

    def _write(self, start: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        group = self._group("r+")
        done = group[f"{PROGRESS_GROUP}/done"]
        done[start:stop] = 0  # a rewrite of a done region is incomplete until it finishes
        _write_variables(group, start, stop, arrays)
        done[start:stop] = 1

    def _done(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self._group()[f"{PROGRESS_GROUP}/done"][start:stop])


class _OpenedGroup:
    """A zarr group whose arrays are each opened once (one metadata read per array and sink)."""

    def __init__(self, group: zarr.Group) -> None:
        self.group = group
        self.arrays: dict[str, zarr.Array] = {}

    def __getitem__(self, name: str) -> zarr.Array:
        if name not in self.arrays:
            self.arrays[name] = self.group[name]
        return self.arrays[name]


def open_sink(path: PathLike) -> ShardSink:
    """The sink of a store, chosen here and only here: the direct shard writer where it applies
    (a local store laid out as ``create_store`` makes it), zarr otherwise.

    Parameters
    ----------
    path : str or path-like
        A store made by :func:`~fieldkit.store.zarr_store.create_store`: a local path, a
        ``file://`` URL or any URL zarr opens.

    Returns
    -------
    ShardSink
        A :class:`~fieldkit.store.shards.DirectShardSink` or a :class:`ZarrShardSink`; both
        store the same bytes. Choosing zarr is logged at INFO with the reason.
    """
    local = local_store_root(path) is not None
    try:
        if local:
            return DirectShardSink(path, read_layout(path))
        from fieldkit.store.objects import ObjectShardSink

        return ObjectShardSink.open(path, lambda attrs: _layout_from_attrs(attrs, path))
    except (Unsupported, OSError, KeyError, ValueError) as exc:  # any doubt about the layout: zarr
        reason = str(exc) if isinstance(exc, Unsupported) else f"{type(exc).__name__}: {exc}"
        log.info("store %s is written through zarr, not the %s shard writer: %s", store_name(path),
                 "direct" if local else "object-store", reason)
        return ZarrShardSink(path, read_layout(path))


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
    open_sink(path).write(clip_slice, arrays)


def _write_variables(group: zarr.Group | _OpenedGroup, start: int, stop: int,
                     arrays: dict[str, np.ndarray]) -> None:
    """Every variable's region, written concurrently on zarr's own event loop: on a remote store
    each assignment is one object PUT, so a shard costs the slowest PUT rather than their sum,
    without a thread per variable."""
    import asyncio

    from zarr.core.sync import sync

    targets = [(group[name].async_array, values) for name, values in arrays.items()]

    async def write_all() -> None:  # every variable written (or its error raised) before done is set
        await asyncio.gather(*(array.setitem(slice(start, stop), values) for array, values in targets))

    sync(write_all())


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
    try:
        if root is not None:
            return DoneMarker.open(root / PROGRESS_GROUP / "done", layout.clips_per_shard).read(start, stop)
        from fieldkit.store.objects import read_done

        return read_done(path, layout, start, stop)
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
    return open_sink(path).is_complete(clip_slice)


def completed_regions(path: PathLike) -> list[slice]:
    """The maximal ``[start, stop)`` runs of completed clips, in order."""
    done, _ = _done(path)
    return _runs(done == 1)


def _runs(mask: np.ndarray) -> list[slice]:
    """Maximal runs of True in a 1-D boolean mask, as slices."""
    flags = np.concatenate([[0], mask.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flags))
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
