"""Alembic environment for the fieldkit catalogue.

Migrations run on a connection with SQLite foreign keys OFF (set before any transaction): a
batch migration recreates a parent table by copy-and-rename, and with foreign keys ON SQLite
would cascade-delete the child rows (see docs/notes/durability.md). After the upgrade a
``PRAGMA foreign_key_check`` proves no reference was broken. Everything runs in one explicit
transaction, so an interrupted migration leaves the old schema intact.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.pool import NullPool

from fieldkit.catalogue.engine import is_sqlite, make_engine
from fieldkit.catalogue.models import Base
from fieldkit.errors import MigrationError
from fieldkit.faults import crashpoint

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("FIELDKIT_CATALOGUE_URL")
    if not url:
        raise MigrationError(
            "no catalogue URL for Alembic.",
            hint="Use 'fieldkit db upgrade' in a workspace, or set FIELDKIT_CATALOGUE_URL.",
        )
    return url


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        # Alembic takes SQLite for a database without transactional DDL and then commits after
        # every revision, so a kill between two revisions left the catalogue at one in between
        # (H3, found by tests/test_migration_kill.py). fieldkit's SQLite connections emit BEGIN
        # themselves (engine.py), and SQLite's DDL is transactional: one transaction for all.
        transactional_ddl=True,
        # H3's kill test stops here (FIELDKIT_CRASH_AT=migration_applied:N): after the N-th
        # revision's DDL, inside the one transaction, before the commit. A no-op otherwise.
        on_version_apply=lambda **_: crashpoint("migration_applied"),
    )


def _run(connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise MigrationError(f"foreign key check failed after migration: {broken[:5]}")


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, render_as_batch=True,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = _url()
    extra = {"foreign_keys": False} if is_sqlite(url) else {}
    engine = make_engine(url, poolclass=NullPool, **extra)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
