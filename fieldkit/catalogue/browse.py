"""Read-side queries for browsing the catalogue (``fieldkit serve``): a filtered, sorted, paged
recordings table, counts for the overview, the runs and datasets that used a recording, exports.

Everything is done in SQL (filters, ``ORDER BY``, ``LIMIT``/``OFFSET``, ``COUNT``), so a page
costs the same on ten or ten thousand recordings; the page's rows are then built by
:func:`fieldkit.catalogue.queries.list_recordings`, the one place a :class:`RecordingRow` is made.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldkit.catalogue.models import (
    Dataset,
    DatasetItem,
    Deployment,
    Derivative,
    Device,
    Export,
    ProcessingRun,
    Recording,
    Site,
    SourceFile,
)
from fieldkit.catalogue.queries import RecordingFilter, iso_utc, list_recordings
from fieldkit.catalogue.records import DeploymentSpan, ExportRow, RecordingPage, RecordingUse, StatusCount

__all__ = ["QC_FLAGS", "SORTS", "RecordingQuery", "browse_recordings", "status_counts", "facet_values",
           "deployment_spans", "recording_uses", "list_exports"]

#: Sort keys of the recordings table and their columns (ties broken by id).
SORTS = {
    "start": Recording.start_time_utc, "id": Recording.id, "path": Recording.archive_path,
    "status": Recording.status, "rate": Recording.sample_rate_hz, "duration": Recording.duration_s,
    "size": Recording.size_bytes, "peak": Recording.peak_dbfs, "device": Device.serial,
    "deployment": Deployment.name,
}

#: QC flags a recording can be filtered by. The thresholds are for looking, not for judging:
#: half the frames below the silence threshold, a DC offset of 1 % of full scale, or two
#: seconds between the clock sources.
QC_FLAGS = {
    "clipped": Recording.clipped_samples > 0,
    "silent": Recording.silent_fraction >= 0.5,
    "dc-offset": sa.func.abs(Recording.dc_offset) >= 0.01,
    "time-discrepancy": sa.func.abs(Recording.time_discrepancy_s) >= 2.0,
    "undated": Recording.start_time_utc.is_(None),
}


@dataclass(frozen=True)
class RecordingQuery:
    """What the recordings table shows: filters (None: none), sort and page.

    ``search`` matches a part of the archive path or of a card path, or a sha256 prefix;
    ``qc`` names flags of :data:`QC_FLAGS`, all of which must hold; ``start``/``end`` bound the
    start time (UTC, end exclusive); ``page`` counts from 1.
    """

    search: str | None = None
    site: str | None = None
    deployment: str | None = None
    status: str | None = None
    device: str | None = None
    sample_rate_hz: int | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    qc: tuple[str, ...] = ()
    sort: str = "start"
    descending: bool = False
    page: int = 1
    per_page: int = 50


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search(text: str) -> sa.ColumnElement[bool]:
    pattern = _like(text)
    # One scan of the card sightings, not a correlated EXISTS per recording (3x faster on 10 000).
    on_card = sa.select(SourceFile.recording_id).where(SourceFile.display_path.ilike(pattern, escape="\\"))
    return sa.or_(Recording.archive_path.ilike(pattern, escape="\\"),
                  Recording.sha256.startswith(text.lower(), autoescape=True), Recording.id.in_(on_card))


def _conditions(q: RecordingQuery) -> list[sa.ColumnElement[bool]]:
    equal = {Site.name: q.site, Deployment.name: q.deployment, Recording.status: q.status,
             Device.serial: q.device, Recording.sample_rate_hz: q.sample_rate_hz}
    out = [column == value for column, value in equal.items() if value is not None]
    if q.start is not None:
        out.append(Recording.start_time_utc >= q.start)
    if q.end is not None:
        out.append(Recording.start_time_utc < q.end)
    if q.search:
        out.append(_search(q.search))
    out += [QC_FLAGS[flag] for flag in q.qc]
    return out


def _joined(stmt: sa.Select, q: RecordingQuery) -> sa.Select:
    """``stmt`` from the recordings, joined to only the tables ``q`` filters or sorts by."""
    site, device = q.site is not None, q.device is not None or q.sort == "device"
    stmt = stmt.select_from(Recording)
    if site or q.deployment is not None or q.sort == "deployment":
        stmt = stmt.outerjoin(Deployment, Recording.deployment_id == Deployment.id)
    if site:
        stmt = stmt.outerjoin(Site, Deployment.site_id == Site.id)
    if device:
        stmt = stmt.outerjoin(Device, Recording.device_id == Device.id)
    return stmt


def browse_recordings(session: Session, q: RecordingQuery) -> RecordingPage:
    """One page of the recordings that match ``q``, in its order, and the number that match.

    Parameters
    ----------
    session : Session
    q : RecordingQuery
        Unknown sort keys and QC flags are the caller's to refuse (:data:`SORTS`, :data:`QC_FLAGS`).

    Returns
    -------
    RecordingPage
        ``total`` matching recordings and the rows of page ``q.page`` (empty past the last page).
    """
    where = _conditions(q)
    total = session.scalar(_joined(sa.select(sa.func.count()), q).where(*where)) or 0
    column = SORTS[q.sort]
    order = [column.is_(None), column.desc() if q.descending else column.asc(),
             Recording.id.desc() if q.descending else Recording.id.asc()]
    stmt = _joined(sa.select(Recording.id), q).where(*where).order_by(*order)
    ids = list(session.scalars(stmt.limit(q.per_page).offset((max(q.page, 1) - 1) * q.per_page)))
    by_id = {r.id: r for r in list_recordings(session, RecordingFilter(ids=tuple(ids)))} if ids else {}
    return RecordingPage(total=total, page=q.page, per_page=q.per_page, rows=tuple(by_id[i] for i in ids))


def status_counts(session: Session) -> list[StatusCount]:
    """How many recordings have each status (sidecars included: they are in the archive too)."""
    stmt = sa.select(Recording.status, sa.func.count()).group_by(Recording.status).order_by(Recording.status)
    return [StatusCount(status=s, recordings=n) for s, n in session.execute(stmt).all()]


def facet_values(session: Session) -> dict[str, list]:
    """The values the recordings table's filters offer: sites, deployments, statuses, devices, rates.

    Read from the small tables (and the status index), not from a join over every recording.
    """
    def distinct(column: sa.ColumnElement) -> list:
        return [v for v in session.scalars(sa.select(column).distinct().order_by(column)) if v not in (None, "")]

    return {"site": distinct(Site.name), "deployment": distinct(Deployment.name), "status": distinct(Recording.status),
            "device": distinct(Device.serial), "sample_rate_hz": distinct(Recording.sample_rate_hz)}


def deployment_spans(session: Session) -> list[DeploymentSpan]:
    """Every dated recording with a duration (sidecars aside), by site, deployment and start time."""
    stmt = (sa.select(Site.name, Deployment.name, Recording.id, Recording.status, Recording.start_time_utc,
                      Recording.duration_s)
            .join(Deployment, Recording.deployment_id == Deployment.id).join(Site, Deployment.site_id == Site.id)
            .where(Recording.start_time_utc.is_not(None), Recording.duration_s.is_not(None),
                   Recording.status != "sidecar")
            .order_by(Site.name, Deployment.name, Recording.start_time_utc, Recording.id))
    return [DeploymentSpan(site=s, deployment=d, recording_id=i, status=st, start_time_utc=t, duration_s=float(n))
            for s, d, i, st, t, n in session.execute(stmt).all()]


def recording_uses(session: Session, recording_id: int) -> list[RecordingUse]:
    """The processing runs (with their state) and datasets (with this recording's split) that used it."""
    runs = session.execute(
        sa.select(ProcessingRun.id, ProcessingRun.name, ProcessingRun.state,
                  sa.func.sum(Derivative.clip_stop - Derivative.clip_start))
        .join(Derivative, Derivative.run_id == ProcessingRun.id).where(Derivative.recording_id == recording_id)
        .group_by(ProcessingRun.id, ProcessingRun.name, ProcessingRun.state).order_by(ProcessingRun.id)).all()
    datasets = session.execute(
        sa.select(Dataset.id, Dataset.name, Dataset.version, DatasetItem.split, sa.func.count())
        .join(DatasetItem, DatasetItem.dataset_id == Dataset.id).where(DatasetItem.recording_id == recording_id)
        .group_by(Dataset.id, Dataset.name, Dataset.version, DatasetItem.split).order_by(Dataset.id)).all()
    return ([RecordingUse(kind="run", id=i, name=n, state=s, clips=int(c or 0)) for i, n, s, c in runs]
            + [RecordingUse(kind="dataset", id=i, name=f"{n} v{v}", state=sp, clips=c) for i, n, v, sp, c in datasets])


def list_exports(session: Session) -> list[ExportRow]:
    """Every export of a dataset, newest first."""
    stmt = (sa.select(Export, Dataset.name, Dataset.version).join(Dataset, Export.dataset_id == Dataset.id)
            .order_by(Export.id.desc()))
    return [ExportRow(id=e.id, dataset=n, version=v, format=e.format, path=e.path, state=e.state,
                      created_at=iso_utc(e.created_at)) for e, n, v in session.execute(stmt).all()]
