"""Ingest and verify on an object-storage archive (``archive_root = "s3://bucket/prefix"``).

The protocol is the local one (docs/architecture.md, "Ingest protocol" and "Ingest on object
storage"); what differs is where its pieces live:

- **No staging area and no journal on the archive.** Each file is uploaded create-only and read
  back (:mod:`fieldkit.ingest.upload`); a killed run leaves at most complete objects without a
  catalogue row (an interrupted multipart upload is never an object). On resume the same card
  file goes to the same deterministic name, finds it taken, re-hashes the object there and adopts
  it only when it holds the card file's content: the catalogue plus the create-only names are the
  journal, so nothing has to be recovered before the ingest, and an object without a ``verified``
  row is never trusted blindly. ``fieldkit verify`` lists objects the catalogue does not know.
- **The lock** is the workspace's own ``.ingest.lock`` (an OS lock, as locally): it serialises
  the ingests and verifications of this workspace; across machines the catalogue's lock serialises
  them (PostgreSQL).
- **Describing** (probe, QC, recorder metadata) reads the card's bytes, which the upload just
  proved identical to the object's (same SHA-256 from the card twice and from the object): a third
  transfer of every object, and the QC's full decode over ranged GETs, would cost more than the
  upload itself; the card is opened read-only as for the copy.
- **Manifests** go to ``<archive>/mhl/``: each generation is written in a scratch folder (the
  ASC MHL writer of :mod:`fieldkit.io.manifests.mhl`, over a mirror of the manifests already
  there) and stored create-only; the chain file, derived from the manifests, is replaced.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fieldkit.catalogue import writes
from fieldkit.catalogue.records import ArchivedRecording
from fieldkit.errors import InputUnavailableError, StorageUnavailableError
from fieldkit.ingest.batch import DESCRIBE_WORKERS, BatchContext, Describer, Placed, commit_and_advance
from fieldkit.ingest.inventory import CardFile, Inventory
from fieldkit.ingest.lock import ingest_lock
from fieldkit.ingest.outcomes import NullProgress, Progress, judge
from fieldkit.ingest.session import SessionPlan
from fieldkit.ingest.upload import upload_batch
from fieldkit.io.manifests.mhl import (
    CHAIN_FILENAME,
    CreatorInfo,
    MhlEntry,
    latest_hashes,
    list_manifests,
    verify_chain,
    write_generation,
)
from fieldkit.io.storage import Root

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["upload_all", "write_url_manifest", "verify_url_archive", "MANIFEST_FOLDER"]

log = logging.getLogger(__name__)
MANIFEST_FOLDER = "mhl"
PARALLEL_DESCRIBE_FROM = 256  # files, as for a local ingest


# ``request`` is a fieldkit.ingest.service.IngestRequest and ``report`` a fieldkit.ingest.verify.VerifyReport:
# not imported, as those modules call this one (no import cycle).
def upload_all(workspace: Workspace, inv: Inventory, request: Any, plan: SessionPlan,
               pending: list[CardFile], batches: Iterable[list[CardFile]], progress: Progress,
               should_stop: Callable[[], bool], *, check_lock: Callable[[], None] = lambda: None) -> bool:
    """Upload, verify, describe and commit ``pending`` (as ``batches``); True when stopped on request.
    ``check_lock`` raises before a batch is committed if the ingest lock was lost."""
    cfg = workspace.settings.ingest
    root = workspace.roots.archive
    # ``archive`` is where the describe step reads: the card (see the module docstring). No
    # staging folder and no journal: the catalogue and the create-only names are the journal.
    ctx = BatchContext(Path(inv.root), None, plan.session_id, plan.deployment_id, request.site,  # type: ignore[arg-type]
                       request.deployment, plan.timezone, request.device_serial, cfg.chunk_bytes, cfg.fsync,
                       cfg.read_retries, None, check_lock=check_lock)  # type: ignore[arg-type]
    card_root = os.fsencode(inv.root)
    processes = cfg.describe_processes
    if processes is None:
        processes = DESCRIBE_WORKERS if len(pending) >= PARALLEL_DESCRIBE_FROM else 0
    progress.start(len(pending), sum(f.size_bytes for f in pending))
    try:
        with Describer(ctx, processes) as describer:
            waiting = None
            for batch in batches:
                if should_stop():
                    break
                try:
                    with workspace.catalogue.read() as r:
                        placed, failed = upload_batch(ctx, root, card_root, batch, r)
                except StorageUnavailableError:
                    # the storage went away: the previous batch is stored and verified, and its
                    # card still readable to describe it, so it is kept; this batch's objects
                    # are re-hashed and adopted when the same command runs again
                    if waiting is not None:
                        _commit(workspace, ctx, describer, waiting, progress)
                    raise
                proxies = _on_card(placed)
                if waiting is not None:  # the previous batch was described while this one uploaded
                    _commit(workspace, ctx, describer, waiting, progress)
                waiting = (batch, placed, proxies, failed, describer.submit(proxies))
            if waiting is not None:
                _commit(workspace, ctx, describer, waiting, progress)
    finally:
        progress.finish()
    return should_stop()


def _on_card(placed: list[Placed]) -> list[Placed]:
    """The placed files as the describe step reads them: from the card (``ctx.archive``)."""
    return [Placed(p.card, p.sha256, os.fsdecode(p.card.raw_path) if p.archive_path else "") for p in placed]


def _commit(workspace: Workspace, ctx: BatchContext, describer: Describer, state, progress: Progress) -> None:
    batch, placed, proxies, failed, futures = state
    describer.collect(proxies, futures)
    for p, q in zip(placed, proxies, strict=True):
        p.description, p.meta = q.description, q.meta
    commit_and_advance(workspace, ctx, placed, failed, batch, progress)


# ------------------------------------------------------------------------------ manifests
def _mirror(folder: Root, into: Path) -> None:
    """Copy the manifests and the chain file of ``folder`` (small XML files) into ``into``."""
    for name in folder.list():
        if name == CHAIN_FILENAME or name.endswith(".mhl"):
            (into / name).write_bytes(folder.read_bytes(name))


def write_url_manifest(root: Root, *, process: Literal["transfer", "in-place"], entries: list[MhlEntry],
                       creator: CreatorInfo) -> tuple[int, str]:
    """Seal a manifest generation in ``<root>/mhl/``; returns (sequence, its URL)."""
    folder = root.child(MANIFEST_FOLDER)
    with tempfile.TemporaryDirectory(prefix="fieldkit-mhl-") as scratch:
        local = Path(scratch)
        _mirror(folder, local)
        path = write_generation(local, process=process, entries=entries, creator=creator, root_name="archive")
        folder.put_bytes(path.name, path.read_bytes())  # create-only: a generation is never replaced
        folder.replace_bytes(CHAIN_FILENAME, (local / CHAIN_FILENAME).read_bytes())
        sequence = next(seq for seq, p in list_manifests(local) if p.name == path.name)
    return sequence, folder.uri(path.name)


# ------------------------------------------------------------------------------ verify
def verify_url_archive(workspace: Workspace, report: Any, skip_top: set[str], *,
                       progress: Progress | None = None) -> Any:
    """``fieldkit verify`` on a URL archive, filling ``report``: as
    :func:`fieldkit.ingest.verify.verify_archive` (``skip_top``: top-level folders not audio)."""
    progress = progress or NullProgress()
    root = workspace.roots.archive
    with ingest_lock(workspace, command="verify"):
        root.check_reachable()
        with workspace.catalogue.read() as s:
            recordings = writes.archived_recordings(s)
        with tempfile.TemporaryDirectory(prefix="fieldkit-mhl-") as scratch:
            _mirror(root.child(MANIFEST_FOLDER), Path(scratch))
            manifest_hashes = latest_hashes(scratch)
            report.chain_problems = verify_chain(scratch)
        entries = []
        progress.start(len(recordings), sum(r.size_bytes for r in recordings))
        for rec in recordings:
            entry = _check_object(root, rec, manifest_hashes.get(rec.archive_path), report)
            if entry is not None:
                entries.append(entry)
            progress.advance(rec.archive_path, rec.size_bytes)
        progress.finish()
        known = {r.archive_path for r in recordings}
        report.uncatalogued = [name for name in root.list(recursive=True)
                               if name.split("/", 1)[0] not in skip_top and name not in known]
        if entries:
            sequence, uri = write_url_manifest(root, process="in-place", entries=entries,
                                               creator=CreatorInfo.now(comment="fieldkit verify"))
            report.manifest = uri
            with workspace.catalogue.write() as s:
                writes.insert_manifest(s, sequence=sequence, kind="verify", path=uri, files=len(entries),
                                       failures=len(report.mismatched) + len(report.missing),
                                       report={k: v for k, v in report.to_dict().items() if k != "manifest"})
    return report


def _check_object(root: Root, rec: ArchivedRecording, listed: MhlEntry | None,
                  report: Any) -> MhlEntry | None:
    report.checked += 1
    try:
        digest, size = root.sha256(rec.archive_path)
    except InputUnavailableError:
        report.missing.append(rec.archive_path)
        return None
    return judge(rec, listed, digest, size, report)
