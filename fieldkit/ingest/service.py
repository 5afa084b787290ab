"""``fieldkit ingest``: a card in, a verified archive and a catalogue out.

Preflight (inventory, lock, recovery, session, free space) → batches of verified copies, each
batch committed in one transaction after its files and directories are durable → seal (state,
safe-to-erase, manifest). One bad file never stops the batch; a removed card or a full disk
stops cleanly and the same command resumes.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fieldkit.catalogue import queries
from fieldkit.catalogue.records import SessionFileRow
from fieldkit.catalogue.retry import write_with_retry
from fieldkit.errors import InputUnavailableError, InsufficientSpaceError, OutputUnavailableError
from fieldkit.ingest.batch import (
    DESCRIBE_WORKERS,
    BatchContext,
    Describer,
    commit_and_advance,
    copy_batch,
)
from fieldkit.ingest.inventory import CardFile, Inventory, require_audio, take_inventory
from fieldkit.ingest.journal import Journal
from fieldkit.ingest.lock import ingest_lock
from fieldkit.ingest.outcomes import FileOutcome, IngestReport, NullProgress, Progress
from fieldkit.ingest.recover import clear_session_staging, recover_archive
from fieldkit.ingest.seal import record_session, seal_session
from fieldkit.ingest.session import SessionPlan, open_session, record_sighting
from fieldkit.io.destination import check_writable, file_size_limit

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["IngestRequest", "ingest_card", "plan_ingest"]

log = logging.getLogger(__name__)
BATCH_BYTES = 256 << 20
#: Batches copied but not yet committed, at most (their files are journalled: a crash recovers them).
MAX_WAITING_BATCHES = 16
PARALLEL_DESCRIBE_FROM = 256  # files; below that a process pool costs more than it saves


@dataclass(frozen=True)
class IngestRequest:
    card_dir: Path
    site: str
    deployment: str
    timezone: str | None = None
    device_serial: str | None = None
    card_id: str | None = None
    break_lock: bool = False


def _batches(files: list[CardFile], batch_files: int) -> Iterator[list[CardFile]]:
    batch, size = [], 0
    for f in files:
        batch.append(f)
        size += f.size_bytes
        if len(batch) >= batch_files or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _preflight_space(workspace: Workspace, files: list[CardFile]) -> None:
    needed = sum(f.size_bytes for f in files) + workspace.settings.ingest.free_space_margin_bytes
    free = shutil.disk_usage(workspace.paths.archive).free
    if files and free < needed:
        raise InsufficientSpaceError(
            f"not enough space in {workspace.paths.archive}: {needed:,} bytes needed "
            f"({len(files)} files plus a {workspace.settings.ingest.free_space_margin_bytes:,}-byte margin), "
            f"{free:,} available. Nothing was copied.",
            hint="Free space on the archive volume, or move the workspace, then run again.")


def _preflight_file_sizes(workspace: Workspace, inv: Inventory, files: list[CardFile]) -> None:
    """C4: a card file larger than the archive's file system holds (FAT: 4 GiB - 1 bytes, an RF64
    recording) refuses the ingest before anything is copied, instead of ``EFBIG`` at 4 GiB."""
    found = file_size_limit(workspace.paths.archive)
    too_large = [f for f in files if found is not None and f.size_bytes > found[0]]
    if too_large:
        (limit, mount), largest = found, max(too_large, key=lambda f: f.size_bytes)
        raise OutputUnavailableError(
            f"{largest.display_path} is {largest.size_bytes:,} bytes, but the archive {workspace.paths.archive} is "
            f"on {mount.mount_point}, a {mount.fstype} (FAT) file system that holds files of at most {limit:,} bytes "
            f"({len(too_large)} such file(s) on the card). Nothing was copied.",
            hint="Put the archive on a file system without this limit (exFAT, NTFS, ext4: archive_root in "
                 "fieldkit.toml), then run again.", path=inv.root / largest.display_path)


def _report(inv: Inventory, request: IngestRequest, plan: SessionPlan, files: list[SessionFileRow],
            **kw) -> IngestReport:
    outcomes = [FileOutcome.from_row(f) for f in files]
    kw["messages"] = [*kw.get("messages", []), *_collisions(outcomes)]
    return IngestReport(inv.identity, str(inv.root), request.site, request.deployment, plan.session_id,
                        files=outcomes, resumed_from=plan.resumed_from, **kw)


def _collisions(outcomes: list[FileOutcome]) -> list[str]:
    """F3: a name already archived with other content (two recorders, same configuration, no prefix)."""
    found = []
    for f in outcomes:
        if f.archive_path and f.sha256 and f"__{f.sha256[:12]}" in f.archive_path.rsplit("/", 1)[-1]:
            found.append(f"name collision: {f.path} has the name of an archived recording with other content "
                         f"(two recorders with the same configuration and no device prefix?); both are kept, this "
                         f"one as {f.archive_path}, told apart by their serials in 'fieldkit catalog recordings'.")
    return found


def ingest_card(workspace: Workspace, request: IngestRequest, *, progress: Progress | None = None,
                should_stop: Callable[[], bool] = lambda: False) -> IngestReport:
    """Ingest one card into ``workspace``; see the module docstring for the protocol."""
    progress = progress or NullProgress()
    inv = take_inventory(request.card_dir, request.card_id)
    require_audio(inv)  # before the lock, the recovery or any row: a wrong mount point writes nothing
    archive = workspace.roots.archive
    if archive.is_local:  # so is a read-only or forbidden archive (C4), named before the lock file is made
        check_writable(workspace.paths.archive, "the archive")
    else:  # an object-storage archive: fieldkit/ingest/remote.py
        from fieldkit.ingest import remote
    with ingest_lock(workspace, card=inv.identity, break_stale=request.break_lock) as lock:
        if archive.is_local:
            recover_archive(workspace, do_fsync=workspace.settings.ingest.fsync)
        else:
            archive.check_reachable()  # a wrong endpoint, bucket or credential stops here, before any row
        # A blind retry is safe: a session row that did land is found again and resumed (natural key: the card).
        plan = write_with_retry(workspace.catalogue, lambda s: open_session(
            s, inv, site=request.site, deployment=request.deployment, timezone=request.timezone,
            default_timezone=workspace.settings.ingest.default_timezone), what="ingest session")
        if plan.session_id is None:
            return _repeat(workspace, inv, request, plan)
        pending = [f for f in inv.to_copy if f.raw_path not in plan.settled]
        if archive.is_local:
            _preflight_file_sizes(workspace, inv, pending)
            _preflight_space(workspace, pending)
            stopped = _copy_all(workspace, inv, request, plan, pending, progress, should_stop, lock.verify)
        else:
            stopped = remote.upload_all(workspace, inv, request, plan, pending,
                                        _batches(pending, workspace.settings.ingest.batch_files), progress, should_stop,
                                        check_lock=lock.verify)
        lock.verify()
        sealed = seal_session(workspace, plan.session_id, stopped=stopped, comment=f"ingest of {inv.identity}",
                              device_serial=request.device_serial)
        if sealed.state == "complete" and archive.is_local:
            clear_session_staging(workspace, plan.session_id)
    return _report(inv, request, plan, sealed.files, state=sealed.state,
                   safe_to_erase=sealed.safe_to_erase, manifest=sealed.manifest,
                   messages=[] if not stopped else ["stopped on request; run the same command to resume"])


def _copy_all(workspace: Workspace, inv: Inventory, request: IngestRequest, plan: SessionPlan, pending: list[CardFile],
              progress: Progress, should_stop: Callable[[], bool], check_lock: Callable[[], None]) -> bool:
    cfg = workspace.settings.ingest
    folder = workspace.paths.staging / str(plan.session_id)
    folder.mkdir(parents=True, exist_ok=True)
    ctx = BatchContext(workspace.paths.archive, folder, plan.session_id, plan.deployment_id, request.site,
                       request.deployment, plan.timezone, request.device_serial, cfg.chunk_bytes, cfg.fsync,
                       cfg.read_retries, Journal(folder, plan.session_id, do_fsync=cfg.fsync), check_lock=check_lock)
    progress.start(len(pending), sum(f.size_bytes for f in pending))
    root = os.fsencode(inv.root)
    waiting: deque = deque()  # batches placed and journalled, being described while later ones are copied
    try:
        processes = cfg.describe_processes
        if processes is None:
            processes = DESCRIBE_WORKERS if len(pending) >= PARALLEL_DESCRIBE_FROM else 0
        with Describer(ctx, processes) as describer:
            for batch in _batches(pending, cfg.batch_files):
                if should_stop():
                    break
                with workspace.catalogue.read() as r:
                    placed, failed = copy_batch(ctx, root, batch, r)
                waiting.append((batch, placed, failed, describer.submit(placed)))
                # Commit what is described; block only when too many batches wait (the describe
                # workers start up while the first batches are copied, then catch up).
                while waiting and (len(waiting) > MAX_WAITING_BATCHES or describer.ready(waiting[0][3])):
                    _commit(workspace, ctx, describer, waiting.popleft(), progress)
            while waiting:
                _commit(workspace, ctx, describer, waiting.popleft(), progress)
    finally:
        progress.finish()
    return should_stop()


def _commit(workspace: Workspace, ctx: BatchContext, describer: Describer, batch_state, progress: Progress) -> None:
    batch, placed, failed, pending = batch_state
    describer.collect(placed, pending)
    commit_and_advance(workspace, ctx, placed, failed, batch, progress)


def _repeat(workspace: Workspace, inv: Inventory, request: IngestRequest, plan: SessionPlan) -> IngestReport:
    """F1: the card is already archived, unchanged. Nothing is copied; the sighting is recorded.

    "Safe to erase" is repeated only if the earlier session said so and every archived copy is
    still there with its size (a cheap check; ``fieldkit verify`` re-hashes).
    """
    with workspace.catalogue.read() as s:
        earlier = next(x for x in queries.list_sessions(s) if x.id == plan.resumed_from)
        known = queries.session_files(s, plan.resumed_from)
    archived = sum(1 for f in known if f.state in ("verified", "duplicate"))
    missing = _missing_copies(workspace, known)
    messages = [f"{archived} file{'s' if archived != 1 else ''} already archived (identical hash), 0 new"]
    if missing:
        messages.append(f"{len(missing)} archived cop{'ies are' if len(missing) > 1 else 'y is'} missing or changed "
                        f"size ({', '.join(missing[:3])}{', …' if len(missing) > 3 else ''}): run 'fieldkit verify' "
                        "and keep this card")
    with workspace.catalogue.write() as s:
        sighting = record_sighting(s, inv, plan, safe_to_erase=earlier.safe_to_erase and not missing,
                                   message=f"{messages[0]}: seen again, as in session {plan.resumed_from}")
        record_session(workspace, s, sighting, device_serial=request.device_serial, manifest=None)
        files = queries.session_files(s, sighting, duplicate_status=True)
    plan = SessionPlan(sighting, plan.card_id, plan.deployment_id, plan.timezone, plan.resumed_from, False, {})
    return _report(inv, request, plan, files, state="complete", repeat_of=earlier.id,
                   safe_to_erase=earlier.safe_to_erase and not missing, messages=messages)


def _missing_copies(workspace: Workspace, files: list[SessionFileRow]) -> list[str]:
    """Archive paths of these files that are gone or no longer have the size catalogued."""
    missing = []
    archive = workspace.roots.archive
    for f in files:
        if f.archive_path and f.state in ("verified", "duplicate") and not archive.is_local:
            try:
                if archive.size(f.archive_path) != f.size_bytes:
                    missing.append(f.archive_path)
            except InputUnavailableError:  # gone (an unreachable storage stops the command: exit 75)
                missing.append(f.archive_path)
        elif f.archive_path and f.state in ("verified", "duplicate"):
            try:
                if (workspace.paths.archive / f.archive_path).stat().st_size != f.size_bytes:
                    missing.append(f.archive_path)
            except OSError:  # gone, or a path that no longer leads to a file
                missing.append(f.archive_path)
    return missing


def plan_ingest(workspace: Workspace, request: IngestRequest) -> dict:
    """``--dry-run``: what an ingest would do, without writing anything anywhere."""
    inv = take_inventory(request.card_dir, request.card_id)
    require_audio(inv)
    needed = inv.bytes_to_copy + workspace.settings.ingest.free_space_margin_bytes
    archive = workspace.roots.archive
    free = shutil.disk_usage(archive.local_path).free if archive.is_local else None  # a bucket has no "free"
    return {"card": inv.identity, "card_root": str(inv.root), "recorder_hint": inv.recorder_hint,
            "fingerprint": inv.fingerprint, "files": len(inv.files), "to_copy": len(inv.to_copy),
            "ignored": [{"path": f.display_path, "reason": f.ignored} for f in inv.files if f.ignored],
            "bytes_to_copy": inv.bytes_to_copy, "bytes_free": free, "enough_space": free is None or free >= needed,
            "site": request.site, "deployment": request.deployment, "dry_run": True}
