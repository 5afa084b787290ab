"""One batch of card files: copy and verify each, make the directories durable, describe the
archived copies, then commit every row of the batch in one catalogue transaction.

A batch is two-phase so that durability costs one ``syncfs`` per batch instead of one fsync per
file: (1) stream every file into staging while hashing it; (2) flush the filesystem once, then
evict and re-read each copy and re-read each source; (3) link verified copies into place and
fsync the directories; (4) journal them; (5) commit. A file whose verification fails is copied
again on its own, with its own fsync, up to the configured number of retries.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

from fieldkit.catalogue import writes
from fieldkit.catalogue.retry import write_with_retry
from fieldkit.faults import crashpoint
from fieldkit.ingest.copy import (
    CopyFailure,
    StagedCopy,
    fsync_file,
    place,
    stage_copy,
    stage_unsynced,
    syncfs,
    verify_staged,
)
from fieldkit.ingest.describe import Description, describe_archived, describe_many, exit_with
from fieldkit.ingest.inventory import CardFile
from fieldkit.ingest.journal import Journal, JournalEntry
from fieldkit.ingest.naming import archive_relpath
from fieldkit.io.durable import fsync_dir
from fieldkit.model.metadata import RecorderMetadata

if TYPE_CHECKING:  # annotations only
    from fieldkit.ingest.outcomes import Progress
    from fieldkit.workspace import Workspace

__all__ = ["BatchContext", "Placed", "Failure", "Describer", "copy_batch", "describe_batch", "commit_batch",
           "commit_and_advance"]

log = logging.getLogger(__name__)

Failure = tuple[CardFile, CopyFailure]
DESCRIBE_WORKERS = max(1, min(4, (os.cpu_count() or 2) - 1))


@dataclass
class BatchContext:
    archive: Path
    staging: Path
    session_id: int
    deployment_id: int
    site: str
    deployment: str
    timezone: str
    device_serial: str | None
    chunk_bytes: int
    do_fsync: bool
    retries: int
    journal: Journal
    counter: int = 0
    placed_names: set[str] = field(default_factory=set)  # casefolded archive paths in use (catalogue or batch)
    devices: dict[tuple, int | None] = field(default_factory=dict)
    inflight: dict[str, str] = field(default_factory=dict)  # sha256 → archive path, placed but not committed
    check_lock: Callable[[], None] = lambda: None  # raises if the ingest lock was lost (the lock's verify)


@dataclass
class Placed:
    """A file whose verified copy is in the archive (``archive_path`` empty: content already there)."""

    card: CardFile
    sha256: str
    archive_path: str
    description: Description | None = None
    meta: RecorderMetadata | None = None


def _partial(ctx: BatchContext) -> Path:
    ctx.counter += 1
    path = ctx.staging / f"{ctx.counter:07d}.partial"
    path.unlink(missing_ok=True)
    return path


def _stage_all(ctx: BatchContext, root: bytes, files: list[CardFile], failed: list[Failure]) -> list[tuple]:
    staged = []
    for card in files:
        source = root + b"/" + card.raw_path
        try:
            staged.append((card, stage_unsynced(source, _partial(ctx), card.size_bytes, ctx.chunk_bytes,
                                                card.mtime)))
        except CopyFailure as first:
            if first.reason != "read_error" or not ctx.retries:
                failed.append((card, first))
                continue
            # C1: a read error may be transient; the bounded retries (ingest.read_retries) copy
            # this file again on its own, with its own fsync, before it is called failed.
            log.warning("%s Reading it again (ingest.read_retries = %d).", first.message, ctx.retries)
            try:
                staged.append((card, stage_copy(source, _partial(ctx), card.size_bytes, chunk_bytes=ctx.chunk_bytes,
                                                 do_fsync=ctx.do_fsync, retries=ctx.retries - 1,
                                                 expected_mtime=card.mtime)))
            except CopyFailure as failure:
                if failure.reason == "read_error":
                    failure = CopyFailure(failure.reason, f"{failure.message} Gave up after {ctx.retries + 1} reads "
                                                          f"(ingest.read_retries = {ctx.retries}).")
                failed.append((card, failure))
    return staged


def _verify_all(ctx: BatchContext, root: bytes, staged: list[tuple], failed: list[Failure]) -> list[tuple]:
    verified = []
    for card, copy in staged:
        source = root + b"/" + card.raw_path
        try:
            verify_staged(source, copy, ctx.chunk_bytes)
        except CopyFailure as first:
            copy.partial.unlink(missing_ok=True)
            log.warning("%s; copying it again", first.message)
            try:
                copy = stage_copy(source, _partial(ctx), card.size_bytes, chunk_bytes=ctx.chunk_bytes,
                                  do_fsync=ctx.do_fsync, retries=max(ctx.retries - 1, 0),
                                  expected_mtime=card.mtime)
            except CopyFailure as failure:
                failed.append((card, failure))
                continue
        verified.append((card, copy))
        crashpoint("after_copy")
    return verified


def copy_batch(ctx: BatchContext, root: bytes, files: list[CardFile], s_read) -> tuple[list[Placed], list[Failure]]:
    """Copy, verify and place each file; returns placed files and per-file failures."""
    failed: list[Failure] = []
    staged = _stage_all(ctx, root, files, failed)
    if ctx.do_fsync and staged:
        syncfs(ctx.staging)
        # D2: syncfs flushes the page cache but need not reach the storage: on FUSE (ntfs-3g,
        # sshfs, rclone...) it sends the daemon nothing, only fsync does. After syncfs the
        # files are clean, so on a local disk these fsyncs cost almost nothing.
        for _, copy in staged:
            fsync_file(copy.partial)
    verified = _verify_all(ctx, root, staged, failed)
    known = {**writes.recordings_by_sha(s_read, [c.sha256 for _, c in verified]),
             **{h: (None, path) for h, path in ctx.inflight.items()}}
    wanted = {card.raw_path: archive_relpath(ctx.site, ctx.deployment, card.raw_path) for card, _ in verified}
    ctx.placed_names |= writes.archive_paths_taken(s_read, list(wanted.values()))
    touched = {ctx.staging}
    placed = [_place_one(ctx, card, copy, known, wanted[card.raw_path], touched) for card, copy in verified]
    if ctx.do_fsync:
        for folder in touched:
            fsync_dir(folder)
    ctx.journal.append([JournalEntry(ctx.session_id, p.card.raw_path, p.sha256, p.card.size_bytes,
                                     p.archive_path) for p in placed if p.archive_path])
    crashpoint("after_place")
    return placed, failed


def _place_one(ctx: BatchContext, card: CardFile, staged: StagedCopy, known: dict, rel: str, touched: set) -> Placed:
    if staged.sha256 in known:  # same content already archived (another card, or a re-run): one copy
        staged.partial.unlink(missing_ok=True)
        return Placed(card, staged.sha256, "")
    if rel.casefold() in ctx.placed_names:  # taken in the catalogue or earlier in this batch
        stem, dot, ext = rel.rpartition(".")
        rel = f"{stem}__{staged.sha256[:12]}.{ext}" if dot else f"{rel}__{staged.sha256[:12]}"
    final, _adopted = place(staged, ctx.archive / rel, ctx.chunk_bytes)
    # D2: the folders place() may have created are durable only once their parents are synced
    # too (site/deployment/ is new on a first ingest): every folder up to the archive's root.
    touched.update(p for p in final.parents if p == ctx.archive or ctx.archive in p.parents)
    rel = final.relative_to(ctx.archive).as_posix()
    ctx.placed_names.add(rel.casefold())
    ctx.inflight[staged.sha256] = rel
    known[staged.sha256] = (None, rel)  # the same content later in this batch is a duplicate
    return Placed(card, staged.sha256, rel)


def describe_batch(ctx: BatchContext, placed: list[Placed]) -> None:
    """Probe, QC and metadata of each newly placed file, in this process."""
    for p in placed:
        if p.archive_path:
            p.description, p.meta = describe_archived(ctx.archive / p.archive_path, p.card.name, ctx.timezone)


def _forkserver():
    """A forkserver context whose server preloads the describe code, not ``__main__``.

    By default the forkserver imports the calling program's main module (for ``fieldkit`` the
    whole CLI), which delayed the first description by about a second; forked from a server
    that has ``fieldkit.ingest.describe`` loaded, a worker starts in milliseconds. (No effect if
    this process's forkserver is already running.)
    """
    context = get_context("forkserver")
    context.set_forkserver_preload(["fieldkit.ingest.describe"])
    return context


class Describer:
    """Describes placed files in worker processes while the main process copies the next batch.

    Reading the archived copies (probe, QC, metadata) is CPU-bound Python; copying is I/O-bound.
    Overlapping them keeps both cores busy. Small ingests describe in-process.
    """

    def __init__(self, ctx: BatchContext, processes: int) -> None:
        self.ctx = ctx
        self.processes = processes
        self.pool = ProcessPoolExecutor(processes, mp_context=_forkserver(), initializer=exit_with,
                                        initargs=(os.getpid(),)) if processes else None
        if self.pool is not None:
            # Start the workers and their imports now, while the first batch is copied, not
            # when its description is first needed.
            for _ in range(processes):
                self.pool.submit(describe_many, [], ctx.timezone)

    def submit(self, placed: list[Placed]) -> list:
        if self.pool is None:
            return []
        try:
            return self._submit(placed)
        except BrokenProcessPool as exc:
            self._give_up(exc)
            return []

    def _submit(self, placed: list[Placed]) -> list:
        """One future per worker share of the batch: per-file futures cost the main process a
        pickle, a pipe write and a result-thread wake-up each, competing with the copy for the GIL."""
        jobs = [(i, str(self.ctx.archive / p.archive_path), p.card.name) for i, p in enumerate(placed) if p.archive_path]
        shares = [jobs[k::self.processes] for k in range(self.processes)]
        return [self.pool.submit(describe_many, share, self.ctx.timezone) for share in shares if share]

    def _give_up(self, exc: BaseException) -> None:
        """E.g. a calling script without ``if __name__ == "__main__":``: describe in this process."""
        log.warning("describing files in worker processes failed (%s); continuing in this process", exc)
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        self.pool = None

    @staticmethod
    def ready(futures: list) -> bool:
        """Whether collecting these futures would not block."""
        return all(f.done() for f in futures)

    def collect(self, placed: list[Placed], futures: list) -> None:
        if self.pool is None:  # never had one, or gave up on it: describe here
            describe_batch(self.ctx, placed)
            return
        try:
            for future in futures:
                for i, description, meta in future.result():
                    placed[i].description, placed[i].meta = description, meta
        except BrokenProcessPool as exc:
            self._give_up(exc)
            describe_batch(self.ctx, placed)

    def __enter__(self) -> Describer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def _device(ctx: BatchContext, s, meta) -> int | None:
    serial = (meta.serial if meta else None) or ctx.device_serial
    key = (meta.make if meta else None, meta.model if meta else None, serial, meta.firmware if meta else None)
    if key not in ctx.devices:
        ctx.devices[key] = writes.ensure_device(s, *key)
    return ctx.devices[key]


def commit_batch(ctx: BatchContext, s, placed: list[Placed], failed: list[Failure]) -> None:
    """Insert recordings and settle source-file rows for a batch, inside writer session ``s``."""
    known = writes.recordings_by_sha(s, [p.sha256 for p in placed])
    new_rows, settle = [], []
    for p in placed:
        if p.sha256 in known or not p.archive_path:
            continue
        fields = p.description.columns() if p.description is not None else {}
        new_rows.append({**fields, "sha256": p.sha256, "size_bytes": p.card.size_bytes,
                         "archive_path": p.archive_path, "deployment_id": ctx.deployment_id,
                         "device_id": _device(ctx, s, p.meta)})
        known[p.sha256] = (None, p.archive_path)  # same content twice in one batch: the first wins
    crashpoint("during_commit")
    known.update(writes.insert_recordings(s, new_rows))
    for p in placed:
        rec_id, path = known[p.sha256]
        first = bool(p.archive_path) and path == p.archive_path
        settle.append({"raw_path": p.card.raw_path, "state": "verified" if first else "duplicate",
                       "sha256": p.sha256, "recording_id": rec_id,
                       "reason": p.description.reason if first and p.description is not None else None,
                       "message": None if first else f"identical to {path}"})
    settle += [{"raw_path": c.raw_path, "state": "failed", "sha256": None, "recording_id": None,
                "reason": f.reason, "message": f.message} for c, f in failed]
    writes.settle_source_files(s, ctx.session_id, settle)
    crashpoint("during_commit")


def commit_and_advance(workspace: Workspace, ctx: BatchContext, placed: list[Placed], failed: list[Failure],
                       batch: list[CardFile], progress: Progress) -> None:
    """Commit one described batch (local or object-storage archive) and move the progress on.

    H4: keyed by content hash and (session, raw path), the batch is safe to write again when the
    connection was lost, even during COMMIT; device ids cached by a rolled-back attempt are dropped.
    """
    ctx.check_lock()  # a lock lost with its connection: stop before recording anything more
    write_with_retry(workspace.catalogue, lambda s: commit_batch(ctx, s, placed, failed),
                     on_retry=ctx.devices.clear, what="ingest batch")
    for p in placed:
        ctx.inflight.pop(p.sha256, None)
    for f in batch:
        progress.advance(f.display_path, f.size_bytes)
