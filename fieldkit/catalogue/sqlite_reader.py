"""Reading an SQLite catalogue with the standard library: no SQLAlchemy import on the way.

Opening a workspace checks the catalogue's schema revision, and ``fieldkit catalog recordings``
lists recordings; on an SQLite catalogue both go through ``sqlite3`` here, so that these commands
start in a fraction of the time that importing SQLAlchemy and the ORM takes (~0.25 s; measured in
docs/notes/startup.md). The SQL itself lives in one place (:mod:`fieldkit.catalogue.listing`);
writers and every other query keep using SQLAlchemy (:mod:`fieldkit.catalogue.engine`).

The connection is read-only (``mode=ro`` and ``PRAGMA query_only``; ``fieldkit serve`` opens its
connections the same way) and waits for a writer's lock as long as the engine does; a missing
file is never created.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fieldkit.catalogue.listing import Runner, as_utc
from fieldkit.errors import CatalogueError, OutputUnavailableError

__all__ = ["BUSY_TIMEOUT_MS", "open_reader", "read_only_connection", "refuse_non_database", "sqlite_database", "stamped_revision",
           "volume_full", "raise_if_volume_full"]

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


def read_only_connection(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A ``sqlite3`` connection through which nothing can be written: opened ``mode=ro`` (a
    missing file is an error, never a new empty database) with ``PRAGMA query_only``, waiting for
    a writer's lock as long as the engine does."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=check_same_thread, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute("PRAGMA query_only=ON")
    return conn


@contextlib.contextmanager
def open_reader(path: Path) -> Iterator[Runner]:
    """A read-only :data:`~fieldkit.catalogue.listing.Runner` on the SQLite file ``path``."""
    refuse_non_database(path)
    conn = read_only_connection(path)
    try:
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # opens the WAL index now
        except sqlite3.OperationalError as exc:
            raise_if_volume_full(exc, path)
            raise

        def run(sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
            return [dict(row) for row in conn.execute(sql, {k: _bind(v) for k, v in params.items()})]

        yield run
    finally:
        conn.close()


def volume_full(path: Path, below: int = 1 << 20) -> bool:
    """Whether the volume holding the catalogue file ``path`` has less than ``below`` bytes free."""
    import shutil

    try:
        return shutil.disk_usage(Path(path).parent).free < below
    except OSError:
        return False


def raise_if_volume_full(exc: sqlite3.OperationalError, path: Path) -> None:
    """On a full volume, opening a WAL catalogue fails as a "disk I/O error" (its -shm file cannot
    be created): say what it is, exit 73, instead of a driver error."""
    if "disk i/o error" in str(exc).lower() and volume_full(path):
        raise OutputUnavailableError(
            f"cannot open the catalogue: its volume is full ({exc}).",
            hint="Free space on the catalogue's volume and run the command again.", path=str(path),
        ) from exc


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
