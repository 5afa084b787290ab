"""Layer 3: datasets — the clips of a processing run, labelled by overlap with annotations and
split into train / validation / test *grouped* by site, deployment, device, day or recording
(no group in two splits), stratified by label, reproducible for a seed.

A clip ``[offset, offset + length)`` of a recording gets label L when an annotation with label
L overlaps it by at least ``min_overlap`` × the shorter of the clip and the annotation (so a
short call inside a long clip counts, and a long annotation covering a clip counts). Clips with
no label are left out, or labelled ``background`` when asked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fieldkit.catalogue import labels as label_rows
from fieldkit.catalogue import runs as run_rows
from fieldkit.catalogue.records import AnnotationSpan
from fieldkit.curate.splits import grouped_split, split_manifest_hash
from fieldkit.errors import ConfigError, ValidationError
from fieldkit.store.regions import read_layout
from fieldkit.store.zarr_store import read_variables

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["DatasetRequest", "create_dataset", "SPLIT_KEYS", "clip_labels"]

SPLIT_KEYS = ("site", "deployment", "device", "day", "recording")


@dataclass(frozen=True)
class DatasetRequest:
    name: str
    run_id: int
    labels: tuple[str, ...] = ()
    min_overlap: float = 0.5
    background: str | None = None
    split_by: str = "site"
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    single_label: bool = False

    def __post_init__(self) -> None:
        if self.split_by not in SPLIT_KEYS:
            raise ConfigError(f"--split-by {self.split_by!r} is not one of {', '.join(SPLIT_KEYS)}.")
        if not 0 < self.min_overlap <= 1:
            raise ConfigError(f"--min-overlap {self.min_overlap} must be in (0, 1].")


def clip_labels(offset_s: float, length_s: float, annotations: list[AnnotationSpan], min_overlap: float,
                single: bool = False) -> list[str]:
    """Labels of annotations overlapping ``[offset_s, offset_s + length_s)`` enough (see module doc);
    with ``single``, only the label that overlaps the clip longest (ties: alphabetical)."""
    end = offset_s + length_s
    overlaps: dict[str, float] = {}
    for a in annotations:
        overlap = min(end, a.end_s) - max(offset_s, a.begin_s)
        needed = min_overlap * min(length_s, max(a.end_s - a.begin_s, 1e-9))
        if overlap > 0 and overlap >= needed - 1e-9:
            overlaps[a.label] = max(overlap, overlaps.get(a.label, 0.0))
    if single and overlaps:
        return [min(overlaps, key=lambda label: (-overlaps[label], label))]
    return sorted(overlaps)


def _clips(store: Any) -> dict[str, Any]:
    clips: dict[str, Any] = read_variables(
        store, ("recording_id", "offset_s", "start_time", "site", "deployment", "valid_samples"))
    clips["rate"] = read_layout(store).sample_rate_hz
    return clips


def _labelled(clips: dict, annotations: dict[int, list[AnnotationSpan]], req: DatasetRequest) -> list[dict[str, Any]]:
    items = []
    for index, rec in enumerate(clips["recording_id"]):
        if rec < 0:
            continue
        real_s = clips["valid_samples"][index] / clips["rate"]
        anns = [a for a in annotations.get(int(rec), []) if not req.labels or a.label in req.labels]
        labels = clip_labels(float(clips["offset_s"][index]), real_s, anns, req.min_overlap, req.single_label)
        if not labels and req.background:
            labels = [req.background]
        if labels:
            items.append({"clip_index": index, "recording_id": int(rec), "labels": labels})
    return items


def _group(item: dict, clips: dict, devices: dict[int, str], key: str) -> str:
    i = item["clip_index"]
    if key == "day":
        start = clips["start_time"][i]
        return f"{clips['site'][i]}/{str(start)[:10] if not np.isnat(start) else 'unknown-day'}"
    return {"site": lambda: str(clips["site"][i]), "deployment": lambda: f"{clips['site'][i]}/{clips['deployment'][i]}",
            "device": lambda: devices.get(item["recording_id"], "unknown"),
            "recording": lambda: str(item["recording_id"])}[key]()


def create_dataset(ws: Workspace, req: DatasetRequest) -> dict[str, Any]:
    """Label, split and save a dataset; returns its summary (counts per split and label, hash)."""
    with ws.catalogue.read() as s:
        run = run_rows.get_run(s, req.run_id)
        clips = _clips(ws.open_run_store(run.store_path, read_only=True))
        rec_ids = sorted({int(r) for r in clips["recording_id"] if r >= 0})
        annotations = label_rows.annotations_for(s, rec_ids)
        devices = label_rows.recording_devices(s, rec_ids)
    if run.state != "complete":
        raise ValidationError(f"run {req.run_id} is {run.state}; a dataset needs a complete run.",
                              hint=f"Finish it with 'fieldkit process WORKFLOW --resume {req.run_id}'.")
    items = _labelled(clips, annotations, req)
    if not items:
        raise ValidationError(f"no clip of run {req.run_id} has a label (annotations on {len(annotations)} of "
                              f"{len(rec_ids)} recordings).", hint="Import annotations, or pass --background LABEL.")
    groups = [_group(i, clips, devices, req.split_by) for i in items]
    splits = grouped_split([i["labels"] for i in items], groups, req.ratios, req.seed, group_name=req.split_by)
    for item, split in zip(items, splits):
        item["split"] = split
    digest = split_manifest_hash([(f"{req.run_id}:{i['clip_index']}", i["split"]) for i in items])
    params = {"split_by": req.split_by, "ratios": list(req.ratios), "seed": req.seed, "min_overlap": req.min_overlap,
              "labels": list(req.labels), "background": req.background, "groups": len(set(groups)),
              "single_label": req.single_label}
    with ws.catalogue.write() as s:
        version = label_rows.next_dataset_version(s, req.name)
        dataset_id = label_rows.insert_dataset(s, name=req.name, version=version, run_id=req.run_id, params=params,
                                               manifest_hash=digest, items=items)
    return _summary(dataset_id, req, version, digest, items, groups)


def _summary(dataset_id, req, version, digest, items, groups) -> dict[str, Any]:
    per_split: dict[str, Counter] = {}
    for item in items:
        per_split.setdefault(item["split"], Counter()).update(item["labels"])
    group_splits = {}
    for g, item in zip(groups, items):
        group_splits.setdefault(g, set()).add(item["split"])
    return {"id": dataset_id, "name": req.name, "version": version, "run_id": req.run_id, "clips": len(items),
            "split_by": req.split_by, "groups": len(group_splits), "manifest_hash": digest, "seed": req.seed,
            "splits": {k: sum(1 for i in items if i["split"] == k) for k in ("train", "validation", "test")},
            "label_counts": {k: dict(sorted(v.items())) for k, v in sorted(per_split.items())},
            "leaking_groups": sorted(g for g, s in group_splits.items() if len(s) > 1)}
