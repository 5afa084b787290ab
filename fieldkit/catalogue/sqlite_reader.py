"""Reading an SQLite catalogue with the standard library: no SQLAlchemy import on the way.

Opening a workspace checks the catalogue's schema revision, and ``fieldkit catalog recordings``
lists recordings; on an SQLite catalogue both go through ``sqlite3`` here, so that these commands
start in a fraction of the time that importing SQLAlchemy and the ORM takes (~0.25 s; measured in
docs/notes/startup.md). The SQL itself lives in one place (:mod:`fieldkit.catalogue.listing`);
writers and every other query keep using SQLAlchemy (:mod:`fieldkit.catalogue.engine`).

The connection is read-only (``PRAGMA query_only``) and waits for a writer's lock as long as the
engine does; a missing file is never created.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fieldkit.catalogue.listing import Runner, as_utc
from fieldkit.errors import CatalogueError

__all__ = ["BUSY_TIMEOUT_MS", "open_reader", "refuse_non_database", "sqlite_database", "stamped_revision"]

BUSY_TIMEOUT_MS = 10_000

_SQLITE_PREFIXES = ("sqlite:///", "sqlite+pysqlite:///")


def sqlite_database(url: str) -> Path | None:
    """The database file of an SQLite URL (``sqlite:///path``), None for other backends or memory."""
    for prefix in _SQLITE_PREFIXES:
        if url.startswith(prefix):
            database = url[len(prefix):].split("?", 1)[0]
            return None if database in ("", ":memory:") else Path(database)
    return None


def refuse_non_database(path: Path) -> None:
    """H2: refuse to open a file that exists but is not an SQLite database."""
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as fh:
            magic = fh.read(16)
        if magic != b"SQLite format 3\x00":
            raise CatalogueError(
                f"{path} is not an SQLite database (first bytes {magic[:16]!r}); refusing to write to it.",
                hint="Restore it from a backup (catalogue.sqlite.bak-*), or move it aside and run "
                "'fieldkit db upgrade' to start a new catalogue.",
            )


@contextlib.contextmanager
def open_reader(path: Path) -> Iterator[Runner]:
    """A read-only :data:`~fieldkit.catalogue.listing.Runner` on the SQLite file ``path``."""
    refuse_non_database(path)
    # mode=rw: a missing file is an error here, never a new empty database.
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only=ON")

        def run(sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
            return [dict(row) for row in conn.execute(sql, {k: _bind(v) for k, v in params.items()})]

        yield run
    finally:
        conn.close()


def stamped_revision(path: Path) -> str | None:
    """The revision in ``alembic_version`` (as :func:`.revisions.current_revision`); None when
    the file or the table does not exist."""
    if not path.exists():
        return None
    with open_reader(path) as run:
        if not run("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'", {}):
            return None
        stamped = sorted(row["version_num"] for row in run("SELECT version_num FROM alembic_version", {}))
    return ", ".join(stamped) or None


def _bind(value: Any) -> Any:
    # Times are stored as SQLAlchemy's SQLite DateTime writes them: UTC text with microseconds,
    # which sorts and compares as the times do.
    if isinstance(value, dt.datetime):
        return as_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value
