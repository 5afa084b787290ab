"""A catalogue that cannot be written through: what ``fieldkit serve`` reads from.

The guarantee is the database's, not fieldkit's good behaviour: SQLite is opened with a
``file:...?mode=ro`` URI (plus ``PRAGMA query_only``), so any write fails with "attempt to write
a readonly database"; every PostgreSQL session runs ``SET SESSION CHARACTERISTICS AS
TRANSACTION READ ONLY``, so any write fails with "cannot execute ... in a read-only transaction".
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import QueuePool

from fieldkit.catalogue.engine import Catalogue, is_sqlite
from fieldkit.catalogue.sqlite_reader import read_only_connection
from fieldkit.errors import CatalogueError

__all__ = ["read_only_engine", "open_read_only"]


def _sqlite_read_only(url: str) -> Engine:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise CatalogueError(f"the catalogue {url} is not a file; a read-only view needs one.")

    def connect() -> sqlite3.Connection:
        # Threads of the web server share the pool; a connection is used by one thread at a time.
        return read_only_connection(Path(database), check_same_thread=False)

    return sa.create_engine("sqlite://", creator=connect, poolclass=QueuePool, pool_size=4, max_overflow=8)


def _postgres_read_only(url: str) -> Engine:
    engine = sa.create_engine(url, pool_pre_ping=True)

    @event.listens_for(engine, "connect")
    def read_only_session(dbapi_connection: Any, _record: Any) -> None:
        # Outside a transaction, so that the setting holds for the whole session.
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        dbapi_connection.autocommit = autocommit

    return engine


def read_only_engine(url: str) -> Engine:
    """An engine on the catalogue at ``url`` through which nothing can be written.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of an SQLite file or a PostgreSQL database.

    Returns
    -------
    Engine
        SQLite: ``mode=ro`` connections with ``query_only``; PostgreSQL: read-only sessions.
    """
    return _sqlite_read_only(url) if is_sqlite(url) else _postgres_read_only(url)


def open_read_only(url: str) -> Catalogue:
    """A :class:`Catalogue` handle whose every session is read-only (see :func:`read_only_engine`)."""
    return Catalogue(url, engine=read_only_engine(url))
