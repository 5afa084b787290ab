"""Recovery at the start of every ingest and verify (docs/reliability.md, D1).

Stray ``*.partial`` files are removed (their copy never completed, the card still has the
data). Files that a killed run placed in the archive but never committed are adopted through
the staging journal when their bytes still hash to the journalled SHA-256; otherwise they are
left where they are and reported — never deleted, never renamed.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fieldkit.catalogue import queries, writes
from fieldkit.ingest.batch import BatchContext, Placed, commit_batch, describe_batch
from fieldkit.ingest.copy import hash_file
from fieldkit.ingest.inventory import CardFile, display_name
from fieldkit.ingest.journal import Journal, JournalEntry, read_journal

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["Recovery", "recover_archive"]

log = logging.getLogger(__name__)


@dataclass
class Recovery:
    partials_removed: int = 0
    adopted: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


def recover_archive(workspace: Workspace, *, do_fsync: bool = True) -> Recovery:
    """Remove partials and adopt committed-but-uncatalogued files of every session folder."""
    result = Recovery()
    staging = workspace.paths.staging
    if not staging.is_dir():
        return result
    for partial in staging.rglob("*.partial"):
        partial.unlink()
        result.partials_removed += 1
    for journal in sorted(staging.glob("*/journal.jsonl")):
        _adopt(workspace, read_journal(journal), result, do_fsync)
    return result


def _orphans(workspace: Workspace, entries: list[JournalEntry]) -> list[JournalEntry]:
    with workspace.catalogue.read() as s:
        return [e for e in entries if writes.recording_by_sha(s, e.sha256) is None
                and (workspace.paths.archive / e.archive_path).is_file()]


def _adopt(workspace: Workspace, entries: list[JournalEntry], result: Recovery, do_fsync: bool) -> None:
    orphans = _orphans(workspace, entries)
    if not orphans:
        return
    archive = workspace.paths.archive
    matched = [e for e in orphans if hash_file(archive / e.archive_path)[0] == e.sha256]
    for e in orphans:
        if e not in matched:
            log.warning("orphan %s does not match its journalled hash; left in place", e.archive_path)
            result.unmatched.append(e.archive_path)
    for session_id in sorted({e.session_id for e in matched}):
        mine = [e for e in matched if e.session_id == session_id]
        _commit_orphans(workspace, session_id, mine, do_fsync)
        result.adopted += [e.archive_path for e in mine]


def _commit_orphans(workspace: Workspace, session_id: int, entries: list[JournalEntry], do_fsync: bool) -> None:
    with workspace.catalogue.read() as s:
        context = queries.session_context(s, session_id)
    folder = workspace.paths.staging / str(session_id)
    ctx = BatchContext(workspace.paths.archive, folder, session_id, context.deployment_id, context.site,
                       context.deployment, context.timezone, None, workspace.settings.ingest.chunk_bytes,
                       do_fsync, 0, Journal(folder, session_id, do_fsync=do_fsync))
    placed = [Placed(CardFile(e.raw_path, display_name(e.raw_path), e.size_bytes, None), e.sha256, e.archive_path)
              for e in entries]
    describe_batch(ctx, placed)
    with workspace.catalogue.write() as s:
        commit_batch(ctx, s, placed, [])


def clear_session_staging(workspace: Workspace, session_id: int) -> None:
    """Once a session is sealed, its journal is no longer needed."""
    shutil.rmtree(workspace.paths.staging / str(session_id), ignore_errors=True)
