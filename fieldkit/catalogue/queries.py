"""Read-side queries: typed records (:mod:`fieldkit.catalogue.records`), ready for JSON via ``to_dict``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldkit.catalogue import listing
from fieldkit.catalogue.listing import RecordingFilter
from fieldkit.catalogue.models import (
    Card,
    Deployment,
    IngestSession,
    Recording,
    Site,
    SourceFile,
)
from fieldkit.catalogue.records import (
    DeploymentRow,
    RecordingRow,
    ScopedRecording,
    SessionContext,
    SessionFileRow,
    SessionRow,
    SiteRow,
    iso_utc,
)

__all__ = ["runner", "list_sites", "list_deployments", "list_recordings", "list_sessions",
           "source_file_keys", "session_files", "session_context",
           "recordings_in_scope"]


def list_sites(session: Session) -> list[SiteRow]:
    counts = dict(
        session.execute(sa.select(Deployment.site_id, sa.func.count()).group_by(Deployment.site_id)).all()
    )
    rows = session.scalars(sa.select(Site).order_by(Site.name)).all()
    return [
        SiteRow(id=s.id, name=s.name, description=s.description, latitude=s.latitude,
                longitude=s.longitude, deployments=counts.get(s.id, 0))
        for s in rows
    ]


def list_deployments(session: Session, *, site: str | None = None) -> list[DeploymentRow]:
    stmt = sa.select(Deployment, Site.name).join(Site).order_by(Site.name, Deployment.name)
    if site is not None:
        stmt = stmt.where(Site.name == site)
    counts = dict(
        session.execute(
            sa.select(Recording.deployment_id, sa.func.count()).group_by(Recording.deployment_id)
        ).all()
    )
    return [
        DeploymentRow(id=d.id, name=d.name, site=site_name, timezone=d.timezone,
                      start_utc=iso_utc(d.start_utc), end_utc=iso_utc(d.end_utc),
                      recordings=counts.get(d.id, 0))
        for d, site_name in session.execute(stmt).all()
    ]


def list_recordings(session: Session, filters: RecordingFilter = RecordingFilter()) -> list[RecordingRow]:
    """Recordings with their deployment, site, device and every card path they were seen at.

    The listing's one definition is SQL text in :mod:`fieldkit.catalogue.listing`, run here through
    the session (any backend) and by the CLI through ``sqlite3`` (no SQLAlchemy import).
    """
    return listing.list_recordings(runner(session), filters)


def runner(session: Session) -> listing.Runner:
    """The :data:`~fieldkit.catalogue.listing.Runner` of a session: SQL text with ``:name`` parameters."""

    def run(sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return list(session.execute(sa.text(sql), dict(params)).mappings())

    return run


def list_sessions(session: Session, *, deployment: str | None = None) -> list[SessionRow]:
    stmt = (
        sa.select(IngestSession, Card.identity, Deployment.name, Site.name)
        .join(Card).join(Deployment, IngestSession.deployment_id == Deployment.id)
        .join(Site, Deployment.site_id == Site.id)
        .order_by(IngestSession.id)
    )
    if deployment is not None:
        stmt = stmt.where(Deployment.name == deployment)
    return [
        SessionRow(id=s.id, card=card, site=site, deployment=dep, state=s.state,
                   source_root=s.source_root, files_total=s.files_total, bytes_total=s.bytes_total,
                   counts=s.counts or {}, safe_to_erase=s.safe_to_erase,
                   resumed_from=s.resumed_from_id, started_at=iso_utc(s.started_at),
                   finished_at=iso_utc(s.finished_at), message=s.message)
        for s, card, dep, site in session.execute(stmt).all()
    ]


def source_file_keys(session: Session, session_id: int) -> set[tuple[bytes, int]]:
    """(raw path, size) of every file inventoried in an ingest session."""
    stmt = sa.select(SourceFile.raw_path, SourceFile.size_bytes).where(SourceFile.session_id == session_id)
    return {(bytes(p), n) for p, n in session.execute(stmt).all()}


def session_files(session: Session, session_id: int, *, duplicate_status: bool = False) -> list[SessionFileRow]:
    """Every inventoried file of an ingest session with its outcome and its recording's status.

    The status is given for the files this session archived (``verified``); a ``duplicate``
    was judged when its content was first archived, so it gets one only with ``duplicate_status``
    (a re-ingest reports what the card holds).
    """
    shown = ("verified", "duplicate") if duplicate_status else ("verified",)
    stmt = (
        sa.select(SourceFile, Recording.archive_path, Recording.status, Recording.status_message)
        .outerjoin(Recording, SourceFile.recording_id == Recording.id)
        .where(SourceFile.session_id == session_id)
        .order_by(SourceFile.id)
    )
    return [
        SessionFileRow(raw_path=bytes(f.raw_path), path=f.display_path, size_bytes=f.size_bytes, state=f.state,
                       reason=f.reason, message=f.message or note, sha256=f.sha256, archive_path=path,
                       recording_id=f.recording_id, status=status if f.state in shown else None)
        for f, path, status, note in session.execute(stmt).all()
    ]


def session_context(session: Session, session_id: int) -> SessionContext:
    """Site, deployment and time zone of an ingest session."""
    row = session.execute(
        sa.select(IngestSession.deployment_id, Deployment.name, Deployment.timezone, Site.name)
        .join(Deployment, IngestSession.deployment_id == Deployment.id)
        .join(Site, Deployment.site_id == Site.id)
        .where(IngestSession.id == session_id)
    ).one()
    return SessionContext(deployment_id=row[0], deployment=row[1], timezone=row[2], site=row[3])


def recordings_in_scope(session: Session, *, sites: tuple[str, ...] = (),
                        deployments: tuple[str, ...] = ()) -> list[ScopedRecording]:
    """Every recording of the given sites and deployments (all when empty), sidecars aside, in
    time order (undated last): what a run's selection chooses from and accounts for.

    Parameters
    ----------
    sites, deployments
        Names; an empty tuple means every one.

    Returns
    -------
    list of ScopedRecording
        Ordered by start time (UTC), recordings without one last, then by id.
    """
    stmt = (
        sa.select(Recording, Deployment.name, Deployment.timezone, Site.name)
        .join(Deployment, Recording.deployment_id == Deployment.id)
        .join(Site, Deployment.site_id == Site.id)
        .where(Recording.status != "sidecar")  # a card's text files are not recordings
        .order_by(Recording.start_time_utc.is_(None), Recording.start_time_utc, Recording.id)
    )
    for column, values in ((Site.name, sites), (Deployment.name, deployments)):
        if values:
            stmt = stmt.where(column.in_(values))
    return [ScopedRecording(id=r.id, archive_path=r.archive_path, status=r.status, status_reason=r.reason,
                            subtype=r.subtype, sample_rate_hz=r.sample_rate_hz, channels=r.channels or 1,
                            frames_present=r.frames_present, duration_s=r.duration_s,
                            start_time_utc=r.start_time_utc, site=site, deployment=dep, timezone=tz)
            for r, dep, tz, site in session.execute(stmt).all()]
