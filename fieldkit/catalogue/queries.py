"""Read-side queries: typed records (:mod:`fieldkit.catalogue.records`), ready for JSON via ``to_dict``."""

from __future__ import annotations

import datetime as dt
import logging
import statistics
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

log = logging.getLogger(__name__)

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
    rows = session.execute(stmt).all()
    timeline = _readable_timelines(session, [d.id for d, _ in rows])
    return [
        DeploymentRow(id=d.id, name=d.name, site=site_name, timezone=d.timezone,
                      start_utc=iso_utc(d.start_utc), end_utc=iso_utc(d.end_utc),
                      recordings=counts.get(d.id, 0), **timeline.get(d.id, _NO_TIMELINE))
        for d, site_name in rows
    ]


#: A gap is an interval between the starts of consecutive recordings of one device longer than
#: this many times the deployment's median interval (a missing file, a stopped recorder).
GAP_FACTOR = 1.5
#: Overlaps shorter than this are clock jitter, not overlapping files.
OVERLAP_TOLERANCE_S = 0.5
_NO_TIMELINE: dict = {"overlaps": (), "gaps": ()}
#: Gaps and overlaps that could not be read (None: unknown, not "none found").
_UNREADABLE_TIMELINE: dict = {"overlaps": None, "gaps": None}


def _readable_timelines(session: Session, deployment_ids: list[int]) -> dict[int, dict]:
    """:func:`_timelines`, or "unknown" for every deployment when the recordings' pages cannot be
    read (a damaged catalogue, H2): the listing is a read that can still work without them.

    A savepoint keeps the session usable after the failed statement on every backend.
    """
    try:
        with session.begin_nested():
            return _timelines(session, deployment_ids)
    except sa.exc.DatabaseError as exc:
        log.warning("gaps and overlaps of the deployments could not be read (%s); the catalogue may be "
                    "damaged: see 'fieldkit db check'", exc.orig)
        return {dep: _UNREADABLE_TIMELINE for dep in deployment_ids}


def _timelines(session: Session, deployment_ids: list[int]) -> dict[int, dict]:
    """A10: overlaps and gaps between consecutive recordings of each deployment, per device.

    Computed at query time from ``start_time_utc`` and ``duration_s`` (which comes from the
    frames present, never from the schedule); sidecars and recordings without a time or a
    duration take no part. Consecutive recordings of one device overlap when the next starts
    more than :data:`OVERLAP_TOLERANCE_S` before the previous ends; a gap is a start-to-start
    interval over :data:`GAP_FACTOR` times the median interval of that device.
    """
    if not deployment_ids:
        return {}
    stmt = (sa.select(Recording.deployment_id, Recording.device_id, Recording.id,
                      Recording.start_time_utc, Recording.duration_s)
            .where(Recording.deployment_id.in_(deployment_ids), Recording.status != "sidecar",
                   Recording.start_time_utc.is_not(None), Recording.duration_s.is_not(None))
            .order_by(Recording.deployment_id, Recording.device_id, Recording.start_time_utc,
                      Recording.id))
    series: dict[tuple[int, int | None], list[tuple[int, dt.datetime, float]]] = {}
    for dep, device, rec, start, duration in session.execute(stmt).all():
        series.setdefault((dep, device), []).append((rec, start, duration))
    out: dict[int, dict] = {}
    for (dep, _device), recs in series.items():
        found = out.setdefault(dep, {"overlaps": [], "gaps": []})
        steps = [(b[1] - a[1]).total_seconds() for a, b in zip(recs, recs[1:])]
        usual = statistics.median(steps) if steps else None
        for (a_id, a_start, a_dur), (b_id, b_start, _), step in zip(recs, recs[1:], steps):
            overlap = a_dur - step
            if overlap > OVERLAP_TOLERANCE_S:
                found["overlaps"].append({"first": a_id, "second": b_id,
                                          "seconds": round(overlap, 3)})
            elif usual and step > GAP_FACTOR * usual:
                found["gaps"].append({"after": a_id, "before": b_id,
                                      "seconds": round(step - a_dur, 3),
                                      "usual_interval_s": round(usual, 3)})
    return {dep: {k: tuple(v) for k, v in found.items()} for dep, found in out.items()}


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
                            start_time_utc=r.start_time_utc, site=site, deployment=dep, timezone=tz,
                            size_bytes=r.size_bytes)
            for r, dep, tz, site in session.execute(stmt).all()]
