"""Annotations, datasets and lineage: the catalogue side of the ML handoff."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldkit.catalogue.models import (
    Annotation,
    Card,
    Dataset,
    DatasetItem,
    Deployment,
    Device,
    Export,
    IngestSession,
    ProcessingRun,
    Recording,
    Site,
    SourceFile,
)
from fieldkit.catalogue.records import iso_utc
from fieldkit.catalogue.records import (
    AnnotationOut,
    AnnotationSpan,
    CardSighting,
    DatasetDetail,
    DatasetItemRow,
    DatasetRow,
    LabelCount,
    MatchableRecording,
    RecordingLineage,
    RecordingSpecies,
)
from fieldkit.errors import NotFoundError

__all__ = ["recordings_for_matching", "replace_annotations", "annotations_for", "annotation_counts",
           "next_dataset_version", "insert_dataset", "get_dataset", "list_datasets", "recording_lineage",
           "recording_devices", "insert_export", "annotations_out", "guano_species"]


def recordings_for_matching(session: Session) -> list[MatchableRecording]:
    """Every recording with the names it was seen under on cards (for matching annotation files)."""
    names: dict[int, set[str]] = defaultdict(set)
    for rec_id, path in session.execute(sa.select(SourceFile.recording_id, SourceFile.display_path)
                                        .where(SourceFile.recording_id.is_not(None))):
        names[rec_id].add(path)
    rows = session.execute(sa.select(Recording.id, Recording.sha256, Recording.archive_path, Recording.duration_s,
                                     Recording.status)).all()
    return [MatchableRecording(id=i, sha256=h, archive_path=p, duration_s=d, status=st,
                               source_paths=tuple(sorted(names[i])))
            for i, h, p, d, st in rows]


def replace_annotations(session: Session, recording_id: int, source_file: str, rows: list[Mapping[str, Any]]) -> int:
    """Annotations of one file for one recording; re-importing the same file replaces them."""
    session.execute(sa.delete(Annotation).where(Annotation.recording_id == recording_id,
                                                Annotation.source_file == source_file))
    if rows:
        session.execute(sa.insert(Annotation), [{"recording_id": recording_id, "source_file": source_file, **r}
                                                for r in rows])
    return len(rows)


def annotations_for(session: Session, recording_ids: list[int]) -> dict[int, list[AnnotationSpan]]:
    out: dict[int, list[AnnotationSpan]] = defaultdict(list)
    stmt = sa.select(Annotation).where(Annotation.recording_id.in_(recording_ids)).order_by(Annotation.begin_s)
    for a in session.scalars(stmt):
        out[a.recording_id].append(AnnotationSpan(begin_s=a.begin_s, end_s=a.end_s, label=a.label,
                                                  low_hz=a.low_hz, high_hz=a.high_hz))
    return out


def _score(extra: dict[str, Any] | None) -> float | None:
    value = (extra or {}).get("confidence")
    return float(value) if isinstance(value, (int, float)) else None


def annotations_out(session: Session, labels: tuple[str, ...] = (),
                    recording_ids: tuple[int, ...] = ()) -> list[AnnotationOut]:
    """Annotations with their recording's hash and archive path, by recording then time.

    ``labels`` / ``recording_ids`` restrict the selection when not empty.
    """
    stmt = (sa.select(Annotation, Recording.sha256, Recording.archive_path)
            .join(Recording, Recording.id == Annotation.recording_id)
            .order_by(Annotation.recording_id, Annotation.begin_s, Annotation.end_s, Annotation.label))
    if labels:
        stmt = stmt.where(Annotation.label.in_(labels))
    if recording_ids:
        stmt = stmt.where(Annotation.recording_id.in_(recording_ids))
    return [AnnotationOut(recording_id=a.recording_id, recording_sha256=sha, archive_path=path,
                          begin_s=a.begin_s, end_s=a.end_s, label=a.label, low_hz=a.low_hz,
                          high_hz=a.high_hz, channel=a.channel, confidence=_score(a.extra),
                          source_file=a.source_file)
            for a, sha, path in session.execute(stmt)]


def guano_species(session: Session) -> list[RecordingSpecies]:
    """Recordings whose GUANO metadata names a species (``Species Manual ID`` / ``Species Auto ID``)."""
    out = []
    stmt = sa.select(Recording.id, Recording.archive_path, Recording.duration_s, Recording.status,
                     Recording.metadata_).order_by(Recording.id)
    for rec_id, path, duration, status, meta in session.execute(stmt):
        fields = (((meta or {}).get("raw") or {}).get("guano") or {}).get("fields") or {}
        manual = (fields.get("Species Manual ID") or "").strip() or None
        auto = (fields.get("Species Auto ID") or "").strip() or None
        if manual or auto:
            out.append(RecordingSpecies(recording_id=rec_id, archive_path=path, duration_s=duration,
                                        status=status, manual_id=manual, auto_id=auto))
    return out


def annotation_counts(session: Session) -> list[LabelCount]:
    stmt = sa.select(Annotation.label, sa.func.count(), sa.func.count(sa.distinct(Annotation.recording_id))) \
        .group_by(Annotation.label).order_by(Annotation.label)
    return [LabelCount(label=label, annotations=n, recordings=r) for label, n, r in session.execute(stmt)]


def next_dataset_version(session: Session, name: str) -> int:
    return (session.scalar(sa.select(sa.func.max(Dataset.version)).where(Dataset.name == name)) or 0) + 1


def insert_dataset(session: Session, *, name: str, version: int, run_id: int, params: dict, manifest_hash: str,
                   items: list[Mapping[str, Any]]) -> int:
    row = Dataset(name=name, version=version, run_id=run_id, params=params, manifest_hash=manifest_hash)
    session.add(row)
    session.flush()
    session.execute(sa.insert(DatasetItem), [{"dataset_id": row.id, **i} for i in items])
    return row.id


def _dataset_row(session: Session, name: str, version: int | None) -> Dataset:
    stmt = sa.select(Dataset).where(Dataset.name == name)
    stmt = stmt.where(Dataset.version == version) if version else stmt.order_by(Dataset.version.desc())
    row = session.scalars(stmt).first()
    if row is None:
        known = sorted({n for n in session.scalars(sa.select(Dataset.name))})
        raise NotFoundError(f"no dataset {name!r}{f' version {version}' if version else ''} in the catalogue "
                            f"(datasets: {', '.join(known) or 'none'}).", hint="Create it with 'fieldkit dataset create'.")
    return row


def get_dataset(session: Session, name: str, version: int | None = None) -> DatasetDetail:
    row = _dataset_row(session, name, version)
    items = session.execute(
        sa.select(DatasetItem.clip_index, DatasetItem.recording_id, DatasetItem.labels, DatasetItem.split,
                  Recording.sha256).join(Recording, DatasetItem.recording_id == Recording.id)
        .where(DatasetItem.dataset_id == row.id).order_by(DatasetItem.clip_index)).all()
    run = session.get(ProcessingRun, row.run_id)
    return DatasetDetail(
        id=row.id, name=row.name, version=row.version, run_id=row.run_id, params=row.params,
        manifest_hash=row.manifest_hash, created_at=iso_utc(row.created_at), store_path=run.store_path,
        workflow=run.workflow, versions=run.versions, params_hash=run.params_hash,
        items=tuple(DatasetItemRow(clip_id=c, recording_id=r, labels=tuple(lab), split=sp, recording_sha256=h)
                    for c, r, lab, sp, h in items))


def list_datasets(session: Session) -> list[DatasetRow]:
    counts = dict(session.execute(sa.select(DatasetItem.dataset_id, sa.func.count()).group_by(DatasetItem.dataset_id)).all())
    return [DatasetRow(id=d.id, name=d.name, version=d.version, run_id=d.run_id, clips=counts.get(d.id, 0),
                       split_by=d.params.get("split_by"), manifest_hash=d.manifest_hash,
                       created_at=iso_utc(d.created_at))
            for d in session.scalars(sa.select(Dataset).order_by(Dataset.name, Dataset.version))]


def recording_lineage(session: Session, recording_ids: list[int]) -> dict[int, RecordingLineage]:
    """Recording → archive file → every card sighting (card, ingest session, card path, when)."""
    recs = session.execute(
        sa.select(Recording, Deployment.name, Site.name).outerjoin(Deployment, Recording.deployment_id == Deployment.id)
        .outerjoin(Site, Deployment.site_id == Site.id).where(Recording.id.in_(recording_ids))).all()
    sources: dict[int, list[CardSighting]] = defaultdict(list)
    sightings = session.execute(
        sa.select(SourceFile.recording_id, SourceFile.display_path, SourceFile.state, Card.identity,
                  IngestSession.id, IngestSession.started_at, IngestSession.source_root)
        .join(IngestSession, SourceFile.session_id == IngestSession.id).join(Card, IngestSession.card_id == Card.id)
        .where(SourceFile.recording_id.in_(recording_ids)).order_by(SourceFile.id)).all()
    for rec_id, path, state, card, session_id, started, root in sightings:
        sources[rec_id].append(CardSighting(card=card, ingest_session=session_id, card_path=path, state=state,
                                            card_root=root, ingested_at=iso_utc(started)))
    return {r.id: RecordingLineage(recording_id=r.id, sha256=r.sha256, archive_path=r.archive_path, status=r.status,
                                   start_time_utc=iso_utc(r.start_time_utc), time_source=r.time_source, site=site,
                                   deployment=dep, sources=tuple(sources[r.id])) for r, dep, site in recs}


def recording_devices(session: Session, recording_ids: list[int]) -> dict[int, str]:
    stmt = sa.select(Recording.id, Device.make, Device.model, Device.serial).outerjoin(Device) \
        .where(Recording.id.in_(recording_ids))
    return {i: "/".join(x or "" for x in (make, model, serial)) or "unknown" for i, make, model, serial in session.execute(stmt)}


def insert_export(session: Session, *, dataset_id: int, fmt: str, path: str, files: dict) -> int:
    row = Export(dataset_id=dataset_id, format=fmt, path=path, files=files)
    session.add(row)
    session.flush()
    return row.id
