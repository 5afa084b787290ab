"""Lhotse export: ``recordings``, ``supervisions`` and ``cuts`` manifests over the clips' FLAC.

The manifests follow lhotse's own serialisation (``Recording.to_dict``,
``SupervisionSegment.to_dict``, ``MonoCut.to_dict``; https://lhotse.readthedocs.io, "Data
formats"), one gzip-compressed JSON line per item, one file of each per split:
``lhotse/<split>/recordings.jsonl.gz`` and so on. They are written from that documented
layout without importing lhotse (it pulls in torch); the tests load them with lhotse.

- a *recording* per clip: its FLAC under ``audio/<split>/`` (a path relative to the export:
  load with ``.with_path_prefix(export_dir)`` or from the export folder);
- a *supervision* per label of the clip, spanning the whole clip, the label name in
  ``custom["label"]`` and its class index in ``custom["label_id"]`` (a clip without a label
  has no supervision);
- a *cut* per clip over its recording with those supervisions, and the index row (clip id,
  recording, archive file name, start time, split) in ``custom``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import soundfile as sf

from fieldkit.export.flac_audio import audio_folder_path, clip_key
from fieldkit.export.request import ExportInput, hash_files
from fieldkit.export.sidecars import index_table

__all__ = ["LHOTSE_MANIFESTS", "lhotse_manifest", "write_lhotse"]

LHOTSE_MANIFESTS = ("recordings", "supervisions", "cuts")


def lhotse_manifest(split: str, kind: str) -> str:
    """The relative path of one manifest (``kind`` in :data:`LHOTSE_MANIFESTS`)."""
    return f"lhotse/{split}/{kind}.jsonl.gz"


def _recording(key: str, rel: str, info: Any) -> dict[str, Any]:
    channels = list(range(info.channels))
    return {"id": key, "sources": [{"type": "file", "channels": channels, "source": rel}],
            "sampling_rate": int(info.samplerate), "num_samples": int(info.frames),
            "duration": info.frames / info.samplerate, "channel_ids": channels}


def _supervisions(key: str, labels: list[str], duration: float,
                  inp: ExportInput) -> list[dict[str, Any]]:
    return [{"id": f"{key}-{inp.label_names.index(name)}", "recording_id": key, "start": 0.0,
             "duration": duration, "channel": 0,
             "custom": {"label": name, "label_id": inp.label_names.index(name)}}
            for name in labels]


def _cut(key: str, recording: dict[str, Any], sups: list[dict[str, Any]],
         row: pd.Series) -> dict[str, Any]:
    custom = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()
              if k in ("clip_id", "recording_id", "recording_sha256", "file_name", "start_time",
                       "start_s", "end_s", "site", "deployment", "split")}
    cut = {"id": key, "start": 0.0, "duration": recording["duration"], "supervisions": sups,
           "recording": recording, "custom": custom}
    if len(recording["channel_ids"]) == 1:
        return {**cut, "channel": 0, "type": "MonoCut"}
    return {**cut, "channel": recording["channel_ids"], "type": "MultiCut"}


def _write_jsonl_gz(path: Path, items: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same export gives the same bytes
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for item in items:
            gz.write((json.dumps(item, default=str) + "\n").encode("utf-8"))


def write_lhotse(inp: ExportInput, out_dir: Path) -> dict[str, str]:
    """Write the three manifests per split over ``audio/`` (written first by the exporter).

    Returns ``relative file -> sha256`` of the manifests.
    """
    index = index_table(inp)
    for split in inp.splits:
        rows = inp.split_index(split)
        recordings, supervisions, cuts = [], [], []
        for label_list, (pos, row) in zip(rows["labels"], index.loc[rows.index].iterrows()):
            key, rel = clip_key(row["clip_id"]), audio_folder_path(split, row["clip_id"])
            recording = _recording(key, rel, sf.info(str(out_dir / rel)))
            sups = _supervisions(key, list(label_list), recording["duration"], inp)
            recordings.append(recording)
            supervisions += sups
            cuts.append(_cut(key, recording, sups, row))
        for kind, items in zip(LHOTSE_MANIFESTS, (recordings, supervisions, cuts)):
            _write_jsonl_gz(out_dir / lhotse_manifest(split, kind), items)
    return hash_files(out_dir, "lhotse")
