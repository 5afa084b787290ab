"""Driving Alembic from code: upgrade, downgrade, and checks for pending migrations and drift."""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from fieldkit.catalogue.base import utcnow
from fieldkit.catalogue.engine import is_sqlite, make_engine
from fieldkit.catalogue.models import Base
from fieldkit.errors import MigrationError

__all__ = ["MIGRATIONS_DIR", "SchemaStatus", "alembic_config", "upgrade", "downgrade", "status", "head"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class SchemaStatus:
    """Where a catalogue's schema stands against this fieldkit."""

    current: str | None
    head: str
    drift: list[str] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return self.current != self.head

    @property
    def ok(self) -> bool:
        return not self.pending and not self.drift


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    if len(heads) != 1:
        raise MigrationError(f"the migrations have {len(heads)} heads ({heads}); expected one.")
    return heads[0]


@contextlib.contextmanager
def _migration_connection(url: str) -> Iterator:
    extra = {"foreign_keys": False} if is_sqlite(url) else {}
    engine = make_engine(url, poolclass=NullPool, **extra)
    try:
        with engine.connect() as conn:
            yield conn
            conn.commit()
    finally:
        engine.dispose()


def _current(conn) -> str | None:
    revision = MigrationContext.configure(conn).get_current_revision()
    conn.commit()  # end the read transaction: Alembic then runs its own, and VACUUM needs none
    return revision


def upgrade(url: str, revision: str = "head", *, backup: bool = True) -> Path | None:
    """Migrate the catalogue to ``revision``; SQLite files get a ``VACUUM INTO`` backup first.

    Returns the backup path, if one was made.
    """
    cfg = alembic_config(url)
    with _migration_connection(url) as conn:
        before = _current(conn)
        target = head() if revision == "head" else revision
        saved = _backup(conn, url, before) if backup and before not in (None, target) else None
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return saved


def downgrade(url: str, revision: str) -> None:
    cfg = alembic_config(url)
    with _migration_connection(url) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def status(url: str) -> SchemaStatus:
    """Current revision, head, and any difference between the models and the live schema."""
    with _migration_connection(url) as conn:
        current = _current(conn)
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        diffs = compare_metadata(ctx, Base.metadata) if current is not None else []
    return SchemaStatus(current, head(), [_describe(d) for d in diffs])


def _describe(diff) -> str:
    if isinstance(diff, tuple):
        kind, *rest = diff
        return f"{kind}: {', '.join(str(getattr(r, 'name', r)) for r in rest)}"
    return "; ".join(_describe(d) for d in diff)


def _backup(conn, url: str, revision: str | None) -> Path | None:
    """H3: a consistent copy of an SQLite catalogue before its schema changes.

    ``VACUUM INTO`` writes a partial file first and a kill midway would leave it looking like a
    backup (tests/test_migration_kill.py): it goes to a ``.partial-PID`` name, is fsynced, and only
    then linked to its ``.bak-REVISION-STAMP`` name (``os.link`` never replaces an earlier backup).
    (The folder is not fsynced: ``fsync_dir`` lives in ``io``, which the catalogue layer does not import.)
    """
    if not is_sqlite(url) or revision is None:
        return None
    database = Path(make_url(url).database or "")
    if not database.name:
        return None
    for stale in database.parent.glob(f"{glob.escape(database.name)}.bak-*.partial-*"):
        stale.unlink(missing_ok=True)  # left by a killed upgrade: never a backup, and its name is ours
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    partial = database.with_name(f"{database.name}.bak-{revision}-{stamp}.partial-{os.getpid()}")
    # VACUUM cannot run inside a transaction: use the DBAPI connection (autocommit here).
    conn.connection.driver_connection.execute("VACUUM INTO ?", (str(partial),))
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    for n in itertools.count(1):
        target = database.with_name(f"{database.name}.bak-{revision}-{stamp}" + (f".{n}" if n > 1 else ""))
        try:
            os.link(partial, target)
            break
        except FileExistsError:
            continue
    partial.unlink()
    return target
