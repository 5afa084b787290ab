"""The files every export shares besides its arrays: index, lineage and ``export.json``.

- ``index.parquet`` / ``index.csv``: one row per clip, in export order (by split, then
  ``clip_id``; within a split, row ``i`` describes array row ``i``). Columns ``clip_id``,
  ``recording_sha256``, ``start_time`` (UTC; ISO 8601 with ``Z`` in the CSV, empty when
  unknown), ``offset_s``, ``site``, ``deployment``, ``labels`` (joined by ``;``), ``split``.
- ``lineage.json``: where each clip came from (recording hash, archive path, cards, ingest
  sessions, source paths, run and parameter hash), in the same order as the index.
- ``export.json``: what a loader needs (format, label names, split sizes, frame timing).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from fieldkit.export.pooling import FrameTiming, open_source
from fieldkit.export.request import ExportInput, hash_files
from fieldkit.store.regions import read_layout

__all__ = ["EXPORT_META_VERSION", "index_table", "iso_z", "write_sidecars"]

EXPORT_META_VERSION = 1
LABEL_SEPARATOR = ";"


def iso_z(value: Any) -> str:
    """ISO 8601 UTC text ending in ``Z`` (``""`` for NaT/None)."""
    if value is None or pd.isna(value):
        return ""
    return pd.Timestamp(value).tz_convert("UTC").isoformat().replace("+00:00", "Z")


def index_table(inp: ExportInput) -> pd.DataFrame:
    """The export index (see the module docstring), ``start_time`` as UTC timestamps."""
    idx = inp.index
    return pd.DataFrame({
        "clip_id": idx["clip_id"].astype("int64"),
        "recording_sha256": idx["recording_sha256"].astype(str),
        "start_time": idx["start_time"].dt.as_unit("us"),
        "offset_s": idx["offset_s"].astype("float64"),
        "site": idx["site"].astype(object),
        "deployment": idx["deployment"].astype(object),
        "labels": idx["labels"].map(LABEL_SEPARATOR.join),
        "split": idx["split"].astype(str),
    })


def _write_index(inp: ExportInput, out_dir: Path) -> None:
    table = index_table(inp)
    table.to_parquet(out_dir / "index.parquet", index=False)
    text = table.assign(start_time=table["start_time"].map(iso_z))
    text.to_csv(out_dir / "index.csv", index=False, lineterminator="\n")


def _write_lineage(inp: ExportInput, out_dir: Path) -> None:
    document = {"dataset": inp.name, "version": inp.version, "store": str(inp.store_path),
                "clips": inp.lineage_records()}
    with open(out_dir / "lineage.json", "w", encoding="utf-8") as fh:
        json.dump(document, fh, indent=1, default=str)
        fh.write("\n")


def store_timing(inp: ExportInput) -> FrameTiming:
    """Frame timing of the run's features (from the store's own parameters, else the input's)."""
    return FrameTiming.from_parameters(open_source(inp.store_path).attrs.get("parameters",
                                                                               inp.workflow))


def export_meta(inp: ExportInput, format_name: str) -> dict[str, Any]:
    """The content of ``export.json``."""
    layout = read_layout(inp.store_path)
    return {
        "fieldkit_export": EXPORT_META_VERSION,
        "name": inp.name, "version": inp.version, "format": format_name,
        "created_utc": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "label_names": list(inp.label_names), "single_label": inp.single_label,
        "splits": {s: len(inp.split_index(s)) for s in inp.splits},
        "sample_rate_hz": layout.sample_rate_hz, "samples_per_clip": layout.samples_per_clip,
        "frame_timing": store_timing(inp).to_dict(),
    }


def write_sidecars(inp: ExportInput, format_name: str, out_dir: Path) -> dict[str, str]:
    """Write the index, lineage and ``export.json``; returns ``file -> sha256``."""
    _write_index(inp, out_dir)
    _write_lineage(inp, out_dir)
    meta = json.dumps(export_meta(inp, format_name), indent=1)
    (out_dir / "export.json").write_text(meta + "\n", encoding="utf-8")
    return hash_files(out_dir, "index.parquet", "index.csv", "lineage.json", "export.json")
