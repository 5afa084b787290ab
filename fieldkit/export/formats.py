"""Export formats by name: how each writes its arrays, how it is loaded, how it pools.

A format is an :class:`ExportFormat` record in :data:`FORMATS` (lhotse's storage backends
are chosen the same way). :func:`get_format` misses with the list of known names. Each format
contributes three things:

- ``export(inp, out_dir) -> {relative file: sha256}``: its data files (the service adds the
  index, lineage, card, Croissant and manifest every export shares);
- ``snippet``: a Jinja template of the five lines of Python that load it, rendered into the
  dataset card (and executed by the tests);
- ``read_pooled(out_dir, split, meta)``: the per-clip pooled table (features, labels) of one
  split, used by :mod:`fieldkit.export.baseline`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fieldkit.errors import NotFoundError, UnknownNameError
from fieldkit.export.arrays import (
    numpy_split,
    read_numpy_split,
    read_zarr_split,
    write_numpy,
    write_zarr,
)
from fieldkit.export.pooling import FrameTiming
from fieldkit.export.request import ExportInput
from fieldkit.export.tabular import META_COLUMNS, pool_dataset, read_parquet_split, write_parquet

__all__ = ["FORMATS", "ExportFormat", "Pooled", "get_format"]


@dataclass(frozen=True)
class Pooled:
    """One split as a table: ``features`` (clip, column) float, ``labels`` (clip, label) 0/1."""

    columns: list[str]
    features: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class ExportFormat:
    """One export format (see the module docstring)."""

    name: str
    description: str
    export: Callable[[ExportInput, Path], dict[str, str]]
    read_pooled: Callable[[Path, str, dict[str, Any]], Pooled]
    snippet: str


def _pool_arrays(ds: xr.Dataset, meta: dict[str, Any], labels: np.ndarray) -> Pooled:
    timing = FrameTiming(**meta["frame_timing"])
    columns, features = pool_dataset(ds, np.arange(ds.sizes["clip"]), timing)
    return Pooled(columns, features, np.asarray(labels, dtype=np.uint8))


def _pooled_zarr(out_dir: Path, split: str, meta: dict[str, Any]) -> Pooled:
    ds = read_zarr_split(out_dir, split)
    return _pool_arrays(ds, meta, ds["labels"].values)


def _pooled_numpy(out_dir: Path, split: str, meta: dict[str, Any]) -> Pooled:
    ds = read_numpy_split(out_dir, split)
    return _pool_arrays(ds, meta, np.load(numpy_split(out_dir, split) / "labels.npy"))


def _pooled_parquet(out_dir: Path, split: str, meta: dict[str, Any]) -> Pooled:
    table = read_parquet_split(out_dir, split)
    columns = [c for c in table.column_names if c not in META_COLUMNS]
    features = np.column_stack([table[c].to_numpy(zero_copy_only=False) for c in columns])
    names = meta["label_names"]
    labels = np.zeros((table.num_rows, len(names)), dtype=np.uint8)
    if "label" in table.column_names:
        labels[np.arange(table.num_rows), table["label"].to_numpy()] = 1
    else:
        position = {n: i for i, n in enumerate(names)}
        for row, clip_labels in enumerate(table["labels"].to_pylist()):
            labels[row, [position[n] for n in clip_labels]] = 1
    return Pooled(columns, features, labels)


ZARR_SNIPPET = """\
import xarray as xr
data = {s: xr.open_zarr(f"data/{s}.zarr", consolidated=True) for s in {{ splits }}}
ds = data["{{ first }}"]  # lazy; row i is the i-th {{ first }} row of index.parquet
batch = ds.isel(clip=slice(0, 32))  # read only what you need
x, y = batch["{{ array }}"].values, batch["labels"].values  # y: multi-hot over ds["label"]"""

NUMPY_SNIPPET = """\
import json, numpy as np, pandas as pd
index = pd.read_parquet("index.parquet")  # within a split, row i describes array row i
label_names = json.load(open("export.json"))["label_names"]  # columns of labels.npy
x = np.load("data/{{ first }}/{{ array }}.npy", mmap_mode="r")  # memory-mapped, clip first
y = np.load("data/{{ first }}/labels.npy")  # multi-hot (clip, label), uint8"""

PARQUET_SNIPPET = """\
from datasets import load_dataset  # no torch needed: pooled features are plain columns
files = {{ data_files }}
ds = load_dataset("parquet", data_files=files)  # one row per clip
print({split: part.num_rows for split, part in ds.items()})
print(ds["{{ first }}"].features["{{ label_column }}"])"""

FORMATS: dict[str, ExportFormat] = {
    "zarr": ExportFormat("zarr", "one consolidated Zarr v3 store per split (all arrays, "
                         "multi-hot labels)", write_zarr, _pooled_zarr, ZARR_SNIPPET),
    "numpy": ExportFormat("numpy", "one .npy file per variable and split (memory-mappable)",
                          write_numpy, _pooled_numpy, NUMPY_SNIPPET),
    "parquet": ExportFormat("parquet", "per-clip pooled features as Hugging Face-compatible "
                            "Parquet", write_parquet, _pooled_parquet, PARQUET_SNIPPET),
}


def get_format(name: str) -> ExportFormat:
    """The export format called ``name``; UnknownNameError listing the known ones."""
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownNameError("export format", name, list(FORMATS)) from None


def read_export_meta(out_dir: Path) -> dict[str, Any]:
    """The ``export.json`` of an export (format, label names, splits, frame timing).

    Raises :class:`~fieldkit.errors.NotFoundError` when ``out_dir`` holds no ``export.json``.
    """
    meta = Path(out_dir) / "export.json"
    if not meta.is_file():
        what = "does not exist" if not Path(out_dir).exists() else "is not a fieldkit export (no export.json)"
        raise NotFoundError(f"export folder {out_dir} {what}.", path=out_dir,
                            hint="Give a folder written by 'fieldkit export' (default: exports/NAME-VERSION-FORMAT).")
    return json.loads(meta.read_text(encoding="utf-8"))
