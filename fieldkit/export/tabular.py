"""Parquet export: one row per clip of pooled features, HF-``datasets``-compatible, no torch.

Files follow the Hugging Face layout convention, ``data/<split>-00000-of-00001.parquet``, and
carry the schema metadata key ``huggingface`` that ``datasets`` reads to restore its feature
types (``ClassLabel`` with names, lists of strings, timestamps) without ``datasets`` being
needed to write them (docs/architecture.md, "Export").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr

from fieldkit.export.arrays import POOL_VARIABLES
from fieldkit.export.pooling import (
    FrameTiming,
    clip_blocks,
    open_source,
    pooled_columns,
    valid_frame_counts,
)
from fieldkit.export.request import ExportInput, hash_files

__all__ = ["META_COLUMNS", "hf_features", "parquet_file", "pool_dataset", "read_parquet_split",
           "write_parquet"]

#: Columns that describe a clip rather than measure it (everything else is a feature).
META_COLUMNS = ("clip_id", "recording_sha256", "site", "deployment", "start_time", "offset_s",
                "label", "labels", "split")


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
    if pa.types.is_timestamp(arrow_type):
        return f"timestamp[{arrow_type.unit}, tz={arrow_type.tz}]"
    named = {pa.float32(): "float32", pa.float64(): "float64", pa.int64(): "int64",
             pa.int32(): "int32", pa.string(): "string", pa.large_string(): "large_string"}
    return named[arrow_type]


def hf_features(schema: pa.Schema, label_names: tuple[str, ...]) -> dict[str, Any]:
    """The ``datasets.Features`` dict of ``schema``: ``label`` is a ``ClassLabel``."""
    features: dict[str, Any] = {}
    for field in schema:
        if field.name == "label":
            features["label"] = {"names": list(label_names), "_type": "ClassLabel"}
        elif pa.types.is_list(field.type):
            features[field.name] = {"feature": {"dtype": _value_type(field.type.value_type),
                                                "_type": "Value"}, "_type": "List"}
        else:
            features[field.name] = {"dtype": _value_type(field.type), "_type": "Value"}
    return features


def _meta_table(rows: pd.DataFrame) -> dict[str, pa.Array]:
    return {
        "clip_id": pa.array(rows["clip_id"].to_numpy(dtype=np.int64)),
        "recording_sha256": pa.array(rows["recording_sha256"].astype(str).tolist()),
        "site": pa.array(rows["site"].astype(object).where(rows["site"].notna(), None).tolist(),
                         pa.string()),
        "deployment": pa.array(rows["deployment"].astype(object)
                               .where(rows["deployment"].notna(), None).tolist(), pa.string()),
        "start_time": pa.array(rows["start_time"].dt.as_unit("us"),
                               pa.timestamp("us", tz="UTC")),
        "offset_s": pa.array(rows["offset_s"].to_numpy(dtype=np.float64)),
    }


def _label_columns(rows: pd.DataFrame, inp: ExportInput, split: str) -> dict[str, pa.Array]:
    if inp.single_label:
        position = {n: i for i, n in enumerate(inp.label_names)}
        label = pa.array([position[names[0]] for names in rows["labels"]], pa.int64())
        out = {"label": label}
    else:
        out = {"labels": pa.array(rows["labels"].tolist(), pa.list_(pa.string()))}
    return {**out, "split": pa.array([split] * len(rows), pa.string())}


def _split_table(inp: ExportInput, split: str, rows: pd.DataFrame, columns: list[str],
                 pooled: np.ndarray) -> pa.Table:
    data = _meta_table(rows)
    data.update({name: pa.array(pooled[:, i]) for i, name in enumerate(columns)})
    data.update(_label_columns(rows, inp, split))
    table = pa.table(data)
    meta = {"huggingface": json.dumps({"info": {"features": hf_features(table.schema,
                                                                          inp.label_names)}})}
    return table.replace_schema_metadata(meta)


def _write_split(ds: xr.Dataset, inp: ExportInput, split: str, path: Path,
                 timing: FrameTiming) -> None:
    rows = inp.split_index(split)
    clip_ids = rows["clip_id"].to_numpy(dtype=np.int64)
    writer = None
    step = 4096  # rows per row group; pooled rows are small (~1 KB), so this bounds memory
    try:
        for start in range(0, len(rows), step):
            part = rows.iloc[start:start + step]
            columns, pooled = pool_dataset(ds, clip_ids[start:start + step], timing)
            table = _split_table(inp, split, part, columns, pooled)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def write_parquet(inp: ExportInput, out_dir: Path) -> dict[str, str]:
    """Write ``data/<split>-00000-of-00001.parquet`` per split; returns ``file -> sha256``.

    One row per clip: ``clip_id``, ``recording_sha256``, ``site``, ``deployment``,
    ``start_time``, ``offset_s``, the pooled feature and QC columns of
    :func:`fieldkit.export.pooling.pooled_columns`, then ``label`` (ClassLabel index, when
    every clip has exactly one label) or ``labels`` (list of label names), and ``split``.
    """
    ds = open_source(inp.store_path)
    timing = FrameTiming.from_parameters(ds.attrs.get("parameters", {}))
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    for split in inp.splits:
        _write_split(ds, inp, split, out_dir / parquet_file(split), timing)
    return hash_files(out_dir, "data")


def read_parquet_split(out_dir: Path, split: str) -> pa.Table:
    """One split of a Parquet export as a pyarrow Table."""
    return pq.read_table(out_dir / parquet_file(split))
