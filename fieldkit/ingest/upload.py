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

from fieldkit.catalogue import writes
from fieldkit.errors import IngestError, ObjectExistsError
from fieldkit.ingest.batch import BatchContext, Failure, Placed
from fieldkit.ingest.copy import _GONE, CardRemovedError, CopyFailure, _open_source, hash_file
from fieldkit.ingest.inventory import CardFile
from fieldkit.ingest.naming import archive_relpath
from fieldkit.io.storage import Root

__all__ = ["upload_batch", "upload_one"]

log = logging.getLogger(__name__)


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
        if root.sha256(rel) == (sha256, size):
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
    found = root.sha256(rel)
    if found != (sha256, size):
        log.warning("%s reads back as %s (%d B), not %s (%d B); storing it again under another name",
                    root.uri(rel), found[0][:12], found[1], sha256[:12], size)
        return None
    return rel, False


def upload_one(ctx: BatchContext, root: Root, card_root: bytes, card: CardFile, known: dict,
               rel: str) -> Placed:
    """Verify-copy one card file into ``root`` (see the module docstring); raise :class:`CopyFailure`
    for this file, :class:`CardRemovedError` or a storage error to stop."""
    source = card_root + b"/" + card.raw_path
    name = os.fsdecode(source)
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
            raise CopyFailure("source_unstable", f"{name}: {size} bytes read, {card.size_bytes} listed at "
                                                 "inventory; the file changed on the card.")
        if sha256 in known:  # the same content is archived already (another card, a re-run): one copy
            return Placed(card, sha256, "")
        if rel.casefold() in ctx.placed_names:  # taken in the catalogue or earlier in this batch
            rel = _suffixed(rel, sha256)
        try:
            for target in dict.fromkeys([rel, _suffixed(rel, sha256)]):
                stored = _store(root, source, name, target, sha256, size, ctx.chunk_bytes)
                if stored is not None:
                    ctx.placed_names.add(stored[0].casefold())
                    ctx.inflight[sha256] = stored[0]
                    known[sha256] = (None, stored[0])
                    return Placed(card, sha256, stored[0])
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
    """Upload and verify each file of a batch; returns placed files and per-file failures."""
    wanted = {card.raw_path: archive_relpath(ctx.site, ctx.deployment, card.raw_path) for card in files}
    ctx.placed_names |= writes.archive_paths_taken(s_read, list(wanted.values()))
    placed: list[Placed] = []
    failed: list[Failure] = []
    # a file's hash is known only once the card was read: one catalogue look-up per new hash
    known = _Known({h: (None, path) for h, path in ctx.inflight.items()}, s_read)
    for card in files:
        try:
            placed.append(upload_one(ctx, root, card_root, card, known, wanted[card.raw_path]))
        except CopyFailure as failure:
            failed.append((card, failure))
    return placed, failed


class _Known(dict):
    """``sha256 in known``: in this run's uploads, else in the catalogue (asked once per hash)."""

    def __init__(self, inflight: dict, s_read) -> None:
        super().__init__()
        self.inflight = inflight
        self.s_read = s_read

    def __contains__(self, sha256: object) -> bool:
        if sha256 in self.inflight:
            return True
        found = writes.recordings_by_sha(self.s_read, [sha256])
        self.inflight.update(found)
        return sha256 in found

    def __setitem__(self, sha256, value) -> None:
        self.inflight[sha256] = value
