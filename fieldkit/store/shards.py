"""Whole-shard writes to a local Zarr v3 store, without zarr's asynchronous write path.

A task writes whole shards (its region is shard-aligned), so each stored object is written
from scratch: encode every inner chunk, append the shard index, replace the object
atomically. zarr does exactly that, but through its event loop, a thread hand-off per codec
call and per file, and a read-merge of the shard it is about to replace: about 3 ms per
array per region on this machine, ten times the compression itself (``benchmarks/process.py
--profile``; a region of 10 variables cost 55-70 ms through zarr, 6-8 ms here).

:class:`ShardWriter` reads each array's ``zarr.json`` and accepts only the layout fieldkit
creates (regular grid, default ``/`` chunk keys, ``sharding_indexed`` with
``bytes(little) + blosc`` inner codecs and a ``bytes(little) + crc32c`` index at the end; the
``progress/done`` marker with the ``bytes`` codec only). Anything else raises
:class:`Unsupported` and :func:`fieldkit.store.regions.open_sink` falls back to zarr.
:class:`DirectShardSink` is this writer behind the store contract (:mod:`.sinks`). The objects written are
byte-identical to zarr's own (tested against zarr, padding chunks and a partial last shard
included): inner chunks equal to the fill value are left out, a shard whose chunks are all
empty is deleted, as with zarr's default ``write_empty_chunks=False``.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numcodecs
import numpy as np
from numcodecs.blosc import Blosc

from fieldkit.store.layout import StoreLayout
from fieldkit.store.sinks import PROGRESS_GROUP, ShardSink, SinkCapabilities, store_name

__all__ = ["DirectShardSink", "DoneMarker", "ShardWriter", "Unsupported", "local_store_root"]

numcodecs.blosc.use_threads = False  # as zarr sets it: one thread per task, deterministic output

_MAX_U64 = np.uint64(2**64 - 1)
_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_INDEX_CODECS = [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]


class Unsupported(Exception):
    """The store or one of its arrays is not laid out the way this writer handles."""


def local_store_root(path: str | os.PathLike[str]) -> Path | None:
    """The directory of a local store (a plain path or ``file://`` URL), else None (a URL or a
    zarr store object, written through zarr)."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    text = os.fspath(path)
    if text.startswith("file://"):
        text = text[len("file://"):]
    elif "://" in text:
        return None
    root = Path(text)
    return root if (root / "zarr.json").is_file() else None


def _read_json(path: Path) -> dict:
    with open(path, "rb") as fh:
        return json.load(fh)


def _fill(value, dtype: np.dtype):
    if isinstance(value, str):
        special = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}
        if value not in special:
            raise Unsupported(f"fill value {value!r}")
        value = special[value]
    return np.asarray(value, dtype=dtype)[()]


def _is_fill(chunk: np.ndarray, fill) -> bool:
    """zarr's ``all_equal`` for the fills fieldkit uses: NaN (floats, NaN equals NaN), 0 (ints)."""
    if chunk.dtype.kind == "f":
        return chunk.size == 0 or (bool(np.isnan(chunk.flat[0])) and bool(np.isnan(chunk).all()))
    return chunk.size == 0 or (chunk.flat[0] == fill and bool((chunk == fill).all()))


def _atomic_put(path: Path, data: bytes | memoryview | list[bytes]) -> None:
    """Write a whole object (bytes, or a list of pieces written one after the other, not
    joined): a ``*.partial`` temporary beside it, then ``os.replace`` (as zarr's LocalStore;
    ``finalize_store`` removes temporaries of writers killed mid-write)."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        fh = open(tmp, "wb")
    except FileNotFoundError:  # nested chunk keys ("/" separator): the shard's folder is new
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(tmp, "wb")
    try:
        with fh:
            if isinstance(data, list):
                fh.writelines(data)
            else:
                fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _chunk_key(root: Path, separator: str, coords: tuple[int, ...]) -> Path:
    """zarr v3's "default" chunk key: ``c/0/1`` (separator "/") or ``c.0.1`` (".")."""
    return root / separator.join(("c", *(str(c) for c in coords)))


def _check_grid(meta: dict, where: str) -> tuple[tuple[int, ...], str]:
    """(chunk shape, chunk key separator) of a plain regular-grid zarr v3 array."""
    if meta.get("zarr_format") != 3 or meta.get("node_type") != "array" or meta.get("storage_transformers"):
        raise Unsupported(f"{where}: not a plain zarr v3 array")
    key = meta.get("chunk_key_encoding", {})
    separator = key.get("configuration", {}).get("separator", "/")
    if key.get("name") != "default" or separator not in ("/", "."):
        raise Unsupported(f"{where}: chunk key encoding {key}")
    grid = meta.get("chunk_grid", {})
    if grid.get("name") != "regular":
        raise Unsupported(f"{where}: chunk grid {grid}")
    return tuple(grid["configuration"]["chunk_shape"]), separator


@dataclass(frozen=True)
class _Sharded:
    """One sharded data variable: enough to encode any of its shards."""

    root: Path
    separator: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fill: object
    shard: tuple[int, ...]
    chunk: tuple[int, ...]
    blosc: Blosc

    @classmethod
    def open(cls, root: Path) -> _Sharded:
        return cls.from_meta(_read_json(root / "zarr.json"), root)

    @classmethod
    def from_meta(cls, meta: dict, root) -> _Sharded:
        """From an array's ``zarr.json`` document; ``root`` names the array (a folder, or a key
        prefix of an object store: :mod:`fieldkit.store.objects`)."""
        shard, separator = _check_grid(meta, str(root))
        codecs = meta.get("codecs", [])
        if len(codecs) != 1 or codecs[0].get("name") != "sharding_indexed":
            raise Unsupported(f"{root}: codecs {codecs}")
        conf = codecs[0]["configuration"]
        inner = conf.get("codecs", [])
        if (conf.get("index_location", "end") != "end" or conf.get("index_codecs") != _INDEX_CODECS
                or len(inner) != 2 or inner[0] != {"name": "bytes", "configuration": {"endian": "little"}}
                or inner[1].get("name") != "blosc"):
            raise Unsupported(f"{root}: sharding configuration {conf}")
        shape, chunk = tuple(meta["shape"]), tuple(conf["chunk_shape"])
        if shard[1:] != shape[1:] or chunk[1:] != shape[1:] or shard[0] % chunk[0]:
            raise Unsupported(f"{root}: shards {shard} / chunks {chunk} not split along the first axis only")
        dtype = np.dtype(meta["data_type"]).newbyteorder("<")
        fill = _fill(meta["fill_value"], dtype)
        if dtype.kind not in "fiu" or (dtype.kind == "f" and not np.isnan(fill)):
            raise Unsupported(f"{root}: {dtype} with fill value {fill}")  # zarr's -0.0 rules
        b = inner[1]["configuration"]
        blosc = Blosc(cname=b["cname"], clevel=b["clevel"], shuffle=_SHUFFLE[b["shuffle"]],
                      blocksize=b.get("blocksize", 0), typesize=b.get("typesize", dtype.itemsize))
        return cls(root, separator, shape, dtype, fill, shard, chunk, blosc)

    def encode(self, values: np.ndarray) -> list[bytes] | None:
        """The stored object of a shard holding ``values`` (its rows inside the array), as its
        pieces in order; None if every inner chunk equals the fill value."""
        per_shard, rows = self.shard[0] // self.chunk[0], self.chunk[0]
        table = np.full((per_shard, *([1] * (len(self.shape) - 1)), 2), _MAX_U64, dtype="<u8")
        pieces, offset = [], 0
        for j in range(math.ceil(len(values) / rows)):
            chunk = values[j * rows:(j + 1) * rows]
            if len(chunk) < rows:  # the array's edge: pad the inner chunk with the fill value
                chunk = np.concatenate([chunk, np.full((rows - len(chunk), *chunk.shape[1:]), self.fill,
                                                       self.dtype)])
            if _is_fill(chunk, self.fill):
                continue
            data = self.blosc.encode(np.ascontiguousarray(chunk, dtype=self.dtype).reshape(-1).view(np.uint8))
            table.reshape(per_shard, 2)[j] = (offset, len(data))
            pieces.append(data)
            offset += len(data)
        if not pieces:
            return None
        index = table.tobytes()
        pieces += [index, np.uint32(google_crc32c.value(index)).astype("<u4").tobytes()]
        return pieces

    def key(self, index: int) -> str:
        """The object key of shard ``index``, relative to the array."""
        return self.separator.join(("c", str(index), *(["0"] * (len(self.shape) - 1))))

    def write(self, index: int, values: np.ndarray) -> None:
        path = _chunk_key(self.root, self.separator, (index, *([0] * (len(self.shape) - 1))))
        data = self.encode(values)
        if data is None:
            path.unlink(missing_ok=True)
        else:
            _atomic_put(path, data)


@dataclass(frozen=True)
class DoneMarker:
    """The ``progress/done`` marker: uint8 per clip, one uncompressed chunk per shard."""

    root: Path
    separator: str
    n: int
    chunk: int

    @classmethod
    def open(cls, root: Path, shard: int) -> DoneMarker:
        return cls.from_meta(_read_json(root / "zarr.json"), root, shard)

    @classmethod
    def from_meta(cls, meta: dict, root, shard: int) -> DoneMarker:
        """From the marker's ``zarr.json`` document (``root``: a folder or a key prefix)."""
        (chunk,), separator = _check_grid(meta, str(root))
        codecs = meta.get("codecs", [])
        if (meta.get("data_type") != "uint8" or meta.get("fill_value") != 0 or chunk != shard
                or len(codecs) != 1 or codecs[0].get("name") != "bytes"):
            raise Unsupported(f"{root}: done marker {codecs}, chunk {chunk}")
        return cls(root, separator, int(meta["shape"][0]), chunk)

    def set(self, index: int, value: int) -> None:
        """Set every clip of shard ``index`` to ``value`` (0 deletes the chunk, as zarr does)."""
        path = _chunk_key(self.root, self.separator, (index,))
        if value == 0:
            path.unlink(missing_ok=True)
            return
        _atomic_put(path, self.chunk_bytes(index, value))

    def key(self, index: int) -> str:
        """The object key of shard ``index``'s chunk, relative to the marker array."""
        return self.separator.join(("c", str(index)))

    def chunk_bytes(self, index: int, value: int) -> bytes:
        """The stored chunk of shard ``index`` with every clip set to ``value``."""
        valid = min(self.chunk, self.n - index * self.chunk)
        data = np.zeros(self.chunk, np.uint8)
        data[:valid] = value
        return data.tobytes()

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros(stop - start, np.uint8)
        for k in range(start // self.chunk, -(-stop // self.chunk)):
            try:
                data = np.frombuffer(self._get(k), np.uint8)
            except FileNotFoundError:
                continue
            lo, hi = max(start, k * self.chunk), min(stop, (k + 1) * self.chunk)
            out[lo - start:hi - start] = data[lo - k * self.chunk:hi - k * self.chunk]
        return out

    def _get(self, index: int) -> bytes:
        with open(_chunk_key(self.root, self.separator, (index,)), "rb") as fh:
            return fh.read()


class ShardWriter:
    """Writes whole shards of the named variables of a local fieldkit store.

    Raises :class:`Unsupported` on construction when any array is laid out otherwise.
    """

    def __init__(self, root: Path, names: list[str], progress: str, clips_per_shard: int) -> None:
        self.root = root
        self.shard = clips_per_shard
        self.arrays = {name: _Sharded.open(root / name) for name in names}
        for name, arr in self.arrays.items():
            if arr.shard[0] != clips_per_shard:
                raise Unsupported(f"{name}: shards of {arr.shard[0]} clips, layout says {clips_per_shard}")
        self.done = DoneMarker.open(root / progress / "done", clips_per_shard)

    def write(self, start: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        """Write shard-aligned ``[start, stop)``: clear ``done``, every variable, set ``done``."""
        shards = range(start // self.shard, -(-stop // self.shard))
        for k in shards:
            self.done.set(k, 0)
        self.write_variables(start, shards, arrays)
        for k in shards:
            self.done.set(k, 1)

    def write_variables(self, start: int, shards: range, arrays: dict[str, np.ndarray]) -> None:
        for name, values in arrays.items():
            arr = self.arrays[name]
            for k in shards:
                lo = k * self.shard - start
                arr.write(k, values[lo:lo + self.shard])


class DirectShardSink(ShardSink):
    """The store contract on a local store laid out as ``create_store`` makes it: whole shards
    encoded here (:class:`ShardWriter`), not through zarr.

    Raises :class:`Unsupported` on construction for any other store (a URL, other encodings).
    """

    capabilities = SinkCapabilities("direct", remote=False, other_encodings=False)

    def __init__(self, path: str | os.PathLike[str], layout: StoreLayout) -> None:
        super().__init__(path, layout)
        root = local_store_root(path)
        if root is None:
            raise Unsupported(f"{store_name(path)} is not a local directory holding a zarr.json")
        self._writer = ShardWriter(root, [v.name for v in layout.variables()], PROGRESS_GROUP,
                                   layout.clips_per_shard)

    def _write(self, start: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        self._writer.write(start, stop, arrays)

    def _done(self, start: int, stop: int) -> np.ndarray:
        return self._writer.done.read(start, stop)
