"""Opening an ingest session: a new one, a resumed one, or none at all (nothing new on the card).

Rules (docs/reliability.md, D4, F1): the newest session of the same card with the same inventory is
resumed (or, when it is complete without failures, nothing is copied and the run is recorded as a
sighting of the card: :func:`record_sighting`); a card whose inventory
grew since an unfinished session gets a new session linked to it; a card whose earlier files
changed or vanished cannot resume an unfinished session — that is refused with an explanation.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass

from fieldkit import __version__
from fieldkit.catalogue import queries, writes
from fieldkit.catalogue.base import utcnow
from fieldkit.catalogue.records import CardSessionRow
from fieldkit.errors import CardChangedError
from fieldkit.ingest.inventory import Inventory

__all__ = ["SessionPlan", "open_session", "record_sighting"]


@dataclass(frozen=True)
class SessionPlan:
    session_id: int | None  # None: nothing to copy (a re-run: record_sighting)
    card_id: int
    deployment_id: int
    timezone: str
    resumed_from: int | None
    resumed: bool
    settled: dict[bytes, str]


def _inventory_rows(inv: Inventory) -> list[dict]:
    return [{"raw_path": f.raw_path, "display_path": f.display_path, "size_bytes": f.size_bytes,
             "mtime": f.mtime, "state": "ignored" if f.ignored else "pending", "reason": f.ignored}
            for f in inv.files]


def open_session(s, inv: Inventory, *, site: str, deployment: str, timezone: str | None,
                 default_timezone: str) -> SessionPlan:
    """Create, resume or skip the session for ``inv`` inside an open writer session ``s``."""
    site_id = writes.ensure_site(s, site)
    dep_id, tz = writes.ensure_deployment(s, site_id, deployment, timezone, default_timezone)
    card_id = writes.ensure_card(s, inv.identity, label=inv.label, filesystem=inv.filesystem,
                                 capacity_bytes=inv.capacity_bytes, recorder_hint=inv.recorder_hint)
    sessions = writes.card_sessions(s, card_id)
    latest = sessions[0] if sessions else None
    if latest and latest.fingerprint == inv.fingerprint:
        settled = writes.settled_paths(s, latest.id)
        failed = writes.session_counts(s, latest.id).get("failed", 0)
        if latest.state == "complete" and not failed and latest.deployment_id == dep_id:
            return SessionPlan(None, card_id, dep_id, tz, latest.id, False, settled)
        writes.update_session(s, latest.id, state="copying", finished_at=None)
        return SessionPlan(latest.id, card_id, dep_id, tz, None, True, settled)
    resumed_from = _link_or_refuse(s, inv, latest)
    session_id = writes.create_session(
        s, card_id=card_id, deployment_id=dep_id, resumed_from_id=resumed_from, state="copying",
        source_root=str(inv.root), inventory_fingerprint=inv.fingerprint, files_total=len(inv.files),
        bytes_total=inv.bytes_to_copy, host=socket.gethostname(), username=_user(),
        fieldkit_version=__version__)
    writes.insert_inventory(s, session_id, _inventory_rows(inv))
    return SessionPlan(session_id, card_id, dep_id, tz, resumed_from, False, {})


def record_sighting(s, inv: Inventory, plan: SessionPlan, *, safe_to_erase: bool, message: str) -> int:
    """F1: the card of a complete session seen again, unchanged. Returns the new session's id.

    Nothing is copied, but the sighting is provenance (who saw this card, where, when), so it
    is a complete session linked to the one it matched (``resumed_from``), with one
    ``source_file`` row per card file: ``duplicate`` pointing at the archived recording, as for
    the same content on another card (F2), or ``ignored`` with its reason.
    """
    earlier = {f.raw_path: f for f in queries.session_files(s, plan.resumed_from)}
    rows = [{**row, "state": "ignored" if row["reason"] else "duplicate",
             "recording_id": earlier[row["raw_path"]].recording_id, "sha256": earlier[row["raw_path"]].sha256}
            for row in _inventory_rows(inv)]
    archived = sum(1 for r in rows if r["state"] == "duplicate")
    counts = {"verified": 0, "duplicate": archived, "ignored": len(rows) - archived, "failed": 0, "pending": 0}
    session_id = writes.create_session(
        s, card_id=plan.card_id, deployment_id=plan.deployment_id, resumed_from_id=plan.resumed_from,
        state="complete", source_root=str(inv.root), inventory_fingerprint=inv.fingerprint,
        files_total=len(inv.files), bytes_total=inv.bytes_to_copy, counts=counts, safe_to_erase=safe_to_erase,
        host=socket.gethostname(), username=_user(), fieldkit_version=__version__, message=message,
        finished_at=utcnow())
    writes.insert_inventory(s, session_id, rows)
    return session_id


def _link_or_refuse(s, inv: Inventory, latest: CardSessionRow | None) -> int | None:
    if latest is None:
        return None
    grew = queries.source_file_keys(s, latest.id) <= inv.keys() | _ignored_keys(inv)
    if latest.state != "complete" and not grew:
        raise CardChangedError(
            f"card {inv.identity} at {inv.root} no longer holds the files of unfinished ingest session "
            f"{latest.id} (files changed or are missing), so that session cannot be resumed.",
            hint="If this is another card, give it its own identity with --card-id NAME; "
                 "if it is the same card, re-insert it unchanged to resume.")
    return latest.id if grew else None


def _ignored_keys(inv: Inventory) -> set[tuple[bytes, int]]:
    return {(f.raw_path, f.size_bytes) for f in inv.files if f.ignored}


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER")
