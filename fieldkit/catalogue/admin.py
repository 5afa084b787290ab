"""Creating and dropping whole databases on a server (PostgreSQL), for tests and team setup."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url

__all__ = ["create_database", "drop_database"]


def _quoted(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r} must be letters, digits and underscores")
    return f'"{name}"'


def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` with a role allowed to; returns its URL (password kept)."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {_quoted(name)}")
    finally:
        engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")
    finally:
        engine.dispose()
