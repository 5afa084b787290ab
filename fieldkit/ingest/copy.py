"""The verified copy of one file: hash while streaming into staging, fsync, re-read, compare, place.

Per file (why each step: docs/notes/durability.md): the card is opened read-only; bytes are
hashed while they stream into ``archive/.staging/<session>/<n>.partial`` (created with
``O_EXCL``); the copy is fsynced, evicted from the page cache and re-read; the source is read a
second time, independently. Only when all three SHA-256 digests agree is the copy linked into its
final place — ``os.link`` never overwrites, unlike ``rename`` — after which the caller fsyncs the
directory and only then commits the catalogue row.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import errno
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from fieldkit.errors import EXIT_TEMPFAIL, IngestError, InsufficientSpaceError
from fieldkit.io.durable import fsync_file

__all__ = ["CopyFailure", "CardRemovedError", "StagedCopy", "stage_copy", "stage_unsynced", "verify_staged",
           "syncfs", "fsync_file", "place", "hash_file"]

_GONE = {errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.ESTALE}
try:
    _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    _LIBC.syncfs.argtypes = [ctypes.c_int]
except (OSError, AttributeError):  # not Linux: os.sync() instead
    _LIBC = None


class CopyFailure(Exception):
    """This file could not be copied and verified; the batch carries on (``reason`` is a code)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class CardRemovedError(IngestError):
    """The card (or the file's directory) vanished mid-copy: stop cleanly, resume later.

    Exit 75 (temporary: re-insert and run again), not 1, which says "a bug".
    """

    exit_code = EXIT_TEMPFAIL


@dataclass(frozen=True)
class StagedCopy:
    partial: Path
    sha256: str
    size_bytes: int


def _open_source(path: bytes) -> int:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags | getattr(os, "O_NOATIME", 0))
    except PermissionError:  # O_NOATIME needs ownership; fall back
        return os.open(path, flags)


def _evict(fd: int) -> None:
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def hash_file(path: bytes | str | os.PathLike, chunk_bytes: int = 4 << 20, *, evict: bool = False) -> tuple[str, int]:
    """SHA-256 and size of a file, read in blocks (optionally evicted from the page cache first)."""
    fd = _open_source(os.fsencode(path))
    try:
        if evict:
            _evict(fd)
        digest, size, buf = hashlib.sha256(), 0, bytearray(_buffer_size(fd, chunk_bytes))
        view = memoryview(buf)
        while n := os.readv(fd, [buf]):
            digest.update(view[:n])
            size += n
        return digest.hexdigest(), size
    finally:
        os.close(fd)


def _buffer_size(fd: int, chunk_bytes: int) -> int:
    """No bigger than the file (+1 to see EOF in one read): small files are the common case."""
    return max(4096, min(chunk_bytes, os.fstat(fd).st_size + 1))


def _stream(src_fd: int, dst_fd: int, chunk_bytes: int) -> tuple[str, int]:
    digest, size, buf = hashlib.sha256(), 0, bytearray(_buffer_size(src_fd, chunk_bytes))
    view = memoryview(buf)
    while n := os.readv(src_fd, [buf]):
        digest.update(view[:n])
        written = 0
        while written < n:
            written += os.write(dst_fd, view[written:n])
        size += n
    return digest.hexdigest(), size


def _copy_once(source: bytes, partial: Path, chunk_bytes: int, do_fsync: bool,
               expected_mtime: dt.datetime | None = None) -> tuple[str, int]:
    src = _open_source(source)
    try:
        dst = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            result = _stream(src, dst, chunk_bytes)
            if do_fsync:
                os.fsync(dst)
        finally:
            os.close(dst)
        _same_as_inventory(source, os.fstat(src), result, expected_mtime)
        return result
    finally:
        os.close(src)


def _same_as_inventory(source: bytes, st: os.stat_result, result: tuple[str, int],
                       expected_mtime: dt.datetime | None) -> None:
    """C3: a file rewritten on the card after the inventory keeps its size but not its mtime.

    Its new bytes read consistently, so the two reads agree; only the modification time
    (compared as the inventory took it) shows that what was copied is not what was listed.
    """
    if expected_mtime is None:
        return
    now = dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc)
    if now != expected_mtime:
        raise CopyFailure("source_unstable", f"{os.fsdecode(source)} changed on the card after the inventory "
                                             f"(modified {expected_mtime.isoformat()} at inventory, "
                                             f"{now.isoformat()} when copied; read as {result[0]}, "
                                             f"{result[1]} bytes); never marked verified.")


def _classify(exc: OSError, source: bytes, partial: Path) -> Exception:
    partial.unlink(missing_ok=True)
    name = os.fsdecode(source)
    if exc.errno == errno.ENOSPC:
        return InsufficientSpaceError(
            f"the archive's disk filled up while copying {name}; the partial copy was removed.",
            hint="Free space on the archive volume, then run the same ingest again to resume.")
    if exc.errno in _GONE:
        return CardRemovedError(
            f"{name} vanished while it was being copied (card removed?): {exc.strerror}.",
            hint="Re-insert the card and run the same ingest again; it resumes where it stopped.")
    return CopyFailure("read_error", f"{name}: {exc.strerror} while copying (errno {exc.errno}).")


def stage_copy(source: bytes, partial: Path, expected_size: int, *, chunk_bytes: int = 4 << 20,
               do_fsync: bool = True, retries: int = 2, expected_mtime: dt.datetime | None = None) -> StagedCopy:
    """Copy ``source`` to ``partial`` and prove the copy and the source agree, or raise.

    Raises :class:`CopyFailure` for this file only (``read_error``, ``source_unstable``,
    ``verify_mismatch``), :class:`CardRemovedError` or :class:`InsufficientSpaceError` to stop.
    """
    last: CopyFailure | None = None
    for _ in range(retries + 1):
        try:
            return _verified_copy(source, partial, expected_size, chunk_bytes, do_fsync, expected_mtime)
        except OSError as exc:
            err = _classify(exc, source, partial)
            if not isinstance(err, CopyFailure):
                raise err from exc
            last = err
        except CopyFailure as failure:
            partial.unlink(missing_ok=True)
            last = failure
            if failure.reason == "source_unstable":
                break
    raise last  # type: ignore[misc]


def _verified_copy(source: bytes, partial: Path, expected_size: int, chunk_bytes: int,
                   do_fsync: bool, expected_mtime: dt.datetime | None = None) -> StagedCopy:
    first, size = _copy_once(source, partial, chunk_bytes, do_fsync, expected_mtime)
    name = os.fsdecode(source)
    if size != expected_size:
        raise CopyFailure("source_unstable", f"{name}: {size} bytes read, {expected_size} listed at "
                                             "inventory; the file changed on the card.")
    copy_hash, copy_size = hash_file(partial, chunk_bytes, evict=True)
    if (copy_hash, copy_size) != (first, size):
        raise CopyFailure("verify_mismatch", f"{name}: the archived copy reads back as {copy_hash[:12]}… "
                                             f"({copy_size} B), the source streamed {first[:12]}… ({size} B).")
    again, _ = hash_file(source, chunk_bytes, evict=True)
    if again != first:
        raise CopyFailure("source_unstable", f"{name}: two reads of the card disagree "
                                             f"({first} then {again}); never marked verified.")
    return StagedCopy(partial, first, size)


def stage_unsynced(source: bytes, partial: Path, expected_size: int, chunk_bytes: int = 4 << 20,
                   expected_mtime: dt.datetime | None = None) -> StagedCopy:
    """First half of a batched verified copy: stream and hash, no fsync (see :func:`syncfs`)."""
    try:
        digest, size = _copy_once(source, partial, chunk_bytes, False, expected_mtime)
    except OSError as exc:
        raise _classify(exc, source, partial) from exc
    except CopyFailure:
        partial.unlink(missing_ok=True)
        raise
    if size != expected_size:
        partial.unlink(missing_ok=True)
        raise CopyFailure("source_unstable", f"{os.fsdecode(source)}: {size} bytes read, {expected_size} "
                                             "listed at inventory; the file changed on the card.")
    return StagedCopy(partial, digest, size)


def verify_staged(source: bytes, staged: StagedCopy, chunk_bytes: int = 4 << 20) -> None:
    """Second half: after the batch is durable, re-read the copy and the source and compare."""
    name = os.fsdecode(source)
    copy_hash, copy_size = hash_file(staged.partial, chunk_bytes, evict=True)
    if (copy_hash, copy_size) != (staged.sha256, staged.size_bytes):
        raise CopyFailure("verify_mismatch", f"{name}: the archived copy reads back as {copy_hash[:12]}… "
                                             f"({copy_size} B), the source streamed {staged.sha256[:12]}….")
    try:
        again, _ = hash_file(source, chunk_bytes, evict=True)
    except OSError as exc:
        raise _classify(exc, source, staged.partial) from exc
    if again != staged.sha256:
        raise CopyFailure("source_unstable", f"{name}: two reads of the card disagree "
                                             f"({staged.sha256} then {again}); never marked verified.")


def syncfs(folder: Path) -> None:
    """Flush every dirty page of the filesystem holding ``folder`` (one call for a whole batch)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if _LIBC is not None and _LIBC.syncfs(fd) == 0:
            return
        os.sync()
    finally:
        os.close(fd)


def place(staged: StagedCopy, final: Path, chunk_bytes: int = 4 << 20) -> tuple[Path, bool]:
    """Link the staged copy to ``final`` without overwriting; returns (path, adopted_existing).

    If ``final`` exists with the same content (an orphan of an interrupted run), it is adopted.
    If it exists with other content, a name with the hash is used instead: never overwritten.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    candidates = [final, final.with_name(f"{final.stem}__{staged.sha256[:12]}{final.suffix}")]
    for target in candidates:
        try:
            os.link(staged.partial, target)
        except FileExistsError:
            if hash_file(target, chunk_bytes)[0] == staged.sha256:
                staged.partial.unlink(missing_ok=True)
                return target, True
            continue
        staged.partial.unlink()
        os.chmod(target, 0o444)
        return target, False
    raise IngestError(f"could not place {staged.partial} at {final}: both {final.name} and its "
                      "hash-suffixed name hold other content.", hint="Run 'fieldkit verify'.")
