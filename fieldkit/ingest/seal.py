"""Sealing a session: its final state, "safe to erase", and an ASC-MHL-style manifest generation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fieldkit.catalogue import queries, writes
from fieldkit.catalogue.base import utcnow
from fieldkit.catalogue.records import SessionFileRow
from fieldkit.faults import crashpoint
from fieldkit.io.manifests.mhl import CreatorInfo, MhlEntry, write_generation

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["SealedSession", "seal_session"]


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


def seal_session(workspace: Workspace, session_id: int, *, stopped: bool, comment: str) -> SealedSession:
    """Set the session's state and counts; write a manifest generation; return the summary."""
    with workspace.catalogue.read() as s:
        files = queries.session_files(s, session_id)
    counts = {k: sum(1 for f in files if f.state == k) for k in ("verified", "duplicate", "ignored", "failed", "pending")}
    complete = not stopped and counts["pending"] == 0
    safe = complete and counts["failed"] == 0
    crashpoint("before_seal")
    manifest = _write_manifest(workspace, files, comment) if counts["verified"] + counts["duplicate"] else None
    crashpoint("after_manifest")
    if isinstance(manifest, Path):
        sequence, shown = int(manifest.name.split("_", 1)[0]), workspace.relative(manifest)
    else:  # (sequence, URL) of an object-storage archive's manifest, or none written
        sequence, shown = manifest or (None, None)
    with workspace.catalogue.write() as s:
        writes.update_session(s, session_id, state="complete" if complete else "incomplete", counts=counts,
                              safe_to_erase=safe, finished_at=utcnow(),
                              message=None if complete else "stopped before every file was copied; run again to resume")
        if manifest is not None:
            writes.insert_manifest(s, sequence=sequence, kind="ingest",
                                   path=shown, files=counts["verified"] + counts["duplicate"],
                                   failures=counts["failed"], session_id=session_id)
    return SealedSession(state="complete" if complete else "incomplete", safe_to_erase=safe, counts=counts,
                         manifest=shown, files=files)


def _write_manifest(workspace: Workspace, files: list[SessionFileRow], comment: str) -> Path | tuple[int, str]:
    """The new generation: its path in a local archive, (sequence, URL) in an object-storage one."""
    creator = CreatorInfo.now(comment=comment)
    if not workspace.roots.archive.is_local:
        from fieldkit.ingest.remote import write_url_manifest

        return write_url_manifest(workspace.roots.archive, process="transfer",
                                  entries=_entries(files, creator.created), creator=creator)
    return write_generation(workspace.paths.manifests, process="transfer", entries=_entries(files, creator.created),
                            creator=creator, root_name="archive")
