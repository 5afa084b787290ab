"""Creating and dropping whole databases on a server (PostgreSQL), for tests and team setup."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url

__all__ = ["create_database", "drop_database"]


def _quoted(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r} must be letters, digits and underscores")
    return f'"{name}"'


def _autocommit(admin_url: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE cannot run inside one)."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` with a role allowed to; returns its URL (password kept)."""
    _autocommit(admin_url, f"CREATE DATABASE {_quoted(name)}")
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    _autocommit(admin_url, f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")
