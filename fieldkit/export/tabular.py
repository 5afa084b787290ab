"""Parquet export: one row per clip, audio and pooled features, loadable by HF ``datasets``.

Files follow the Hugging Face layout convention, ``data/<split>-00000-of-00001.parquet``, and
carry the schema metadata key ``huggingface`` that ``datasets`` reads to restore its feature
types without ``datasets`` being needed to write them (docs/architecture.md, "Export"):

- ``audio``: the clip's FLAC in the storage layout of ``datasets.Audio`` (a struct of
  ``bytes`` and ``path``), so the Hub's viewer plays it and ``load_dataset`` decodes it;
- pooled features as fixed-length list columns (``mel_mean``: ``List(float32, length=n_mels)``),
  per-frame scalars and QC values as ``float32`` columns;
- ``label`` (``ClassLabel``, single-label) or ``labels`` (``List(ClassLabel)``, multi-label);
- times as ISO 8601 text (``start_time``) and float seconds (``start_s``, ``end_s``), so
  ``with_format("torch")`` has no datetime column to trip on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr

from fieldkit.export.arrays import POOL_VARIABLES
from fieldkit.export.flac_audio import clip_audio, resolve_audio_source
from fieldkit.export.pooling import (
    FrameTiming,
    clip_blocks,
    open_source,
    pooled_columns,
    valid_frame_counts,
)
from fieldkit.export.request import ExportInput, hash_files
from fieldkit.export.sidecars import index_table

__all__ = ["META_COLUMNS", "expand_bands", "group_bands", "hf_features", "hf_loader_line", "parquet_audio_refs",
           "parquet_file", "pool_dataset", "read_parquet_split",
           "write_parquet"]

#: Columns that describe a clip rather than measure it (everything else is a feature).
META_COLUMNS = ("clip_id", "recording_id", "recording_sha256", "file_name", "site",
                "deployment", "start_time", "start_s", "end_s", "audio", "label", "labels",
                "split")
_BAND = re.compile(r"^(?P<stem>.+)_(?P<band>\d\d)$")


def parquet_file(split: str) -> str:
    """The relative path of one split's Parquet file."""
    return f"data/{split}-00000-of-00001.parquet"


def pool_dataset(ds: xr.Dataset, clip_ids: np.ndarray,
                 timing: FrameTiming) -> tuple[list[str], np.ndarray]:
    """Pooled feature and QC columns of ``clip_ids`` of ``ds``, block by block.

    Returns the column names and a ``(len(clip_ids), n_columns)`` float32 matrix.
    """
    names = [v for v in POOL_VARIABLES if v in ds.data_vars]
    n_frames = int(ds.sizes.get("frame", next(
        (ds[v].shape[1] for v in names if ds[v].ndim > 1), 1)))
    columns: list[str] = []
    blocks = []
    for _, arrays in clip_blocks(ds, clip_ids, names):
        n_valid = valid_frame_counts(arrays.pop("valid_samples"), n_frames, timing)
        pooled = pooled_columns(arrays, n_valid)
        columns = list(pooled)
        blocks.append(np.column_stack(list(pooled.values())))
    return columns, np.concatenate(blocks) if blocks else np.empty((0, 0), np.float32)


def _value_type(arrow_type: pa.DataType) -> str:
    named = {pa.float32(): "float32", pa.float64(): "float64", pa.int64(): "int64",
             pa.int32(): "int32", pa.string(): "string", pa.large_string(): "large_string"}
    return named[arrow_type]


def hf_features(schema: pa.Schema, label_names: tuple[str, ...],
                sample_rate_hz: int | None = None) -> dict[str, Any]:
    """The ``datasets.Features`` dict of ``schema`` (see the module docstring)."""
    features: dict[str, Any] = {}
    class_label = {"names": list(label_names), "_type": "ClassLabel"}
    for field in schema:
        if field.name == "label":
            features["label"] = class_label
        elif field.name == "labels":
            features["labels"] = {"feature": class_label, "_type": "List"}
        elif field.name == "audio":
            features["audio"] = {"sampling_rate": sample_rate_hz, "_type": "Audio"}
        elif pa.types.is_fixed_size_list(field.type):
            features[field.name] = {"feature": {"dtype": _value_type(field.type.value_type),
                                                "_type": "Value"},
                                    "length": field.type.list_size, "_type": "List"}
        else:
            features[field.name] = {"dtype": _value_type(field.type), "_type": "Value"}
    return features


def group_bands(columns: list[str], pooled: np.ndarray) -> dict[str, np.ndarray]:
    """Pooled columns with the bands of one feature together: ``mel_mean_00..`` -> ``mel_mean``.

    Returns name -> ``(clip,)`` or ``(clip, band)`` float32 arrays, in column order.
    """
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(columns):
        match = _BAND.match(name)
        groups.setdefault(match["stem"] if match else name, []).append(i)
    return {name: pooled[:, idx] if _BAND.match(columns[idx[0]]) else pooled[:, idx[0]]
            for name, idx in groups.items()}


def expand_bands(table: pa.Table) -> tuple[list[str], np.ndarray]:
    """The inverse of :func:`group_bands` on a Parquet table: per-number names and a matrix."""
    names, blocks = [], []
    for name in table.column_names:
        if name in META_COLUMNS:
            continue
        column = table[name].combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            n = column.type.list_size
            values = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, n)
            names += [f"{name}_{band:02d}" for band in range(n)]
            blocks.append(values)
        else:
            names.append(name)
            blocks.append(column.to_numpy(zero_copy_only=False)[:, None])
    return names, np.hstack(blocks) if blocks else np.empty((table.num_rows, 0), np.float32)


def _text(values: pd.Series) -> pa.Array:
    return pa.array(values.astype(object).where(values.notna(), None).tolist(), pa.string())


def _meta_table(index: pd.DataFrame) -> dict[str, pa.Array]:
    return {
        "clip_id": pa.array(index["clip_id"].to_numpy(dtype=np.int64)),
        "recording_id": pa.array(index["recording_id"].to_numpy(dtype=np.int64)),
        "recording_sha256": pa.array(index["recording_sha256"].astype(str).tolist()),
        "file_name": _text(index["file_name"]),
        "site": _text(index["site"]),
        "deployment": _text(index["deployment"]),
        "start_time": _text(index["start_time"]),
        "start_s": pa.array(index["start_s"].to_numpy(dtype=np.float64)),
        "end_s": pa.array(index["end_s"].to_numpy(dtype=np.float64)),
    }


def _label_columns(rows: pd.DataFrame, inp: ExportInput, split: str) -> dict[str, pa.Array]:
    position = {n: i for i, n in enumerate(inp.label_names)}
    if inp.single_label:
        label = pa.array([position[names[0]] for names in rows["labels"]], pa.int64())
        out = {"label": label}
    else:
        out = {"labels": pa.array([[position[n] for n in names] for names in rows["labels"]],
                                  pa.list_(pa.int64()))}
    return {**out, "split": pa.array([split] * len(rows), pa.string())}


def _feature_column(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.float32)
    if values.ndim == 1:
        return pa.array(values)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _split_table(inp: ExportInput, split: str, rows: pd.DataFrame, index: pd.DataFrame,
                 columns: list[str], pooled: np.ndarray, audio: list[bytes] | None,
                 sample_rate_hz: int | None) -> pa.Table:
    data = _meta_table(index)
    if audio is not None:
        paths = [f"{c}.flac" for c in rows["clip_id"].map(lambda c: f"clip{int(c):08d}")]
        data["audio"] = pa.StructArray.from_arrays(
            [pa.array(audio, pa.binary()), pa.array(paths, pa.string())], ["bytes", "path"])
    data.update({name: _feature_column(v) for name, v in group_bands(columns, pooled).items()})
    data.update(_label_columns(rows, inp, split))
    table = pa.table(data)
    features = hf_features(table.schema, inp.label_names, sample_rate_hz)
    meta = {"huggingface": json.dumps({"info": {"features": features}})}
    return table.replace_schema_metadata(meta)


def _write_split(ds: xr.Dataset, inp: ExportInput, split: str, path: Path,
                 timing: FrameTiming, index: pd.DataFrame, source: str) -> None:
    rows = inp.split_index(split)
    clip_ids = rows["clip_id"].to_numpy(dtype=np.int64)
    rate = int(ds.attrs["layout"]["sample_rate_hz"]) if source == "processed" else None
    writer = None
    # rows per row group: pooled rows are ~1 KB, a clip's FLAC up to a few MB; this bounds memory
    step = 4096 if source == "none" else 64
    try:
        for start in range(0, len(rows), step):
            part = rows.iloc[start:start + step]
            audio = (None if source == "none"
                     else [c.flac for c in clip_audio(inp, part, source)])
            columns, pooled = pool_dataset(ds, clip_ids[start:start + step], timing)
            table = _split_table(inp, split, part, index.loc[part.index], columns, pooled,
                                 audio, rate)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def write_parquet(inp: ExportInput, out_dir: Path) -> dict[str, str]:
    """Write ``data/<split>-00000-of-00001.parquet`` per split; returns ``file -> sha256``.

    One row per clip: the index columns (``clip_id``, ``recording_id``, ``recording_sha256``,
    ``file_name``, ``site``, ``deployment``, ``start_time``, ``start_s``, ``end_s``), the
    ``audio`` struct (unless the input's ``audio`` is ``none``), the pooled feature and QC
    columns of :func:`fieldkit.export.pooling.pooled_columns` with bands grouped into
    fixed-length lists, then ``label`` (ClassLabel index, when every clip has exactly one
    label) or ``labels`` (list of ClassLabel indices), and ``split``.
    """
    ds = open_source(inp.store)
    timing = FrameTiming.from_parameters(ds.attrs.get("parameters", {}))
    source = resolve_audio_source(inp)
    index = index_table(inp)
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    for split in inp.splits:
        _write_split(ds, inp, split, out_dir / parquet_file(split), timing, index, source)
    return hash_files(out_dir, "data")


def read_parquet_split(out_dir: Path, split: str) -> pa.Table:
    """One split of a Parquet export as a pyarrow Table."""
    return pq.read_table(out_dir / parquet_file(split))


def parquet_audio_refs(inp: ExportInput, split: str) -> list[str]:
    """Where each clip's audio is: the ``audio`` column of its split's Parquet file."""
    return [parquet_file(split)] * len(inp.split_index(split))


def hf_loader_line(out_dir: Path) -> str:
    """The one line of Python that loads a Parquet export with Hugging Face ``datasets``."""
    return f"from datasets import load_dataset; ds = load_dataset({str(Path(out_dir).resolve())!r})"
