"""Opening the catalogue: engines, sessions, SQLite pragmas and writer transactions.

SQLite connections run in WAL mode with foreign keys on and a busy timeout, and pysqlite's own
implicit ``BEGIN`` is disabled so that fieldkit emits it itself: ``BEGIN`` for readers and
``BEGIN IMMEDIATE`` for writers, which take the write lock up front instead of failing halfway
with "database is locked". Nothing else in fieldkit depends on the backend being SQLite.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from fieldkit.catalogue import sqlite_reader
from fieldkit.catalogue.retry import transient_kind, unavailable
from fieldkit.errors import CatalogueBusyError, OutputUnavailableError

__all__ = ["Catalogue", "make_engine", "is_sqlite"]


def is_sqlite(url: str | sa.URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, foreign_keys: bool = True, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, busy timeout and explicit BEGINs."""
    if not is_sqlite(url):
        if make_url(url).get_backend_name() == "postgresql":
            # names fieldkit's sessions in pg_stat_activity (for the DBA; H4's tests terminate them)
            kwargs["connect_args"] = {"application_name": "fieldkit", **kwargs.get("connect_args", {})}
        return sa.create_engine(url, pool_pre_ping=True, **kwargs)
    _refuse_non_database(url)
    engine = sa.create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect(foreign_keys, url))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_on_connect(foreign_keys: bool, url: str):
    def on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={sqlite_reader.BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a row marked 'verified' must survive power loss (docs/notes/durability.md).
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        except sqlite3.OperationalError as exc:
            database = make_url(url).database
            if database and database != ":memory:":
                sqlite_reader.raise_if_volume_full(exc, Path(database))
            raise
        finally:
            cursor.close()

    return on_connect


def _sqlite_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _refuse_non_database(url: str) -> None:
    """H2: refuse to open a file that exists but is not an SQLite database."""
    database = make_url(url).database
    if database and database != ":memory:":
        sqlite_reader.refuse_non_database(Path(database))


class Catalogue:
    """A handle on one catalogue database: sessions for reading and for writing."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE") if is_sqlite(url) else self.engine
        )
        self._writers = sessionmaker(self._writer_engine, expire_on_commit=False)
        # H2: an SQLite catalogue is checked once, before its first write (integrity.py).
        self._checked = not is_sqlite(url)
        self._check_lock = threading.Lock()

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; WAL readers never block writers."""
        with _translate_locked(self.url), self._sessions() as session:
            yield session

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one writer transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit.

        The first call on an SQLite catalogue checks it first (``quick_check``,
        ``foreign_key_check``) and raises :class:`~fieldkit.errors.CatalogueDamagedError`
        without writing anything when it is damaged.
        """
        if not self._checked:
            self.check_before_writing()
        with _translate_locked(self.url), self._writers() as session, session.begin():
            yield session

    def check_before_writing(self) -> None:
        """Run the integrity check of :mod:`fieldkit.catalogue.integrity` (once per handle)."""
        from fieldkit.catalogue.integrity import check_before_writing

        with self._check_lock:
            if self._checked:
                return
            with _translate_locked(self.url), self.engine.connect() as conn:
                check_before_writing(conn.connection.driver_connection, self.url)
            self._checked = True

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()


@contextlib.contextmanager
def _translate_locked(url: str) -> Iterator[None]:
    try:
        yield
    except sa.exc.OperationalError as exc:
        if not is_sqlite(url) and transient_kind(exc) == "connection":
            # H4: a server out of reach or a connection lost; writers retry it (retry.py)
            raise unavailable(url, exc) from exc
        text = str(exc.orig).lower()
        if "locked" in text or "busy" in text:
            raise CatalogueBusyError(
                f"the catalogue {make_url(url).render_as_string(hide_password=True)} stayed locked "
                f"by another fieldkit process for {sqlite_reader.BUSY_TIMEOUT_MS / 1000:.0f} s.",
                hint="Wait for the other command to finish, then run this one again.",
            ) from exc
        if "disk is full" in text or "database or disk is full" in text or (
                "disk i/o error" in text and _volume_full(url)):
            # A full volume can also surface as SQLITE_IOERR: creating the -shm or -wal file of
            # a WAL catalogue fails before any write could report SQLITE_FULL.
            raise OutputUnavailableError(
                f"the catalogue's disk is full ({exc.orig}); the transaction was rolled back.",
                hint="Free space on the catalogue's volume and run the command again.",
                path=make_url(url).database,
            ) from exc
        raise


def _volume_full(url: str) -> bool:
    """Whether the volume of an SQLite catalogue is (nearly) full."""
    database = make_url(url).database if is_sqlite(url) else None
    return bool(database) and database != ":memory:" and sqlite_reader.volume_full(Path(database))
