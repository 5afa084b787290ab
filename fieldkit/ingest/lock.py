"""The ingest lock: one ingest (or verify) per archive at a time, in a file beside the archive
(SQLite), or in the team catalogue itself (PostgreSQL, :func:`ingest_lock`).

The lock is a file, not a database row, so it works whatever the catalogue backend and even
when the catalogue is locked or broken (docs/reliability.md, E1). It is an OS lock (``flock``) on
``archive/.ingest.lock``, and the file records who holds it (pid, host, since) for the message a
second run prints. Because the kernel releases an ``flock`` when its process dies, a run killed
with SIGKILL leaves no stale lock on a local disk: the next run takes over and recovers. Where
``flock`` is not supported (some network filesystems) the lock falls back to an exclusively
created file; a stale one (its process is dead) is then cleared only with ``--break-lock``.

On a PostgreSQL catalogue, shared by workspaces on several machines, a file lock on one
machine's disk serialises nothing; there the catalogue's advisory locks do
(:class:`CatalogueIngestLock`): one on the card's identity, refused at once with the holder's
host, pid and start, and one on ingesting into the catalogue, waited for, so that two laptops
ingesting two cards into one archive both complete, one after the other. The server drops both
when the holding connection ends: a killed process leaves no stale lock on any machine. The
holder re-checks both before committing each batch (:meth:`CatalogueIngestLock.verify`), so a lock
lost with its connection while the ingest goes on stops it instead of letting a second one in.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fieldkit.errors import IngestLockedError

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["IngestLock", "LockHolder", "CatalogueIngestLock", "ingest_lock"]

log = logging.getLogger(__name__)

_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    since: str
    command: str

    def alive(self) -> bool:
        """True unless the holder is a process on this host that no longer exists."""
        if self.host != socket.gethostname():
            return True  # cannot tell: assume alive
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class IngestLock:
    """``with IngestLock(path): ...`` — exclusive, with a helpful refusal."""

    def __init__(self, path: Path, *, break_stale: bool = False, command: str = "ingest") -> None:
        self.path = Path(path)
        self.break_stale = break_stale
        self.command = command
        self._fd: int | None = None
        self.previous: LockHolder | None = None  # a holder that died without releasing

    def holder(self) -> LockHolder | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "null")
        except FileNotFoundError:
            return None
        except ValueError:
            return LockHolder(-1, "?", "?", "unreadable lock file")
        if not data:
            return None
        return LockHolder(int(data["pid"]), str(data["host"]), str(data["since"]), str(data.get("command", "")))

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self._refuse(self.holder())
        except OSError as exc:
            os.close(fd)
            if exc.errno not in _NO_FLOCK:
                raise
            self._acquire_without_flock()
            return
        self.previous = self.holder()
        self._fd = fd
        self._write_record(fd)

    def _write_record(self, fd: int) -> None:
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                  "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)

    def _acquire_without_flock(self) -> None:
        holder = self.holder()
        if holder is not None:
            if holder.alive() or not self.break_stale:
                self._refuse(holder)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self._fd = fd
        self._write_record(fd)

    def _refuse(self, holder: LockHolder | None) -> None:
        if holder is None or holder.alive():
            who = f"pid {holder.pid}, host {holder.host}, since {holder.since}" if holder else "unknown holder"
            raise IngestLockedError(
                f"ingest in progress ({who}); lock file {self.path}.",
                hint="Wait for it to finish, then run this command again.")
        raise IngestLockedError(
            f"a stale ingest lock remains (pid {holder.pid} on {holder.host} since {holder.since} "
            f"is no longer running); lock file {self.path}.",
            hint="If no other ingest is running, run again with --break-lock.")

    def verify(self) -> None:
        """Nothing to check: the kernel holds an ``flock`` as long as this process keeps the file open."""

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # an empty lock file means "free"; never unlinked (races)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> IngestLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class CatalogueIngestLock:
    """The ingest lock of a PostgreSQL catalogue: the card's, refused when held; the catalogue's,
    waited for. Always taken in that order (card, then catalogue), so two processes never wait
    for each other in a cycle."""

    def __init__(self, url: str, *, card: str | None, command: str = "ingest") -> None:
        from fieldkit.catalogue.team import AdvisoryLock  # SQLAlchemy only where the catalogue is a server

        self.url = url
        self.card = card
        self._card = AdvisoryLock(url, f"card:{card}", command=command) if card else None
        self._ingest = AdvisoryLock(url, "ingest", command=command)

    def acquire(self) -> None:
        from fieldkit.config.settings import redact_url

        if self._card is not None and not self._card.acquire():
            holder = self._card.holder()
            self._card.release()
            who = holder.describe() if holder else "another fieldkit"
            raise IngestLockedError(
                f"card {self.card} is being ingested ({who}); its lock is held in the team catalogue "
                f"{redact_url(self.url)}.",
                hint="Wait for it to finish, then run this command again (the lock ends with that process).")

        def waiting(holder) -> None:
            log.warning("waiting for %s to finish: one ingest at a time into the team catalogue",
                        holder.describe() if holder else "another fieldkit ingest")

        try:
            self._ingest.acquire(wait=True, on_wait=waiting)
        except BaseException:
            self.release()
            raise

    def verify(self) -> None:
        """Raise :class:`IngestLockedError` (exit 75) if either advisory lock was lost with its
        connection: another ingest may have started since, so nothing more may be recorded.

        Called before each batch is committed and before the session is sealed; one query on each
        lock's connection.
        """
        lost = [lock for lock in (self._card, self._ingest) if lock is not None and not lock.held()]
        if lost:
            from fieldkit.config.settings import redact_url

            raise IngestLockedError(
                f"the ingest lock ({', '.join(lock.name for lock in lost)}) in the team catalogue "
                f"{redact_url(self.url)} was lost: its connection ended (terminated on the server, or the network "
                "went away), so another ingest may have started; this one stopped before recording its next batch.",
                hint="Run the same command again to resume: what was recorded is kept, and files copied but not yet "
                     "recorded are adopted.")

    def release(self) -> None:
        self._ingest.release()
        if self._card is not None:
            self._card.release()

    def __enter__(self) -> CatalogueIngestLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def ingest_lock(workspace: Workspace, *, card: str | None = None, command: str = "ingest",
                break_stale: bool = False) -> IngestLock | CatalogueIngestLock:
    """The lock an ingest (or a verify) of ``workspace`` takes: the file lock beside the archive on
    an SQLite catalogue, the catalogue's advisory locks on a server catalogue."""
    url = workspace.paths.catalogue_url
    if url.startswith("sqlite"):
        # beside a local archive; an object-storage archive has no folder to hold it: the workspace's
        # (one SQLite catalogue is one machine's, so a local file lock serialises its ingests)
        archive = workspace.roots.archive
        folder = workspace.paths.archive if archive.is_local else workspace.root
        return IngestLock(folder / ".ingest.lock", break_stale=break_stale, command=command)
    return CatalogueIngestLock(url, card=card, command=command)
