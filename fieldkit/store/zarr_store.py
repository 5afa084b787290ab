"""Create, fill, resume and publish one run's Zarr v3 store (layout in :mod:`.layout`).

The protocol (docs/architecture.md, "Processing"; docs/reliability.md, E3 and E4):

1. The driver plans every clip (``plan_regions``) and calls :func:`create_store`: xarray writes
   the template with ``to_zarr(compute=False)`` (array metadata and attributes, no chunk of any
   data variable) and the coordinates eagerly, since they are known before any task runs.
2. Each task calls :func:`write_region` on its own shard-aligned region. Alignment is checked
   before anything is written and a misaligned slice raises :class:`StoreError` (two writers in
   one shard would silently lose data, pydata/xarray#8371). Every data variable is written
   whole shards at a time, so a rewrite never reads or merges: running a task twice writes
   byte-identical objects (zarr's LocalStore replaces each object atomically).
3. **Completion marker.** Zarr reads a never-written chunk as its fill value, so values cannot
   tell "not yet written" from "written as NaN/0". Each store therefore has a ``progress/done``
   array (uint8 per clip, one chunk per shard, in a child group that ``xr.open_zarr`` does not
   show as a variable). ``write_region`` clears ``done`` for the region, writes every data
   variable, and sets ``done = 1`` last; a crash anywhere before the last step leaves the region
   incomplete, and :func:`region_is_complete` / :func:`completed_regions` tell a resumed run
   what is left to do.
4. :func:`finalize_store` checks that every clip is done, consolidates the metadata and
   removes the ``*.partial`` temporaries of writers killed mid-write (docs/reliability.md, E4).

Data variables are written with zarr directly (their xarray encoding is the identity: no
scale, offset or time units), which skips xarray's per-call dataset construction.

Chunk and shard defaults (``benchmarks/store_chunks.py``, 1 h of 16 kHz audio as 3 s clips =
1200 clips, waveform float32 + valid_samples + mel 64 x 151 frames + 4 QC variables, one
writer per shard, serial, 2-vCPU machine, medians; write = create + all regions, read =
open_store + load every variable, rand = one random clip's waveform + mel, chunks=None):

Sweep at zstd level 3 (one run, 3 repeats; other work shared the machine, so +-30 %)::

    chunk  shard | write s  read s  rand ms | MB   objects
        1     32 |   7.47    5.28     4.2   | 236    325
        1    128 |   5.83    4.57     5.5   | 236    101
        4    128 |   3.47    1.64     4.3   | 236    101
        8    128 |   2.72    1.81     7.0   | 236    101
        8    512 |   2.68    2.08     7.5   | 236     45
       32    128 |   1.93    1.21     7.8   | 236    101
       32    512 |   2.08    1.83    15.0   | 236     45
    (1 clip per chunk and per shard: the first repeat ran > 2 min, with xarray's default
    one dask chunk per inner chunk for the read; abandoned)

Quiet machine (two runs, 3 and 5 repeats)::

    chunk  shard  zstd | write s  read s  rand ms | MB
        4    128    1  |   3.30    2.35     5.3   | 238
        8    128    0  |   1.90    1.65     5.8   | 277
        8    128    1  |   1.70    1.26     8.1   | 238     | 1.47  1.22  5.1
        8    128    3  |   1.85    1.17     4.9   | 236
       16    128    1  |   1.22    0.87     6.6   | 238     | 1.27  1.14  5.7
       16    128    3  |                         |         | 1.62  1.30  6.0
       32    128    1  |   1.26    0.96     8.7   | 238
        8    256    1  |   1.42    1.12     6.0   | 238
       16    256    1  |                         |         | 1.32  1.04  6.9

Reading: per-chunk overhead dominates below 8 clips per chunk (1-4 clips: 2-4x slower to write
and read); 16-32 clips per chunk is the plateau, and 16 keeps a random single-clip read at one
3 MB waveform chunk. Shards of 128 vs 256-512 clips change little but bound a task's write
buffer (128 x 3 s at 16 kHz = 25 MB of float32 waveform). Float audio hardly compresses
(238 of 277 MB at any level: the mantissa is noise), so level 1 is kept for speed; level 0 is
no faster (more bytes to write).

Chosen: ``clips_per_chunk = 16``, ``clips_per_shard = 128``, Blosc zstd level 1 + bit-shuffle.
"""

from __future__ import annotations

import base64
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from fieldkit.errors import StoreError
from fieldkit.store.layout import COORDINATES, NONFINITE_VARIABLE, StoreLayout
from fieldkit.store.sinks import StoreLike, store_name, zarr_target
if TYPE_CHECKING:  # xarray (with dask.array and pandas, ~1 s) is imported by the readers only
    import xarray as xr

from fieldkit.store.regions import (  # re-exported: the worker-side half
    PROGRESS_GROUP,
    _done,
    _layout_of,
    _open_group,
    _runs,
    completed_regions,
    done_mask,
    padding_arrays,
    read_layout,
    region_is_complete,
    write_region,
)

__all__ = [
    "PROGRESS_GROUP",
    "completed_regions",
    "create_store",
    "done_mask",
    "finalize_store",
    "nonfinite_counts",
    "open_store",
    "read_variables",
    "padding_arrays",
    "read_layout",
    "region_is_complete",
    "remove_partial_files",
    "write_region",
]

PathLike = StoreLike  # a local path, or a zarr store object made by the caller (Root.zarr_store)
#: Coordinates are written once by the driver, through zarr, whose cost is ~0.4 ms per inner
#: chunk: inner chunks of whole data shards holding at least this many clips (a month of 3 s
#: clips in 14 chunks per coordinate, not 27 000 of one 32-clip shard each) ...
COORD_CHUNK_MIN_CLIPS = 65536
#: ... and up to 64 inner chunks per object.
COORD_CHUNKS_PER_OBJECT = 64
RESERVED_ATTRS = ("schema_version", "layout")
#: Shard objects are files ``<variable>/c.<i>.0.0`` beside the array's zarr.json, not nested
#: folders ``c/<i>/0/0``: a run writes one object per variable and shard, and creating two
#: directories per object cost as much as encoding it (benchmarks/process.py --profile).
CHUNK_KEY_ENCODING = {"name": "default", "configuration": {"separator": "."}}


#: Blosc's block size, bytes. Its automatic choice for zstd at low levels is a few tens of KiB,
#: and zstd's per-block set-up then dominates: on birds-16k's float32 waveform 1 MiB blocks
#: compress 1.6x faster, and smaller (ratio 0.796 vs 0.819; mel 0.770 vs 0.786), 2 MiB gains
#: nothing more (docs/notes/performance.md, December 2026). An inner chunk smaller than this is
#: one block. Not a processing parameter: the stored values are the same, only their bytes differ.
BLOSC_BLOCK_BYTES = 1 << 20


def _compressors(level: int) -> list[BloscCodec]:
    return [BloscCodec(cname="zstd", clevel=level, shuffle=BloscShuffle.bitshuffle, blocksize=BLOSC_BLOCK_BYTES)]


def _checked_coords(layout: StoreLayout, coords: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Coordinates as numpy arrays of the layout's dtypes; StoreError on a missing/bad one."""
    missing = sorted(set(COORDINATES) - set(coords))
    unknown = sorted(set(coords) - set(COORDINATES))
    if missing or unknown:
        raise StoreError(f"coordinates must be exactly {', '.join(COORDINATES)}; "
                         f"missing {missing}, unknown {unknown}.")
    out = {}
    for name, dtype in COORDINATES.items():
        values = np.asarray(coords[name])
        if values.shape != (layout.n_clips,):
            raise StoreError(f"coordinate {name!r} has shape {values.shape}; expected "
                             f"({layout.n_clips},) (one value per clip).")
        out[name] = values.astype(object if dtype == "str" else dtype)
    return out


def _checked_attrs(attrs: dict[str, Any], layout: StoreLayout) -> dict[str, Any]:
    clash = sorted(set(attrs) & set(RESERVED_ATTRS))
    if clash:
        raise StoreError(f"attributes {clash} are set by fieldkit; leave them out.")
    try:
        json.dumps(attrs, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"store attributes must be JSON-serialisable: {exc}.") from exc
    return {**attrs, "schema_version": layout.schema_version, "layout": layout.to_dict()}


def _template(layout: StoreLayout, coords: dict[str, np.ndarray],
              attrs: dict[str, Any]) -> xr.Dataset:
    """The store as xarray writes it: the reference :func:`create_store` is checked against."""
    import dask.array as da
    import xarray as xr

    data = {
        spec.name: (spec.dims, da.empty(spec.shape, dtype=spec.dtype, chunks=-1))
        for spec in layout.variables()
    }
    ds = xr.Dataset(data, coords={k: ("clip", v) for k, v in coords.items()}, attrs=attrs)
    ds["start_time"].attrs["timezone"] = "UTC"
    return ds


def _encoding(layout: StoreLayout) -> dict[str, dict[str, Any]]:
    compressors = _compressors(layout.compression_level)
    enc: dict[str, dict[str, Any]] = {
        spec.name: {"chunks": spec.chunks, "shards": spec.shards, "compressors": compressors,
                    "fill_value": spec.fill_value, "chunk_key_encoding": CHUNK_KEY_ENCODING}
        for spec in layout.variables()
    }
    chunk = min(layout.n_clips, -(-COORD_CHUNK_MIN_CLIPS // layout.clips_per_shard) * layout.clips_per_shard)
    shard = min(-(-layout.n_clips // chunk), COORD_CHUNKS_PER_OBJECT) * chunk
    for name in COORDINATES:
        enc[name] = {"chunks": (chunk,), "shards": (shard,), "compressors": compressors}
    enc["start_time"].update(units="nanoseconds since 1970-01-01", dtype="int64")
    return enc


def create_store(path: PathLike, layout: StoreLayout, coords: dict[str, np.ndarray],
                 attrs: dict[str, Any], *, overwrite: bool = False) -> None:
    """Write the store's template: metadata, coordinates, attributes, an empty ``done``.

    Parameters
    ----------
    path : str or path-like
        Directory of the new store, or a zarr store object for an object-store prefix (``stores/<run>.zarr``).
    layout : StoreLayout
        Shapes, dtypes and chunking.
    coords : dict of str to ndarray
        Exactly the :data:`~fieldkit.store.layout.COORDINATES`, each shape ``(n_clips,)``:
        ``start_time`` as datetime64 in UTC (NaT for padding clips), ``recording_id`` -1 for
        padding clips.
    attrs : dict
        JSON-serialisable attributes, e.g. ``{"parameters": {...}, "versions": {...}}``;
        ``schema_version`` and ``layout`` are added.
    overwrite : bool
        Replace an existing store; otherwise an existing one raises StoreError.
    """
    coords, attrs = _checked_coords(layout, coords), _checked_attrs(attrs, layout)
    try:
        group = zarr.create_group(zarr_target(path), overwrite=overwrite, attributes=attrs, zarr_format=3)
    except (FileExistsError, zarr.errors.ContainsGroupError, zarr.errors.ContainsArrayError) as exc:
        raise StoreError(f"a store already exists at {store_name(path)}; pass overwrite=True to replace "
                         "it, or resume it with completed_regions().") from exc
    _write_template(group, layout, coords)
    progress = group.create_group(PROGRESS_GROUP)
    progress.create_array("done", shape=(layout.n_clips,), dtype="uint8",
                          chunks=(layout.clips_per_shard,), fill_value=0, compressors=None,
                          chunk_key_encoding=CHUNK_KEY_ENCODING,
                          dimension_names=("clip",))  # raw bytes: see fieldkit.store.shards


#: xarray's zarr v3 ``_FillValue`` attribute of a NaN fill: the float64 NaN, base64 (xarray's
#: FillValueCoder), so that xarray decodes never-written values as missing.
_NAN_FILL_ATTR = base64.standard_b64encode(np.array(np.nan, "<f8").tobytes()).decode()


def _write_template(group: zarr.Group, layout: StoreLayout, coords: dict[str, np.ndarray]) -> None:
    """Write with zarr what ``_template(...).to_zarr(compute=False, encoding=_encoding(layout))``
    writes (every metadata document and coordinate object byte for byte, checked by
    tests/store/test_template.py), without importing xarray, dask.array and pandas, ~1 s of a
    ``fieldkit process`` run's fixed cost."""
    encoding = _encoding(layout)
    names = " ".join(sorted(COORDINATES))
    for spec in layout.variables():
        floating = spec.dtype.startswith("float")
        group.create_array(spec.name, shape=spec.shape, dtype=spec.dtype, dimension_names=spec.dims,
                           attributes={"coordinates": names, **({"_FillValue": _NAN_FILL_ATTR} if floating else {})},
                           **encoding[spec.name])
    for name, values in coords.items():
        enc = dict(encoding[name])
        attrs: dict[str, Any] = {}
        if name == "start_time":  # CF-encoded as xarray does: int64 nanoseconds, NaT as int64 min
            attrs = {"timezone": "UTC", "units": enc.pop("units"), "calendar": "proleptic_gregorian"}
            values = values.astype("datetime64[ns]").view(enc.pop("dtype"))
        elif values.dtype.kind == "f":
            attrs, enc["fill_value"] = {"_FillValue": _NAN_FILL_ATTR}, np.nan
        array = group.create_array(name, shape=values.shape, dtype=str if values.dtype == object else values.dtype,
                                   dimension_names=("clip",), attributes=attrs, **enc)
        array[...] = values


def open_store(path: PathLike, *, consolidated: bool = False, chunks: Any = "shards",
               **kwargs: Any) -> xr.Dataset:
    """The store as a lazy xarray Dataset.

    Parameters
    ----------
    path : str or path-like
        The store.
    consolidated : bool
        Passed explicitly, so xarray never falls back with a warning; True after
        :func:`finalize_store`.
    chunks : "shards", dict, None
        ``"shards"`` (default): data variables get one dask chunk per shard along ``clip``
        (bulk reads ran 7x faster than xarray's default of one dask chunk per inner chunk) and
        coordinates stay lazy numpy arrays read whole (their stored chunks span many shards);
        None: no dask, lazy numpy indexing that reads only the inner chunks touched (best for
        random access); anything else is passed to ``xr.open_zarr``.
    """
    import xarray as xr

    by_shard = isinstance(chunks, str) and chunks == "shards"
    try:
        ds = xr.open_zarr(zarr_target(path), consolidated=consolidated, chunks=None if by_shard else chunks, **kwargs)
    except FileNotFoundError as exc:
        raise StoreError(f"no store at {store_name(path)}.") from exc
    if by_shard:
        shard = {"clip": read_layout(path).clips_per_shard}
        for name in ds.data_vars:
            ds[name] = ds[name].variable.chunk(shard)
    return ds


def read_variables(path: PathLike, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Whole 1-D variables or coordinates (``recording_id``, ``start_time``...) as numpy arrays."""
    ds = open_store(path)
    try:
        return {name: ds[name].values for name in names}
    finally:
        ds.close()


def finalize_store(path: PathLike, *, require_complete: bool = True) -> None:
    """End a run: check every clip is done, then consolidate the metadata.

    Raises StoreError naming the incomplete clip ranges when ``require_complete`` is true.
    """
    done, _ = _done(path)
    if require_complete and not np.all(done == 1):
        todo = [f"[{r.start}, {r.stop})" for r in _runs(done != 1)]
        more = " ..." if len(todo) > 5 else ""
        raise StoreError(f"{store_name(path)} is incomplete: clips {', '.join(todo[:5])}{more} were never "
                         "written; resume the run before finalising.")
    with warnings.catch_warnings():
        # Deliberate: zarr warns that consolidated metadata is not (yet) in the v3 spec. It is
        # written once, at the end of a run, for readers on object stores; zarr-python and
        # xarray read it, and the store stays valid without it.
        warnings.filterwarnings("ignore", message="Consolidated metadata",
                                category=zarr.errors.ZarrUserWarning)
        zarr.consolidate_metadata(zarr_target(path))
    remove_partial_files(path)


def nonfinite_counts(path: PathLike) -> np.ndarray | None:
    """Every clip's ``nonfinite_count`` (int32; 0 for clips never written), or None for a store
    of schema version 1, which has no such flag."""
    group = _open_group(path)
    layout = _layout_of(group, path)
    if NONFINITE_VARIABLE not in {spec.name for spec in layout.variables()}:
        return None
    return np.asarray(group[NONFINITE_VARIABLE][:])


def remove_partial_files(path: PathLike) -> int:
    """Delete the ``*.partial`` temporaries a killed writer left in a local store (E4).

    zarr's LocalStore writes each object to ``<key>.<uuid>.partial`` and renames it into
    place, so a worker killed mid-write leaves one behind; it is never read, only wasted space.
    Call only when no writer is running (at the end of a run). Returns the number removed;
    0 for remote (fsspec URL) stores, whose writes are single atomic PUTs.
    """
    if not isinstance(path, (str, os.PathLike)) or "://" in str(path) or not Path(path).is_dir():
        return 0
    partials = list(Path(path).rglob("*.partial"))
    for partial in partials:
        partial.unlink(missing_ok=True)
    return len(partials)

