"""The ingest lock: one ingest (or verify) per archive at a time, in a file beside the archive.

The lock is a file, not a database row, so it works whatever the catalogue backend and even
when the catalogue is locked or broken (docs/reliability.md, E1). It is an OS lock (``flock``) on
``archive/.ingest.lock``, and the file records who holds it (pid, host, since) for the message a
second run prints. Because the kernel releases an ``flock`` when its process dies, a run killed
with SIGKILL leaves no stale lock on a local disk: the next run takes over and recovers. Where
``flock`` is not supported (some network filesystems) the lock falls back to an exclusively
created file; a stale one (its process is dead) is then cleared only with ``--break-lock``.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from fieldkit.errors import IngestLockedError

__all__ = ["IngestLock", "LockHolder"]

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
