"""WebDataset export: tar shards of ``<key>.flac``, ``<key>.json`` and ``<key>.npy`` per clip.

The WebDataset convention (https://github.com/webdataset/webdataset, "The WebDataset
Format"): a shard is a plain POSIX tar; consecutive members sharing a key (the name up to the
first dot) form one sample. Shards are ``data/<split>-NNNNNN.tar`` of ``shard_size`` clips
each, in export order, written with the standard library's :mod:`tarfile` (no runtime
dependency; the tests read them with the ``webdataset`` package). Per clip:

- ``<key>.flac``: the clip's audio (:mod:`fieldkit.export.flac_audio`);
- ``<key>.json``: the index row (recording, file name, times, site, deployment, split),
  ``labels`` (names), ``label_ids`` (class indices into ``label_names`` of ``export.json``),
  ``label`` (the index, single-label datasets only) and the lineage ids (run, parameter hash);
- ``<key>.npy``: the clip's frame feature named by ``export.json``'s ``feature`` (``mel`` when
  the run stored it), ``(frame, band)``.

Members carry mtime 0 and no owner, so the same export gives the same bytes.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fieldkit.errors import ValidationError
from fieldkit.export.flac_audio import clip_audio, clip_key, resolve_audio_source
from fieldkit.export.pooling import clip_blocks, open_source
from fieldkit.export.request import ExportInput, hash_files
from fieldkit.export.sidecars import index_table

__all__ = ["SHARD_FEATURES", "shard_audio_refs", "shard_feature", "shard_name", "write_webdataset"]

#: The frame feature put in each sample's ``.npy``: the first of these the run stored.
SHARD_FEATURES = ("mel", "logmel", "mfcc", "chroma")


def shard_name(split: str, number: int) -> str:
    """The relative path of shard ``number`` of a split."""
    return f"data/{split}-{number:06d}.tar"


def shard_feature(store_vars: set[str]) -> str:
    """The frame feature each sample's ``.npy`` holds."""
    found = next((f for f in SHARD_FEATURES if f in store_vars), None)
    if found is None:
        raise ValidationError(f"the run stored none of {', '.join(SHARD_FEATURES)}; a "
                              "WebDataset sample needs one frame feature for its .npy.")
    return found


def shard_audio_refs(inp: ExportInput, split: str) -> list[str]:
    """Where each clip's FLAC is: ``<shard>/<key>.flac``, one per index row of the split."""
    ids = inp.split_index(split)["clip_id"].astype(int).tolist()
    return [f"{shard_name(split, i // inp.shard_size)}/{clip_key(c)}.flac"
            for i, c in enumerate(ids)]


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(payload), 0, 0o644
    tar.addfile(info, io.BytesIO(payload))


def _npy(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(values))
    return buffer.getvalue()


def _sample_json(row: pd.Series, labels: list[str], inp: ExportInput,
                 lineage: dict[str, Any]) -> bytes:
    ids = [inp.label_names.index(n) for n in labels]
    doc = {"clip_id": int(row["clip_id"]), "recording_id": int(row["recording_id"]),
           "recording_sha256": row["recording_sha256"], "file_name": row["file_name"],
           "start_time": row["start_time"], "start_s": float(row["start_s"]),
           "end_s": float(row["end_s"]), "site": row["site"], "deployment": row["deployment"],
           "split": row["split"], "labels": labels, "label_ids": ids,
           **({"label": ids[0]} if inp.single_label else {}),
           "run_id": lineage.get("run_id"), "params_hash": lineage.get("params_hash")}
    return json.dumps(doc, default=str).encode("utf-8")


def _write_split(inp: ExportInput, split: str, out_dir: Path, feature: str, source: str,
                 index: pd.DataFrame, lineage: dict[int, dict[str, Any]]) -> None:
    rows = inp.split_index(split)
    ds = open_source(inp.store)
    clip_ids = rows["clip_id"].to_numpy(dtype=np.int64)
    audio = clip_audio(inp, rows, source)
    tar = None
    try:
        for block_rows, arrays in clip_blocks(ds, clip_ids, [feature]):
            for i, values in enumerate(arrays[feature], start=block_rows.start):
                if i % inp.shard_size == 0:
                    if tar is not None:
                        tar.close()
                    # one open shard at a time, rotated every shard_size clips; closed below
                    tar = tarfile.open(out_dir / shard_name(split, i // inp.shard_size),  # noqa: SIM115
                                       "w", format=tarfile.USTAR_FORMAT)
                clip = next(audio)
                row = index.loc[rows.index[i]]
                _add(tar, f"{clip.key}.flac", clip.flac)
                _add(tar, f"{clip.key}.json", _sample_json(row, rows["labels"].iloc[i], inp,
                                                           lineage[int(clip_ids[i])]))
                _add(tar, f"{clip.key}.npy", _npy(values))
    finally:
        if tar is not None:
            tar.close()


def write_webdataset(inp: ExportInput, out_dir: Path) -> dict[str, str]:
    """Write ``data/<split>-NNNNNN.tar`` shards (see the module docstring); ``file -> sha256``."""
    source = resolve_audio_source(inp)
    if source == "none":
        raise ValidationError("a WebDataset export carries each clip's audio; audio 'none' "
                              "leaves nothing to put in the .flac members.",
                              hint="Use --audio processed or --audio original.")
    feature = shard_feature(set(open_source(inp.store).data_vars))
    index = index_table(inp)
    lineage = {int(r["clip_id"]): r for r in inp.lineage}
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    for split in inp.splits:
        _write_split(inp, split, out_dir, feature, source, index, lineage)
    return hash_files(out_dir, "data")
