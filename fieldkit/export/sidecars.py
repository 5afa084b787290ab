"""The files every export shares besides its arrays: index, lineage and ``export.json``.

- ``index.parquet`` / ``index.csv``: one row per clip, in export order (by split, then
  ``clip_id``; within a split, row ``i`` describes array row ``i``). Columns ``clip_id``,
  ``recording_id``, ``recording_sha256``, ``file_name`` (the archive file's name),
  ``start_time`` (the clip's start, UTC, ISO 8601 text ending in ``Z``; empty when
  unknown), ``start_s`` and ``end_s`` (seconds from the start of the recording; ``end_s``
  ends the clip's real audio), ``site``, ``deployment``, ``labels`` (names joined by ``;``),
  ``split`` and ``audio`` (where the clip's FLAC is: a file, or the Parquet file or
  WebDataset shard holding it; empty without audio).
- ``lineage.json``: where each clip came from (recording hash, archive path, cards, ingest
  sessions, source paths, run and parameter hash), in the same order as the index. The
  ``store`` is written relative to the export folder, so an export and its workspace can
  move together.
- ``export.json``: what a loader needs (format, label names, split sizes, frame timing).
"""

from __future__ import annotations

import json
import os
import posixpath
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from fieldkit.config.settings import redact_url
from fieldkit.export.pooling import FrameTiming, open_source
from fieldkit.export.request import ExportInput, hash_files
from fieldkit.io.storage import Root, is_url
from fieldkit.store.regions import read_layout

__all__ = ["EXPORT_META_VERSION", "index_table", "iso_z", "write_sidecars"]

EXPORT_META_VERSION = 1
LABEL_SEPARATOR = ";"


def iso_z(value: Any) -> str:
    """ISO 8601 UTC text ending in ``Z`` (``""`` for NaT/None)."""
    if value is None or pd.isna(value):
        return ""
    return pd.Timestamp(value).tz_convert("UTC").isoformat().replace("+00:00", "Z")


def clip_end_s(inp: ExportInput) -> pd.Series:
    """End of each index row's real audio, in seconds from the start of its recording."""
    ds = open_source(inp.store)
    rate = float(ds.attrs["layout"]["sample_rate_hz"])
    valid = ds["valid_samples"].values[inp.index["clip_id"].to_numpy(dtype="int64")]
    return inp.index["offset_s"].astype("float64") + valid / rate


def index_table(inp: ExportInput, audio: dict[int, str] | None = None) -> pd.DataFrame:
    """The export index (see the module docstring); ``audio`` maps clip_id to its FLAC."""
    idx = inp.index
    names = {int(r["clip_id"]): Path(str(r["archive_path"])).name for r in inp.lineage}
    ids = idx["clip_id"].astype("int64")
    return pd.DataFrame({
        "clip_id": ids,
        "recording_id": idx["recording_id"].astype("int64"),
        "recording_sha256": idx["recording_sha256"].astype(str),
        "file_name": ids.map(names).astype(str),
        "start_time": idx["start_time"].map(iso_z),
        "start_s": idx["offset_s"].astype("float64"),
        "end_s": clip_end_s(inp),
        "site": idx["site"].astype(object),
        "deployment": idx["deployment"].astype(object),
        "labels": idx["labels"].map(LABEL_SEPARATOR.join),
        "split": idx["split"].astype(str),
        "audio": ids.map(lambda c: (audio or {}).get(int(c), "")).astype(str),
    })


def _write_index(inp: ExportInput, out_dir: Path, audio: dict[int, str] | None) -> None:
    table = index_table(inp, audio)
    table.to_parquet(out_dir / "index.parquet", index=False)
    table.to_csv(out_dir / "index.csv", index=False, lineterminator="\n")


def store_reference(store: Path | Root, final_dir: Path | str) -> str:
    """The store as the lineage names it: relative to where the export lives when both are on one
    disk or in one bucket (so they can move together), else the store's URL (no credentials)."""
    if not isinstance(store, Root) and not is_url(str(final_dir)):
        return Path(os.path.relpath(Path(store).resolve(), Path(final_dir).resolve())).as_posix()
    store_uri = store.uri() if isinstance(store, Root) else str(Path(store).resolve())
    final_uri = str(final_dir)
    if is_url(store_uri) and is_url(final_uri):
        (store_scheme, store_key), (final_scheme, final_key) = store_uri.split("://", 1), final_uri.split("://", 1)
        if store_scheme == final_scheme and store_key.split("/", 1)[0] == final_key.split("/", 1)[0]:
            return posixpath.relpath("/" + store_key, "/" + final_key)
    return redact_url(store_uri)


def _write_lineage(inp: ExportInput, out_dir: Path, final_dir: Path | str) -> None:
    # relative to where the export will live (out_dir is its temporary sibling or upload folder)
    store = store_reference(inp.store_path, final_dir)
    document = {"dataset": inp.name, "version": inp.version, "store": store,
                "store_relative_to": None if is_url(store) else "export", "clips": inp.lineage_records()}
    with open(out_dir / "lineage.json", "w", encoding="utf-8") as fh:
        json.dump(document, fh, indent=1, default=str)
        fh.write("\n")


def store_timing(inp: ExportInput) -> FrameTiming:
    """Frame timing of the run's features (from the store's own parameters, else the input's)."""
    return FrameTiming.from_parameters(open_source(inp.store).attrs.get("parameters",
                                                                               inp.workflow))


def export_meta(inp: ExportInput, format_name: str) -> dict[str, Any]:
    """The content of ``export.json``."""
    layout = read_layout(inp.store)
    return {
        "fieldkit_export": EXPORT_META_VERSION,
        "name": inp.name, "version": inp.version, "format": format_name,
        "created_utc": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "label_names": list(inp.label_names), "single_label": inp.single_label,
        "splits": {s: len(inp.split_index(s)) for s in inp.splits},
        "sample_rate_hz": layout.sample_rate_hz, "samples_per_clip": layout.samples_per_clip,
        "frame_timing": store_timing(inp).to_dict(),
    }


def write_sidecars(inp: ExportInput, format_name: str, out_dir: Path, *,
                   audio: dict[int, str] | None = None, audio_source: str = "none",
                   final_dir: Path | str | None = None) -> dict[str, str]:
    """Write the index, lineage and ``export.json``; returns ``file -> sha256``.

    ``audio`` maps each clip_id to where its FLAC is (the index's ``audio`` column),
    ``audio_source`` is recorded in ``export.json``, and ``final_dir`` is the folder the
    export is renamed to, or the URL it is uploaded to (the lineage's ``store`` is relative to
    it; default ``out_dir``).
    """
    _write_index(inp, out_dir, audio)
    _write_lineage(inp, out_dir, final_dir or out_dir)
    meta = json.dumps({**export_meta(inp, format_name), "audio": audio_source}, indent=1)
    (out_dir / "export.json").write_text(meta + "\n", encoding="utf-8")
    return hash_files(out_dir, "index.parquet", "index.csv", "lineage.json", "export.json")
