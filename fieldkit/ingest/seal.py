"""Sealing a session: its final state, "safe to erase", and an ASC-MHL-style manifest generation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fieldkit.catalogue import queries, restore, writes
from fieldkit.catalogue.base import utcnow
from fieldkit.catalogue.records import SessionFileRow
from fieldkit.catalogue.retry import write_with_retry
from fieldkit.faults import crashpoint
from fieldkit.io.manifests.ledger import write_record
from fieldkit.io.manifests.mhl import CreatorInfo, MhlEntry, write_generation

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.io.storage import Root
    from fieldkit.workspace import Workspace

__all__ = ["SealedSession", "seal_session", "record_session", "ledger_stamp"]


@dataclass(frozen=True)
class SealedSession:
    """A sealed session: its final state, whether the card is safe to erase, its manifest, its files."""

    state: str  # complete | incomplete
    safe_to_erase: bool
    counts: dict[str, int]
    manifest: str | None  # workspace-relative path of the manifest generation, if one was written
    files: list[SessionFileRow]


def _entries(files: list[SessionFileRow], hashed_at) -> list[MhlEntry]:
    entries, seen = [], set()
    for f in files:
        if f.state not in ("verified", "duplicate") or not f.archive_path or f.archive_path in seen:
            continue
        seen.add(f.archive_path)
        action = "original" if f.state == "verified" else "verified"
        entries.append(MhlEntry(f.archive_path, f.size_bytes, {"sha256": f.sha256},
                                action=action, hashed_at=hashed_at))
    return entries


def seal_session(workspace: Workspace, session_id: int, *, stopped: bool, comment: str,
                 device_serial: str | None = None) -> SealedSession:
    """Set the session's state and counts; write a manifest generation and the session's ledger
    record (``archive/mhl/ledger``, for ``fieldkit catalog rebuild``); return the summary."""
    with workspace.catalogue.read() as s:
        files = queries.session_files(s, session_id)
    counts = {k: sum(1 for f in files if f.state == k) for k in ("verified", "duplicate", "ignored", "failed", "pending")}
    # C1: a file that failed leaves the session incomplete (a re-run retries it), never safe to erase
    complete = not stopped and counts["pending"] == 0 and counts["failed"] == 0
    safe = complete
    crashpoint("before_seal")
    manifest = _write_manifest(workspace, files, comment) if counts["verified"] + counts["duplicate"] else None
    crashpoint("after_manifest")

    def seal(s) -> None:
        writes.update_session(s, session_id, state="complete" if complete else "incomplete", counts=counts,
                              safe_to_erase=safe, finished_at=utcnow(),
                              message=None if complete else _why_incomplete(stopped, counts))
        row = None
        if manifest is not None:
            sequence, shown, created = manifest
            row = {"sequence": sequence, "kind": "ingest", "path": shown,
                   "files": counts["verified"] + counts["duplicate"], "failures": counts["failed"], "report": None,
                   "created_at": created}
            # keyed by its sequence number: a retry after a COMMIT that landed finds the row and adds none
            if not writes.manifest_recorded(s, sequence):
                writes.insert_manifest(s, session_id=session_id, **row)
        # Written inside the transaction, before its commit: a committed session always has its record
        # (a retried transaction writes the record again; the newest record of a session wins).
        record_session(workspace, s, session_id, device_serial=device_serial, manifest=row)

    write_with_retry(workspace.catalogue, seal, what="ingest seal")
    return SealedSession(state="complete" if complete else "incomplete", safe_to_erase=safe, counts=counts,
                         manifest=manifest[1] if manifest else None, files=files)


def ledger_stamp() -> str:
    """A ledger record's time stamp (its name sorts by it)."""
    return utcnow().strftime("%Y%m%dT%H%M%S%fZ")


def ledger_folder(workspace: Workspace) -> Path | Root:
    """Where the archive's manifests (and their ``ledger/``) are: ``archive/mhl``, or its URL."""
    from fieldkit.ingest.remote import MANIFEST_FOLDER

    archive = workspace.roots.archive
    return workspace.paths.manifests if archive.is_local else archive.child(MANIFEST_FOLDER)


def record_session(workspace: Workspace, s, session_id: int, *, device_serial: str | None,
                   manifest: dict | None) -> None:
    """Write the session's ledger record as the open writer session ``s`` sees it."""
    doc = restore.session_document(s, session_id, device_serial=device_serial)
    if manifest is not None:
        manifest = {**manifest, "created_at": restore.iso(manifest["created_at"])}
    write_record(ledger_folder(workspace), "session", {**doc, "manifest": manifest}, ledger_stamp())


def _why_incomplete(stopped: bool, counts: dict[str, int]) -> str:
    if counts["failed"] and not stopped and not counts["pending"]:
        n = counts["failed"]
        return (f"{n} file{'s' if n != 1 else ''} could not be copied and verified (see each file's reason); "
                "keep the card and run the same ingest again to retry them")
    return "stopped before every file was copied; run again to resume"


def _write_manifest(workspace: Workspace, files: list[SessionFileRow], comment: str) -> tuple[int, str, dt.datetime]:
    """The new generation: (its sequence, how the catalogue names it - workspace-relative path or
    URL -, its creation time, the catalogue's ``manifest.created_at``)."""
    creator = CreatorInfo.now(comment=comment)
    if not workspace.roots.archive.is_local:
        from fieldkit.ingest.remote import write_url_manifest

        sequence, url = write_url_manifest(workspace.roots.archive, process="transfer",
                                           entries=_entries(files, creator.created), creator=creator)
        return sequence, url, creator.created
    path = write_generation(workspace.paths.manifests, process="transfer", entries=_entries(files, creator.created),
                            creator=creator, root_name="archive")
    return int(path.name.split("_", 1)[0]), workspace.relative(path), creator.created
