"""Whole-shard writes to a store on an object store (S3 or any fsspec URL): one request per object.

Through zarr, a task's shards cost many more requests than objects (measured on the S3 test
server, the anchors' job, 13 variables: ~96 requests per task of which 14 carry data): zarr's
sharding codec asks for the shard it is about to replace (a HEAD, and a LIST when s3fs finds
no such object and looks for a "directory"), opening the group probes the zarr v2 documents
(``.zgroup``, ``.zattrs``, ``.zmetadata``: a HEAD and a LIST each), and every array is opened
with a HEAD and a GET of its ``zarr.json``, one after the other.

:class:`ObjectShardSink` writes the same objects with one request each, through zarr's own store
API (``get``/``set``/``delete`` of a key; this layer never learns a URL's options):

- the array documents are read once per sink, all at once;
- every shard is encoded by :mod:`.shards` (the direct writer's code, byte-identical to zarr's
  own objects: tested against zarr) and the variables' PUTs of a shard go out concurrently;
- the completion protocol is the same as every sink's (:mod:`.sinks`): the shard's ``done``
  chunk is deleted, the variables are written, the ``done`` chunk is written last. The delete
  is left out for a shard this sink has just read as not done (no ``done`` chunk): there is
  nothing to clear, and one writer owns a shard.

A store laid out otherwise (another codec chain, an older marker) raises :class:`Unsupported`
and :func:`fieldkit.store.regions.open_sink` falls back to zarr.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from zarr.abc.store import Store
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from fieldkit.store.layout import StoreLayout
from fieldkit.store.shards import DoneMarker, Unsupported, _Sharded, local_store_root
from fieldkit.store.sinks import PROGRESS_GROUP, ShardSink, SinkCapabilities, store_name

__all__ = ["ObjectShardSink", "as_store", "group_attributes", "read_done"]

_DONE = f"{PROGRESS_GROUP}/done"


def as_store(path: Any) -> Store:
    """A zarr store object as it is; a URL other than ``file://`` as an fsspec store (tests use
    ``memory://``); anything else (a local path) raises :class:`Unsupported`."""
    if isinstance(path, Store):
        return path
    if isinstance(path, (str, os.PathLike)):
        text = os.fspath(path)
        if "://" in text and not text.startswith("file://"):
            from zarr.storage import FsspecStore

            return FsspecStore.from_url(text, read_only=False)
    raise Unsupported(f"{store_name(path)} is not an object-store prefix")


async def _get_many(store: Store, keys: list[str]) -> list[bytes | None]:
    prototype = default_buffer_prototype()
    values = await asyncio.gather(*(store.get(key, prototype) for key in keys))
    return [None if value is None else value.to_bytes() for value in values]


async def _apply(store: Store, puts: list[tuple[str, bytes]], deletes: list[str]) -> None:
    """PUT and DELETE every key at once; every request ends (or its error is raised) before return."""
    buffer = default_buffer_prototype().buffer
    await asyncio.gather(*(store.set(key, buffer.from_bytes(data)) for key, data in puts),
                         *(store.delete(key) for key in deletes))


def _documents(store: Store, keys: list[str]) -> list[dict]:
    """The JSON documents at ``keys``, read concurrently; a missing one raises Unsupported."""
    out = []
    for key, raw in zip(keys, sync(_get_many(store, keys)), strict=True):
        if raw is None:
            raise Unsupported(f"{store_name(store)}: no {key}")
        out.append(json.loads(raw))
    return out


def _group(store: Store) -> tuple[bytes, dict]:
    """The root group's ``zarr.json`` (one GET): its bytes and its attributes."""
    (raw,) = sync(_get_many(store, ["zarr.json"]))
    meta = json.loads(raw) if raw is not None else {}
    if meta.get("zarr_format") != 3 or meta.get("node_type") != "group":
        raise Unsupported(f"{store_name(store)}: not a zarr v3 group")
    return raw, meta.get("attributes", {})


def group_attributes(path: Any) -> dict:
    """The root group's attributes (one GET of ``zarr.json``), or raises :class:`Unsupported`."""
    return _group(as_store(path))[1]


#: Array documents already read by this process, keyed by the store's name and its group
#: document (which holds the run id, the parameters hash and the layout the arrays are made
#: from): a worker reads them for its first task of a run, not for every task (15 GETs each).
_DOCUMENTS: dict[tuple[str, bytes], list[dict]] = {}
_DOCUMENTS_KEPT = 16


def read_done(path: Any, layout: StoreLayout, start: int, stop: int) -> np.ndarray:
    """``progress/done`` of clips ``[start, stop)`` (uint8): the marker's document and its chunks,
    read concurrently."""
    store = as_store(path)
    (meta,) = _documents(store, [f"{_DONE}/zarr.json"])
    marker = DoneMarker.from_meta(meta, _DONE, layout.clips_per_shard)
    return _read_marker(store, marker, start, stop)[0]


def _read_marker(store: Store, marker: DoneMarker, start: int, stop: int) -> tuple[np.ndarray, list[int]]:
    """(the marker of ``[start, stop)``, the shards that have no ``done`` chunk)."""
    shards = list(range(start // marker.chunk, -(-stop // marker.chunk)))
    values = sync(_get_many(store, [f"{_DONE}/{marker.key(k)}" for k in shards]))
    out = np.zeros(stop - start, np.uint8)
    absent = []
    for k, raw in zip(shards, values, strict=True):
        if raw is None:
            absent.append(k)
            continue
        data = np.frombuffer(raw, np.uint8)
        lo, hi = max(start, k * marker.chunk), min(stop, (k + 1) * marker.chunk)
        out[lo - start:hi - start] = data[lo - k * marker.chunk:hi - k * marker.chunk]
    return out, absent


class ObjectShardSink(ShardSink):
    """The store contract on an object store laid out as ``create_store`` makes it: whole shards
    encoded here, one PUT per variable and shard, sent concurrently.

    Raises :class:`Unsupported` on construction for a local store or any other layout.
    """

    capabilities = SinkCapabilities("objects", remote=True, other_encodings=False)

    def __init__(self, path: Any, layout: StoreLayout, group: bytes | None = None) -> None:
        super().__init__(path, layout)
        if local_store_root(path) is not None:
            raise Unsupported(f"{store_name(path)} is a local store")
        self.store = as_store(path)
        names = [v.name for v in layout.variables()]
        key = (store_name(self.store), group or b"")
        docs = _DOCUMENTS.get(key) if group is not None else None
        if docs is None:
            docs = _documents(self.store, [f"{name}/zarr.json" for name in (*names, _DONE)])
            if group is not None:
                if len(_DOCUMENTS) >= _DOCUMENTS_KEPT:
                    _DOCUMENTS.clear()
                _DOCUMENTS[key] = docs
        self.arrays = {name: _Sharded.from_meta(doc, name) for name, doc in zip(names, docs, strict=False)}
        for name, arr in self.arrays.items():
            if arr.shard[0] != layout.clips_per_shard:
                raise Unsupported(f"{name}: shards of {arr.shard[0]} clips, layout says {layout.clips_per_shard}")
        self.done = DoneMarker.from_meta(docs[-1], _DONE, layout.clips_per_shard)
        self._not_done: set[int] = set()  # shards read here without a done chunk: nothing to clear

    @classmethod
    def open(cls, path: Any, layout_of: Callable[[dict], StoreLayout]) -> ObjectShardSink:
        """The sink of the store at ``path``, its layout read from the group's attributes by
        ``layout_of``: one GET of the group document, and the array documents only when this
        process has not read them for this store and group document yet."""
        if local_store_root(path) is not None:
            raise Unsupported(f"{store_name(path)} is a local store")
        store = as_store(path)
        raw, attrs = _group(store)
        return cls(store, layout_of(attrs), group=raw)

    def _write(self, start: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        shard = self.layout.clips_per_shard
        shards = range(start // shard, math.ceil(stop / shard))
        clear = [f"{_DONE}/{self.done.key(k)}" for k in shards if k not in self._not_done]
        if clear:  # a rewrite of a done region is incomplete until it finishes
            sync(_apply(self.store, [], clear))
        puts: list[tuple[str, bytes]] = []
        deletes: list[str] = []
        for name, values in arrays.items():
            arr = self.arrays[name]
            for k in shards:
                lo = k * shard - start
                pieces = arr.encode(values[lo:lo + shard])
                key = f"{name}/{arr.key(k)}"
                if pieces is None:  # every inner chunk is the fill value: no object, as zarr
                    deletes.append(key)
                else:
                    puts.append((key, b"".join(pieces)))
        sync(_apply(self.store, puts, deletes))  # every variable stored before done is set
        self._not_done.difference_update(shards)
        sync(_apply(self.store, [(f"{_DONE}/{self.done.key(k)}", self.done.chunk_bytes(k, 1)) for k in shards], []))

    def _done(self, start: int, stop: int) -> np.ndarray:
        out, absent = _read_marker(self.store, self.done, start, stop)
        self._not_done.update(absent)
        return out
