"""Layer 3: from a dataset in the catalogue to an export directory (and the export row).

This is the catalogue side of the handoff: it gathers the dataset's clips, labels and splits,
the run's parameters and versions, a QC summary and the full lineage of every clip, as a plain
:class:`~fieldkit.export.request.ExportInput`, and hands it to :mod:`fieldkit.export`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fieldkit.catalogue import labels as label_rows
from fieldkit.catalogue import queries
from fieldkit.catalogue.records import DatasetDetail, DatasetItemRow, RecordingLineage
from fieldkit.errors import ExportError
from fieldkit.export.exporter import ExportResult, export_dataset, export_to_root
from fieldkit.export.request import ExportInput
from fieldkit.model.tables import ExportIndex, validate
from fieldkit.store.zarr_store import read_variables

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["export_input", "export_catalogued_dataset"]


def _qc_summary(session, recording_ids: set[int]) -> dict[str, Any]:
    recs = queries.list_recordings(session)
    used = [r for r in recs if r.id in recording_ids]
    return {"recordings_used": len(used),
            "recordings_by_status": dict(Counter(r.status for r in recs)),
            "recordings_with_clipping": sum(1 for r in used if (r.clipped_samples or 0) > 0),
            "quarantined": [{"file": r.archive_path, "reason": r.reason} for r in recs if r.status == "quarantined"],
            "truncated_used": [r.archive_path for r in used if r.status == "truncated"]}


def _lineage(items: tuple[DatasetItemRow, ...], recs: dict[int, RecordingLineage],
             dataset: DatasetDetail) -> list[dict[str, Any]]:
    out = []
    for item in items:
        rec = recs[item.recording_id]
        out.append({"clip_id": item.clip_id, "recording_sha256": rec.sha256, "archive_path": rec.archive_path,
                    "recording_status": rec.status, "start_time_utc": rec.start_time_utc,
                    "cards": sorted({s.card for s in rec.sources}),
                    "ingest_sessions": sorted({s.ingest_session for s in rec.sources}),
                    "source_paths": [s.card_path for s in rec.sources],
                    "run_id": dataset.run_id, "params_hash": dataset.params_hash})
    return out


def _index(items: tuple[DatasetItemRow, ...], coords: dict[str, np.ndarray]) -> pd.DataFrame:
    ids = np.array([i.clip_id for i in items], dtype=np.int64)
    return pd.DataFrame({
        "clip_id": ids, "recording_id": [i.recording_id for i in items],
        "recording_sha256": [i.recording_sha256 for i in items],
        "start_time": pd.to_datetime(coords["start_time"][ids]).tz_localize("UTC"),
        "offset_s": coords["offset_s"][ids], "site": [str(x) for x in coords["site"][ids]],
        "deployment": [str(x) for x in coords["deployment"][ids]], "labels": [list(i.labels) for i in items],
        "split": [i.split for i in items]})


def export_input(ws: Workspace, name: str, version: int | None = None, *, licence: str = "CC-BY-4.0",
                 description: str | None = None, **options: Any) -> tuple[ExportInput, int]:
    """The plain description of a dataset version, and the dataset's catalogue id.

    ``options`` are :class:`ExportInput`'s export options (``audio``, ``shard_size``, ``creator``,
    ``url``, ``cite_as``); the archive folder is the workspace's.
    """
    with ws.catalogue.read() as s:
        dataset = label_rows.get_dataset(s, name, version)
        rec_ids = sorted({i.recording_id for i in dataset.items})
        recs = label_rows.recording_lineage(s, rec_ids)
        qc = _qc_summary(s, set(rec_ids))
    store_root = ws.store_root(dataset.store_path)
    store = store_root.local_path if store_root.is_local else store_root
    coords = read_variables(ws.store_location(dataset.store_path), ("start_time", "offset_s", "site", "deployment"))
    params = dataset.params
    labels = sorted({lab for i in dataset.items for lab in i.labels})
    text = description or (f"Clips of processing run {dataset.run_id} ({dataset.workflow.get('name')}) from "
                           f"{len(rec_ids)} recordings, labelled from annotations by overlap.")
    index = _index(dataset.items, coords)
    validate(ExportIndex, index.assign(labels=index["labels"].map(";".join)))
    inp = ExportInput(name=name, version=dataset.version, description=text, licence=licence, store_path=store,
                      index=index, label_names=tuple(labels), split_by=params["split_by"],
                      seed=params["seed"], ratios=tuple(params["ratios"]), manifest_hash=dataset.manifest_hash,
                      workflow=dataset.workflow, versions=dataset.versions, qc_summary=qc,
                      lineage=_lineage(dataset.items, recs, dataset),
                      archive_root=ws.paths.archive if ws.roots.archive.is_local else ws.roots.archive,
                      **options)
    return inp, dataset.id


def export_catalogued_dataset(ws: Workspace, name: str, *, fmt: str = "zarr", out: Path | None = None, version: int | None = None,
                              licence: str | None = None, overwrite: bool = False, augment: str | None = None,
                              augment_seed: int | None = None, progress: Any = None, **options: Any) -> ExportResult:
    """Export a dataset version and record the export in the catalogue.

    ``augment`` is an ``--augment`` SPEC (:mod:`fieldkit.export.augment`), seeded with
    ``augment_seed`` (default: the dataset's split seed); ``progress`` follows its work;
    ``options``: see :func:`export_input`. ``licence``, ``creator``, ``url`` and ``cite_as`` left
    at None come from ``[export]`` of ``fieldkit.toml``.
    """
    spec = None
    if augment is not None:  # parsed first: a bad SPEC fails before the catalogue is read
        from fieldkit.export.augment import parse_augment_spec
        spec = parse_augment_spec(augment).with_progress(progress)
    defaults = ws.settings.export
    for key in ("creator", "url", "cite_as"):
        if options.get(key) is None:
            options[key] = getattr(defaults, key)
    inp, dataset_id = export_input(ws, name, version, licence=licence or defaults.licence, **options)
    if spec is not None:
        spec = spec.with_seed(inp.seed if augment_seed is None else augment_seed)
    if out is None and not ws.roots.exports.is_local:  # uploaded create-only, never replaced
        if overwrite:
            raise ExportError(f"an export on object storage ({ws.roots.exports.uri()}) is never replaced; "
                              "overwrite only applies to a local folder.",
                              hint="Export a new dataset version, or give a local folder with --out.")
        result = export_to_root(inp, ws.roots.exports, f"{inp.slug}-{fmt}", format=fmt, augment=spec)
        where = str(result.out_dir)
    else:
        target = Path(out) if out is not None else ws.paths.exports / f"{inp.slug}-{fmt}"
        result = export_dataset(inp, target, format=fmt, overwrite=overwrite, augment=spec)
        where = ws.relative(Path(result.out_dir))
    with ws.catalogue.write() as s:
        label_rows.insert_export(s, dataset_id=dataset_id, fmt=fmt, path=where, files=result.files)
    return result
