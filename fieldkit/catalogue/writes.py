"""Write-side operations used by the services. Each takes an open writer session and plain data.

Services (layer 3) call these inside ``Catalogue.write()``; they never build SQL themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldkit.catalogue.base import utcnow
from fieldkit.catalogue.models import (
    Card,
    Deployment,
    Device,
    IngestSession,
    Manifest,
    Recording,
    Site,
    SourceFile,
)
from fieldkit.catalogue.records import ArchivedRecording, CardSessionRow
from fieldkit.errors import IngestError

__all__ = [
    "ensure_site", "ensure_deployment", "ensure_device", "ensure_card", "create_session",
    "update_session", "card_sessions", "insert_inventory", "settled_paths", "recording_by_sha",
    "recordings_by_sha", "insert_recordings", "settle_source_files", "archive_paths_taken",
    "archived_recordings", "manifest_recorded", "next_manifest_sequence", "insert_manifest", "session_counts",
]


def ensure_site(session: Session, name: str) -> int:
    site_id = session.scalar(sa.select(Site.id).where(Site.name == name))
    if site_id is None:
        site = Site(name=name)
        session.add(site)
        session.flush()
        site_id = site.id
    return site_id


def ensure_deployment(session: Session, site_id: int, name: str, timezone: str | None,
                      default_timezone: str) -> tuple[int, str]:
    """The deployment's id and time zone; a zone that contradicts the stored one is an error."""
    dep = session.scalar(sa.select(Deployment).where(Deployment.site_id == site_id, Deployment.name == name))
    if dep is None:
        dep = Deployment(site_id=site_id, name=name, timezone=timezone or default_timezone)
        session.add(dep)
        session.flush()
    elif timezone is not None and timezone != dep.timezone:
        raise IngestError(
            f"deployment {name!r} is recorded with time zone {dep.timezone!r}, but --timezone "
            f"{timezone!r} was given; changing it would re-interpret every recording already ingested.",
            hint=f"Drop --timezone to keep {dep.timezone!r}, or use a new deployment name.",
        )
    return dep.id, dep.timezone


def ensure_device(session: Session, make: str | None, model: str | None, serial: str | None,
                  firmware: str | None = None) -> int | None:
    if not any((make, model, serial)):
        return None
    key = (make or "", model or "", serial or "")
    stmt = sa.select(Device).where(Device.make == key[0], Device.model == key[1], Device.serial == key[2])
    device = session.scalar(stmt)
    if device is None:
        device = Device(make=key[0], model=key[1], serial=key[2], firmware=firmware)
        session.add(device)
        session.flush()
    elif firmware and device.firmware != firmware:
        device.firmware = firmware
    return device.id


def ensure_card(session: Session, identity: str, **fields: Any) -> int:
    card = session.scalar(sa.select(Card).where(Card.identity == identity))
    if card is None:
        card = Card(identity=identity, **fields)
        session.add(card)
        session.flush()
    return card.id


def create_session(session: Session, **fields: Any) -> int:
    row = IngestSession(**fields)
    session.add(row)
    session.flush()
    return row.id


def update_session(session: Session, session_id: int, **fields: Any) -> None:
    session.execute(sa.update(IngestSession).where(IngestSession.id == session_id).values(**fields))


def card_sessions(session: Session, card_id: int) -> list[CardSessionRow]:
    """Sessions of a card, newest first."""
    rows = session.scalars(
        sa.select(IngestSession).where(IngestSession.card_id == card_id).order_by(IngestSession.id.desc())
    ).all()
    return [CardSessionRow(id=r.id, state=r.state, fingerprint=r.inventory_fingerprint,
                           deployment_id=r.deployment_id, files_total=r.files_total) for r in rows]


def insert_inventory(session: Session, session_id: int, files: Iterable[Mapping[str, Any]]) -> None:
    """One ``pending`` (or ``ignored``) row per inventoried file; existing rows are kept."""
    known = set(session.scalars(sa.select(SourceFile.raw_path).where(SourceFile.session_id == session_id)))
    rows = [{"session_id": session_id, **f} for f in files if f["raw_path"] not in known]
    if rows:
        session.execute(sa.insert(SourceFile), rows)


def settled_paths(session: Session, session_id: int) -> dict[bytes, str]:
    """Raw paths of this session that are done (verified, duplicate or ignored) → state."""
    stmt = sa.select(SourceFile.raw_path, SourceFile.state).where(
        SourceFile.session_id == session_id, SourceFile.state.in_(("verified", "duplicate", "ignored")))
    return {bytes(p): s for p, s in session.execute(stmt).all()}


def recording_by_sha(session: Session, sha256: str) -> tuple[int, str] | None:
    row = session.execute(sa.select(Recording.id, Recording.archive_path).where(Recording.sha256 == sha256)).first()
    return (row[0], row[1]) if row else None


def recordings_by_sha(session: Session, hashes: list[str]) -> dict[str, tuple[int, str]]:
    """sha256 → (recording id, archive path) for the hashes already catalogued."""
    if not hashes:
        return {}
    stmt = sa.select(Recording.sha256, Recording.id, Recording.archive_path).where(Recording.sha256.in_(set(hashes)))
    return {h: (i, p) for h, i, p in session.execute(stmt).all()}


def insert_recordings(session: Session, rows: list[Mapping[str, Any]]) -> dict[str, tuple[int, str]]:
    """Insert many recordings in one statement; returns sha256 → (id, archive path)."""
    if not rows:
        return {}
    values = []
    for row in rows:
        row = dict(row)
        row["metadata"] = row.pop("metadata", None)
        row.setdefault("created_at", utcnow())
        values.append(row)
    keys = set().union(*values)  # executemany needs every row to name the same columns
    values = [{k: v.get(k) for k in keys} for v in values]
    table = Recording.__table__
    stmt = sa.insert(table).returning(table.c.id, table.c.sha256, table.c.archive_path)
    result = session.connection().execute(stmt, values)
    return {h: (i, p) for i, h, p in result.all()}


def settle_source_files(session: Session, session_id: int, rows: list[Mapping[str, Any]]) -> None:
    """Set the outcome of many inventoried files of one session in one executemany."""
    if not rows:
        return
    table = SourceFile.__table__
    stmt = (sa.update(table)
            .where(table.c.session_id == sa.bindparam("b_session"), table.c.raw_path == sa.bindparam("b_raw"))
            .values(state=sa.bindparam("state"), sha256=sa.bindparam("sha256"),
                    recording_id=sa.bindparam("recording_id"), reason=sa.bindparam("reason"),
                    message=sa.bindparam("message")))
    params = [{"b_session": session_id, "b_raw": r["raw_path"], "state": r["state"], "sha256": r["sha256"],
               "recording_id": r["recording_id"], "reason": r["reason"], "message": r["message"]} for r in rows]
    session.connection().execute(stmt, params)


def archive_paths_taken(session: Session, paths: list[str]) -> set[str]:
    """The casefolded paths among ``paths`` already used by a recording (case-insensitively)."""
    if not paths:
        return set()
    lowered = {p.lower() for p in paths}
    stmt = sa.select(sa.func.lower(Recording.archive_path)).where(sa.func.lower(Recording.archive_path).in_(lowered))
    return {p.casefold() for p in session.scalars(stmt)}



def session_counts(session: Session, session_id: int) -> dict[str, int]:
    stmt = (sa.select(SourceFile.state, sa.func.count()).where(SourceFile.session_id == session_id)
            .group_by(SourceFile.state))
    return {state: n for state, n in session.execute(stmt).all()}


def archived_recordings(session: Session) -> list[ArchivedRecording]:
    stmt = sa.select(Recording.id, Recording.sha256, Recording.archive_path, Recording.size_bytes)
    return [ArchivedRecording(id=i, sha256=h, archive_path=p, size_bytes=s)
            for i, h, p, s in session.execute(stmt.order_by(Recording.id)).all()]


def manifest_recorded(session: Session, sequence: int) -> bool:
    """Whether the manifest generation ``sequence`` has its row (its natural key)."""
    return session.scalar(sa.select(Manifest.id).where(Manifest.sequence == sequence)) is not None


def next_manifest_sequence(session: Session) -> int:
    return (session.scalar(sa.select(sa.func.max(Manifest.sequence))) or 0) + 1


def insert_manifest(session: Session, *, sequence: int, kind: str, path: str, files: int, failures: int,
                    session_id: int | None = None, report: dict[str, Any] | None = None,
                    created_at: dt.datetime | None = None) -> int:
    row = Manifest(sequence=sequence, kind=kind, path=path, files=files, failures=failures,
                   session_id=session_id, report=report, created_at=created_at or utcnow())
    session.add(row)
    session.flush()
    return row.id
