"""The verified copy of one card file into an object-storage archive (a URL archive root).

Per file: the card file is hashed first (read 1, evicted from the page cache), so content that is
already archived is never uploaded again (there is no staging area to throw a copy away from:
the archive is never deleted from). Otherwise it is streamed from the card a second time into a
create-only upload (:meth:`fieldkit.io.storage.Root.put_new`: ``If-None-Match: *``, multipart for
big files) that hashes while it streams; the two card reads must agree (C1: an unstable card is
never marked verified). Then the stored object is **read back and re-hashed**
(:meth:`~fieldkit.io.storage.Root.sha256`); only when all three digests agree is the file placed.

A name that is already taken is never overwritten: the object there is re-hashed, and **adopted**
when it holds this very content (an upload of a killed run that never reached the catalogue: the
catalogue and the create-only names are the journal of a URL archive), or the hash-suffixed name
of :mod:`fieldkit.ingest.naming`'s rule is used. An object whose read-back hash differs is left
as it is (never deleted) and the upload is retried under the same rules, then ``failed``.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from fieldkit.catalogue import writes
from fieldkit.errors import IngestError, ObjectExistsError
from fieldkit.ingest.batch import BatchContext, Failure, Placed
from fieldkit.ingest.copy import _GONE, CardRemovedError, CopyFailure, _evict, _open_source, hash_file
from fieldkit.ingest.inventory import CardFile
from fieldkit.ingest.naming import archive_relpath
from fieldkit.io.storage import Root

__all__ = ["upload_batch", "upload_one"]

log = logging.getLogger(__name__)
#: Files uploaded and read back at once: object storage answers each request after a round trip,
#: so a batch keeps several in flight (as ``s3fs put`` does) while the card is read.
UPLOAD_THREADS = 8


class _CardReadError(Exception):
    """A read of the card failed while streaming an upload (kept apart from the storage's errors)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _card_blocks(source: bytes, chunk_bytes: int) -> Iterator[bytes]:
    """The card file in blocks; a failed read is raised as :class:`_CardReadError`, not as an
    ``OSError`` the storage adapter would take for its own."""
    try:
        fd = _open_source(source)
        _evict(fd)  # read 2 comes from the card, not from read 1's pages (an independent read)
    except OSError as exc:
        raise _CardReadError(exc) from exc
    try:
        while True:
            try:
                block = os.read(fd, chunk_bytes)
            except OSError as exc:
                raise _CardReadError(exc) from exc
            if not block:
                return
            yield block
    finally:
        os.close(fd)


def _card_problem(exc: OSError, source: bytes) -> Exception:
    """The same classification as a local copy (:func:`fieldkit.ingest.copy._classify`)."""
    name = os.fsdecode(source)
    if exc.errno in _GONE:
        return CardRemovedError(
            f"{name} vanished while it was being read (card removed?): {exc.strerror}.",
            hint="Re-insert the card and run the same ingest again; it resumes where it stopped.")
    return CopyFailure("read_error", f"{name}: {exc.strerror or exc} while reading the card "
                                     f"(errno {exc.errno or errno.EIO}).")


def _suffixed(rel: str, sha256: str) -> str:
    stem, dot, ext = rel.rpartition(".")
    return f"{stem}__{sha256[:12]}.{ext}" if dot and "/" not in ext else f"{rel}__{sha256[:12]}"


def _store(root: Root, source: bytes, name: str, rel: str, sha256: str, size: int,
           chunk_bytes: int) -> tuple[str, bool] | None:
    """Store the card file at ``rel`` or adopt an identical object there.

    Returns ``(rel, adopted)``, or None when ``rel`` holds other content (or read back wrong).
    """
    try:
        streamed = root.put_new(rel, _card_blocks(source, chunk_bytes))
    except ObjectExistsError:
        if root.sha256(rel, expected_size=size) == (sha256, size):
            log.info("%s: adopted %s, already stored with this content (an earlier, interrupted run)",
                     name, root.uri(rel))
            return rel, True
        return None
    except _CardReadError as exc:
        raise _card_problem(exc.error, source) from exc.error
    if streamed != (sha256, size):
        raise CopyFailure("source_unstable", f"{name}: two reads of the card disagree ({sha256} then "
                                             f"{streamed[0]}); never marked verified ({root.uri(rel)} is "
                                             "kept as stored, not catalogued).")
    found = root.sha256(rel, expected_size=size)
    if found != (sha256, size):
        log.warning("%s reads back as %s (%d B), not %s (%d B); storing it again under another name",
                    root.uri(rel), found[0][:12], found[1], sha256[:12], size)
        return None
    return rel, False


def _hash_card(ctx: BatchContext, card_root: bytes, card: CardFile) -> tuple[str, int]:
    """Read 1 of the card file (evicted from the page cache first), with the configured retries."""
    source = card_root + b"/" + card.raw_path
    last: CopyFailure | None = None
    for _ in range(ctx.retries + 1):
        try:
            sha256, size = hash_file(source, ctx.chunk_bytes, evict=True)
        except OSError as exc:
            problem = _card_problem(exc, source)
            if not isinstance(problem, CopyFailure):
                raise problem from exc
            last = problem
            continue
        if size != card.size_bytes:
            raise CopyFailure("source_unstable", f"{os.fsdecode(source)}: {size} bytes read, {card.size_bytes} "
                                                 "listed at inventory; the file changed on the card.")
        return sha256, size
    raise last  # type: ignore[misc]


def upload_one(ctx: BatchContext, root: Root, card_root: bytes, card: CardFile, rel: str, sha256: str,
               size: int) -> str:
    """Store one card file (hashed already) at ``rel``, or at its hash-suffixed name; return where.

    Raises :class:`CopyFailure` for this file, :class:`CardRemovedError` or a storage error to stop.
    """
    source = card_root + b"/" + card.raw_path
    name = os.fsdecode(source)
    last: CopyFailure | None = None
    for _ in range(ctx.retries + 1):
        try:
            for target in dict.fromkeys([rel, _suffixed(rel, sha256)]):
                stored = _store(root, source, name, target, sha256, size, ctx.chunk_bytes)
                if stored is not None:
                    return stored[0]
        except CopyFailure as failure:
            last = failure
            if failure.reason == "source_unstable":
                break
            continue
        last = CopyFailure("verify_mismatch", f"{name}: neither {root.uri(rel)} nor its hash-suffixed name "
                                              "could hold a copy that reads back with the card's hash.")
        break
    raise last if last is not None else IngestError(f"{name}: not copied.")


def upload_batch(ctx: BatchContext, root: Root, card_root: bytes, files: list[CardFile],
                 s_read) -> tuple[list[Placed], list[Failure]]:
    """Upload and verify each file of a batch; returns placed files and per-file failures.

    Three steps: hash every card file (in parallel); decide, in card order, which content is
    already archived or repeated in the batch (stored once) and which name each new one gets
    (names taken in the catalogue or earlier in the batch get the hash suffix); then upload and
    read back the new ones in parallel (:data:`UPLOAD_THREADS`). Distinct contents under
    distinct names: no two uploads of a batch can race for a name or store the same bytes twice.
    """
    failed: list[Failure] = []
    with ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="fieldkit-upload") as pool:
        hashes = _settle(files, pool.map(_catching, [(_hash_card, ctx, card_root, card) for card in files]), failed)
        known = {**writes.recordings_by_sha(s_read, list({h for h, _ in hashes.values()})),
                 **{h: (None, path) for h, path in ctx.inflight.items()}}
        wanted = {card.raw_path: archive_relpath(ctx.site, ctx.deployment, card.raw_path) for card in files}
        ctx.placed_names |= writes.archive_paths_taken(s_read, list(wanted.values()))
        plan: dict[bytes, tuple[CardFile, str]] = {}
        duplicates: list[Placed] = []
        for card in files:
            if card.raw_path not in hashes:
                continue
            sha256, _ = hashes[card.raw_path]
            if sha256 in known:  # the same content is archived already (another card, a re-run): one copy
                duplicates.append(Placed(card, sha256, ""))
                continue
            rel = wanted[card.raw_path]
            if rel.casefold() in ctx.placed_names:
                rel = _suffixed(rel, sha256)
            ctx.placed_names.add(rel.casefold())
            known[sha256] = (None, rel)
            plan[card.raw_path] = (card, rel)
        jobs = [(upload_one, ctx, root, card_root, card, rel, *hashes[card.raw_path]) for card, rel in plan.values()]
        stored = _settle([card for card, _ in plan.values()], pool.map(_catching, jobs), failed)
    placed = []
    for card in files:  # card order, as a local ingest
        if card.raw_path in stored:
            rel = stored[card.raw_path]
            ctx.placed_names.add(rel.casefold())
            ctx.inflight[hashes[card.raw_path][0]] = rel
            placed.append(Placed(card, hashes[card.raw_path][0], rel))
    placed += duplicates
    return placed, failed


def _catching(job: tuple) -> tuple[bool, object]:
    """Run ``job`` (a function and its arguments) in a worker thread; return (ok, result or error)."""
    try:
        return True, job[0](*job[1:])
    except BaseException as exc:  # noqa: BLE001 - re-raised or recorded by _settle, in the calling thread
        return False, exc


def _settle(files: list[CardFile], results, failed: list[Failure]) -> dict[bytes, object]:
    """Results by card path; a file's :class:`CopyFailure` is recorded, anything else re-raised."""
    out: dict[bytes, object] = {}
    stop: BaseException | None = None
    for card, (ok, value) in zip(files, results, strict=True):
        if ok:
            out[card.raw_path] = value
        elif isinstance(value, CopyFailure):
            failed.append((card, value))
        elif stop is None:
            stop = value  # the first stop (card removed, storage away) after every job has ended
    if stop is not None:
        raise stop
    return out
