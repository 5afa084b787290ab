"""Export formats by name: how each writes its arrays, how it is loaded, how it pools.

A format is an :class:`ExportFormat` record in :data:`FORMATS` (lhotse's storage backends
are chosen the same way). :func:`get_format` misses with the list of known names. Each format
contributes three things:

- ``export(inp, out_dir) -> {relative file: sha256}``: its data files (the service adds the
  index, lineage, card, Croissant and manifest every export shares);
- ``snippet``: a Jinja template of the five lines of Python that load it, rendered into the
  dataset card (and executed by the tests);
- ``read_pooled(out_dir, split, meta)``: the per-clip pooled table (features, labels) of one
  split, used by :mod:`fieldkit.export.baseline`;
- ``audio_refs(inp, split)``: for a format that keeps each clip's FLAC inside its own files
  (Parquet, WebDataset), where each clip's audio is, one entry per index row of the split;
  ``None`` for the others, which get the shared ``audio/<split>/<key>.flac`` folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fieldkit.errors import ExportError, NotFoundError, UnknownNameError
from fieldkit.export.arrays import (
    numpy_split,
    read_numpy_split,
    read_zarr_split,
    write_numpy,
    write_zarr,
)
from fieldkit.export.lhotse_cuts import write_lhotse
from fieldkit.export.pooling import FrameTiming
from fieldkit.export.request import ExportInput
from fieldkit.export.tabular import (
    expand_bands,
    parquet_audio_refs,
    pool_dataset,
    read_parquet_split,
    write_parquet,
)
from fieldkit.export.wds_shards import shard_audio_refs, write_webdataset

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
    audio_refs: Callable[[ExportInput, str], list[str]] | None = None
    needs_audio: bool = False


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
    table = table.drop_columns([c for c in ("audio",) if c in table.column_names])
    columns, features = expand_bands(table)
    names = meta["label_names"]
    labels = np.zeros((table.num_rows, len(names)), dtype=np.uint8)
    if "label" in table.column_names:
        labels[np.arange(table.num_rows), table["label"].to_numpy()] = 1
    else:
        for row, clip_labels in enumerate(table["labels"].to_pylist()):
            labels[row, clip_labels] = 1
    return Pooled(columns, features, labels)


def _pooled_unavailable(out_dir: Path, split: str, meta: dict[str, Any]) -> Pooled:
    raise ExportError(f"{out_dir} is a {meta.get('format')} export; the baseline reads the "
                      "pooled features of a zarr, numpy or parquet export.",
                      hint="Export the dataset again with --format parquet for the baseline.")


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
import os; from datasets import Audio, load_dataset  # run in this folder (or give its path)
ds = load_dataset(os.getcwd())  # the card names each split's file; features: audio, mel_mean...
{% if audio -%}
ds = ds.cast_column("audio", Audio(decode=False)).with_format("numpy")  # decoding needs torchcodec
import io, soundfile as sf; row = ds["{{ first }}"][0]  # or .with_format("torch")
wave, rate = sf.read(io.BytesIO(row["audio"]["bytes"]))  # the clip's FLAC, at its own rate
{%- else -%}
ds = ds.with_format("numpy")  # or "torch"; this export was written without audio
row = ds["{{ first }}"][0]
print(row["{{ label_column }}"], ds["{{ first }}"].features["{{ label_column }}"])
{%- endif %}"""

WEBDATASET_SNIPPET = """\
import glob, io, soundfile as sf, webdataset as wds  # pip install webdataset
urls = sorted(glob.glob("data/{{ first }}-*.tar"))  # shards of up to {{ shard_size }} clips
flac = wds.handle_extension("flac", lambda b: sf.read(io.BytesIO(b), dtype="float32")[0])
ds = wds.WebDataset(urls, shardshuffle=False).decode(flac).to_tuple("flac", "npy", "json")
wave, {{ shard_feature }}, meta = next(iter(ds))  # meta["label_ids"]: indices into label_names"""

LHOTSE_SNIPPET = """\
from lhotse import CutSet  # pip install lhotse; audio paths are relative to this folder
cuts = CutSet.from_file("lhotse/{{ first }}/cuts.jsonl.gz")  # or .with_recording_path_prefix(dir)
cut = next(iter(cuts))  # one cut per clip, one supervision per label
audio = cut.load_audio()  # (channels, samples) float32 at cut.sampling_rate
print(cut.id, [s.custom["label"] for s in cut.supervisions], cut.custom["split"])"""

FORMATS: dict[str, ExportFormat] = {
    "zarr": ExportFormat("zarr", "one consolidated Zarr v3 store per split (all arrays, "
                         "multi-hot labels)", write_zarr, _pooled_zarr, ZARR_SNIPPET),
    "numpy": ExportFormat("numpy", "one .npy file per variable and split (memory-mappable)",
                          write_numpy, _pooled_numpy, NUMPY_SNIPPET),
    "parquet": ExportFormat("parquet", "per-clip audio (FLAC) and pooled features as Hugging "
                            "Face-compatible Parquet", write_parquet, _pooled_parquet,
                            PARQUET_SNIPPET, parquet_audio_refs),
    "webdataset": ExportFormat("webdataset", "tar shards of <key>.flac, <key>.json (labels, "
                               "split, lineage ids) and <key>.npy (frame features) per clip",
                               write_webdataset, _pooled_unavailable, WEBDATASET_SNIPPET,
                               shard_audio_refs, needs_audio=True),
    "lhotse": ExportFormat("lhotse", "Lhotse recordings, supervisions (one per label) and cuts "
                           "(jsonl.gz) over per-clip FLAC", write_lhotse,
                           _pooled_unavailable, LHOTSE_SNIPPET, needs_audio=True),
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
