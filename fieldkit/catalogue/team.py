"""A catalogue shared by a team on PostgreSQL: joining it, and locks that hold across machines.

Several workspaces (one per person or machine) may name the same PostgreSQL catalogue. The first
``fieldkit init --catalogue-url`` creates its schema; the next ones *join* it: they migrate it
only when it is behind this fieldkit, never re-create or wipe it. Concurrent inits are serialised
by an advisory lock, so two people initialising at once do not race the migration.

Locks are PostgreSQL **session-level advisory locks** keyed on a stable 64-bit hash of a name
(``ingest``, ``card:<identity>``). The server releases them when the holding connection ends, so
a process killed with SIGKILL on any machine leaves no stale lock. The holder describes itself in
its connection's ``application_name`` (host, pid, since), which a refused process reads from
``pg_stat_activity`` for its message. SQLite catalogues never use this module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from fieldkit.catalogue.engine import make_engine
from fieldkit.catalogue.retry import transient_kind, unavailable

__all__ = ["AdvisoryLock", "LockHeld", "SharedCatalogue", "lock_key", "prepare_shared_catalogue"]

#: Prefix of the ``application_name`` of a connection holding a fieldkit advisory lock.
LOCK_APPLICATION = "fieldkit-lock"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (the same on every machine and Python)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class LockHeld:
    """Who holds an advisory lock, as its connection describes itself."""

    host: str
    pid: str
    since: str
    command: str

    def describe(self) -> str:
        return f"{self.command} by pid {self.pid}, host {self.host}, since {self.since}"


class AdvisoryLock:
    """``with AdvisoryLock(url, name).acquire(): ...`` on a connection of its own.

    ``acquire(wait=False)`` refuses at once when another session holds the lock (the caller
    raises with :meth:`holder`); ``wait=True`` polls until it is free, calling ``on_wait`` once
    with the holder.
    """

    def __init__(self, url: str, name: str, *, command: str = "ingest") -> None:
        self.url = url
        self.name = name
        self.key = lock_key(name)
        since = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        # application_name is cut at 63 bytes by the server: the host goes last and may be cut.
        self.application = f"{LOCK_APPLICATION} {command} {os.getpid()} {since} {socket.gethostname()}"[:63]
        self._engine: sa.Engine | None = None
        self._conn: sa.Connection | None = None

    def _connect(self) -> sa.Connection:
        self._engine = make_engine(self.url, poolclass=NullPool,
                                   connect_args={"application_name": self.application})
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return conn

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False when another session holds it."""
        if self._conn is None:
            self._conn = self._connect()
        return bool(self._conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}))

    def acquire(self, *, wait: bool = False, on_wait: Callable[[LockHeld | None], None] | None = None,
                poll_s: float = 0.5) -> bool:
        """Take the lock; returns False (not waiting) when it is held elsewhere."""
        told = False
        while not self.try_acquire():
            if not wait:
                return False
            if not told and on_wait is not None:
                on_wait(self.holder())
                told = True
            time.sleep(poll_s)
        return True

    def holder(self) -> LockHeld | None:
        """The session holding this lock, from ``pg_locks`` and its ``application_name``."""
        conn = self._conn or self._connect()
        unsigned = self.key & 0xFFFFFFFFFFFFFFFF
        row = conn.execute(sa.text(
            "SELECT a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}).first()
        if self._conn is None:
            conn.close()
        if row is None:
            return None
        parts = (row[0] or "").split(" ", 4)
        if len(parts) == 5 and parts[0] == LOCK_APPLICATION:
            return LockHeld(host=parts[4], pid=parts[2], since=parts[3], command=parts[1])
        return LockHeld(host="?", pid="?", since=str(row[1]), command=row[0] or "another session")

    def held(self) -> bool:
        """True while this lock's own session still holds it; False once its connection has ended
        (``pg_terminate_backend``, a server restart, the network), which drops the lock with it."""
        if self._conn is None:
            return False
        unsigned = self.key & 0xFFFFFFFFFFFFFFFF
        try:
            return bool(self._conn.scalar(sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND classid = :hi AND objid = :lo AND objsubid = 1)"),
                {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}))
        except sa.exc.DBAPIError:  # the connection is gone, and the lock with it
            self._conn.invalidate()
            self._conn.close()
            self._conn = None  # nothing left to unlock (release() only disposes of the engine)
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            except sa.exc.DBAPIError:  # the connection is gone: the server released the lock with it
                pass
            finally:
                self._conn.close()
                self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


@dataclass(frozen=True)
class SharedCatalogue:
    """What ``fieldkit init`` did to a server catalogue: created it, joined it, or migrated it."""

    state: str  # "created", "joined" or "migrated"
    revision: str
    previous_revision: str | None
    recordings: int

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "revision": self.revision, "previous_revision": self.previous_revision,
                "recordings": self.recordings}


def prepare_shared_catalogue(url: str) -> SharedCatalogue:
    """Create the catalogue at ``url``, or join it: migrate only when it is behind this fieldkit.

    Raises
    ------
    MigrationError
        When the catalogue's schema is newer than this fieldkit (a teammate upgraded first).
    CatalogueUnavailableError
        When the server cannot be reached (exit 75).
    """
    try:
        return _prepare(url)
    except sa.exc.OperationalError as exc:
        if transient_kind(exc) == "connection":
            raise unavailable(url, exc) from exc
        raise


def _prepare(url: str) -> SharedCatalogue:
    from alembic.script import ScriptDirectory

    from fieldkit.catalogue import migrate
    from fieldkit.catalogue.models import Recording
    from fieldkit.catalogue.revisions import current_revision
    from fieldkit.errors import MigrationError

    lock = AdvisoryLock(url, "migrate", command="init")
    lock.acquire(wait=True)
    engine = make_engine(url, poolclass=NullPool)
    try:
        before = current_revision(engine)
        head = migrate.head()
        if before is not None and before != head:
            script = ScriptDirectory.from_config(migrate.alembic_config(url))
            if before not in {r.revision for r in script.walk_revisions()}:
                raise MigrationError(
                    f"the shared catalogue is at schema revision {before}, which this fieldkit does not know "
                    f"(its newest is {head}): a teammate's fieldkit is newer.",
                    hint="Upgrade fieldkit on this machine, then run 'fieldkit init' again.")
        if before != head:
            migrate.upgrade(url)
        with engine.connect() as conn:
            recordings = conn.scalar(sa.select(sa.func.count()).select_from(Recording.__table__)) or 0
    finally:
        engine.dispose()
        lock.release()
    state = "created" if before is None else "joined" if before == head else "migrated"
    return SharedCatalogue(state, head, before, int(recordings))
