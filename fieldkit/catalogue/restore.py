"""The catalogue side of the archive's ledger: a session as a JSON document, and back.

:func:`session_document` is what ingest writes beside the MHL manifests when it seals a session
(``fieldkit.io.manifests.ledger``); :func:`restore_session` and :func:`restore_manifest` are
what ``fieldkit catalog rebuild`` writes into a new catalogue from those documents. Times are
ISO 8601 with microseconds, raw card paths base64, so a round trip is exact.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from fieldkit.catalogue import writes
from fieldkit.catalogue.models import Card, Deployment, IngestSession, Site, SourceFile

__all__ = [
    "database_tables",
    "deployment_for",
    "iso",
    "parse_iso",
    "restore_manifest",
    "restore_session",
    "session_document",
    "session_key",
    "shown_url",
    "sqlite_file",
]

_SESSION_FIELDS = ("state", "source_root", "inventory_fingerprint", "files_total", "bytes_total", "counts",
                   "safe_to_erase", "host", "username", "fieldkit_version", "message")
_CARD_FIELDS = ("label", "filesystem", "capacity_bytes", "recorder_hint")


def iso(value: dt.datetime | None) -> str | None:
    """UTC ISO 8601 with microseconds, or None."""
    return None if value is None else value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def parse_iso(text: str | None) -> dt.datetime | None:
    """The inverse of :func:`iso`."""
    return None if text is None else dt.datetime.fromisoformat(text)


def session_key(card: str, started_at: str) -> tuple[str, str]:
    """A session's natural key: its card's identity and its start (ids are not kept in the archive)."""
    return card, started_at


def session_document(session: Session, session_id: int, *, device_serial: str | None) -> dict[str, Any]:
    """Everything the catalogue holds about one ingest session, as a JSON-ready document.

    Parameters
    ----------
    session : Session
        An open session; read inside the transaction that seals the ingest session, so the
        document is what that transaction commits.
    session_id : int
    device_serial : str, optional
        ``--device-serial`` given to the ingest (it names the device of files that do not).

    Returns
    -------
    dict
        ``session``, ``card``, ``site``, ``deployment`` and ``files`` (one per inventoried file, in
        the catalogue's order), ``device_serial``.
    """
    earlier = aliased(IngestSession)
    earlier_card = aliased(Card)
    row = session.execute(
        sa.select(IngestSession, Card, Deployment, Site.name, earlier.started_at, earlier_card.identity)
        .join(Card, IngestSession.card_id == Card.id)
        .join(Deployment, IngestSession.deployment_id == Deployment.id)
        .join(Site, Deployment.site_id == Site.id)
        .outerjoin(earlier, IngestSession.resumed_from_id == earlier.id)
        .outerjoin(earlier_card, earlier.card_id == earlier_card.id)
        .where(IngestSession.id == session_id)
    ).one()
    ingest, card, deployment, site, earlier_start, earlier_identity = row
    files = session.scalars(sa.select(SourceFile).where(SourceFile.session_id == session_id)
                            .order_by(SourceFile.id)).all()
    return {
        "session": {**{k: getattr(ingest, k) for k in _SESSION_FIELDS}, "started_at": iso(ingest.started_at),
                    "finished_at": iso(ingest.finished_at),
                    "resumed_from": None if earlier_start is None else
                    {"card": earlier_identity, "started_at": iso(earlier_start)}},
        "card": {"identity": card.identity, **{k: getattr(card, k) for k in _CARD_FIELDS}},
        "site": site,
        "deployment": {"name": deployment.name, "timezone": deployment.timezone},
        "device_serial": device_serial,
        "files": [{"raw_path": base64.b64encode(bytes(f.raw_path)).decode(), "display_path": f.display_path,
                   "size_bytes": f.size_bytes, "mtime": iso(f.mtime), "state": f.state, "reason": f.reason,
                   "sha256": f.sha256, "message": f.message} for f in files],
    }


def restore_session(session: Session, doc: dict[str, Any], *, recording_ids: dict[str, int],
                    session_ids: dict[tuple[str, str], int], default_timezone: str) -> int:
    """Insert one session of a ledger document (site, deployment, card as needed); returns its id.

    ``recording_ids`` maps content hashes to the new catalogue's recordings (a file whose
    recording could not be rebuilt keeps its hash and no recording); ``session_ids`` maps the
    natural keys of sessions already restored (``resumed_from``).
    """
    deployment_id = deployment_for(session, doc, default_timezone)
    card = doc["card"]
    card_id = writes.ensure_card(session, card["identity"], **{k: card[k] for k in _CARD_FIELDS})
    info = doc["session"]
    earlier = info["resumed_from"]
    session_id = writes.create_session(
        session, card_id=card_id, deployment_id=deployment_id,
        resumed_from_id=None if earlier is None else session_ids.get(session_key(earlier["card"],
                                                                                 earlier["started_at"])),
        started_at=parse_iso(info["started_at"]), finished_at=parse_iso(info["finished_at"]),
        **{k: info[k] for k in _SESSION_FIELDS})
    rows = [{"session_id": session_id, "raw_path": base64.b64decode(f["raw_path"]),
             "display_path": f["display_path"], "size_bytes": f["size_bytes"], "mtime": parse_iso(f["mtime"]),
             "state": f["state"], "reason": f["reason"], "sha256": f["sha256"], "message": f["message"],
             "recording_id": recording_ids.get(f["sha256"]) if f["sha256"] else None} for f in doc["files"]]
    if rows:
        session.execute(sa.insert(SourceFile), rows)
    return session_id


def deployment_for(session: Session, doc: dict[str, Any], default_timezone: str) -> int:
    """The id of the document's deployment (and site), created when missing."""
    site_id = writes.ensure_site(session, doc["site"])
    deployment_id, _ = writes.ensure_deployment(session, site_id, doc["deployment"]["name"],
                                                doc["deployment"]["timezone"], default_timezone)
    return deployment_id


def restore_manifest(session: Session, *, sequence: int, kind: str, path: str, files: int, failures: int,
                     session_id: int | None, report: dict[str, Any] | None, created_at: dt.datetime) -> int:
    """One manifest generation's row, as ingest or verify recorded it."""
    return writes.insert_manifest(session, sequence=sequence, kind=kind, path=path, files=files, failures=failures,
                                  session_id=session_id, report=report, created_at=created_at)


def database_tables(url: str) -> list[str]:
    """The tables a database already holds (a rebuild refuses a target that has any)."""
    from fieldkit.catalogue.engine import make_engine

    engine = make_engine(url)
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def shown_url(url: str) -> str:
    """A database URL as it may be printed: the password masked."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def sqlite_file(url: str) -> str | None:
    """The file of an SQLite URL (``None`` for another database)."""
    from sqlalchemy.engine import make_url

    from fieldkit.catalogue.engine import is_sqlite

    return (make_url(url).database or "") if is_sqlite(url) else None
