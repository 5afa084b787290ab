"""Real catalogues for tests: a migrated SQLite file, or a fresh PostgreSQL database.

PostgreSQL tests need ``FIELDKIT_TEST_PG``, an SQLAlchemy URL of a role allowed to create
databases (``.ci/run`` sets it up); without it they are skipped by the test suite.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from fieldkit.catalogue import migrate
from fieldkit.catalogue.admin import create_database, drop_database

__all__ = ["PG_ENV", "migrated_sqlite", "postgres_database"]

PG_ENV = "FIELDKIT_TEST_PG"


def migrated_sqlite(directory: Path, revision: str = "head") -> str:
    """Create ``directory/catalogue.sqlite`` migrated to ``revision``; returns its URL."""
    url = f"sqlite:///{Path(directory) / 'catalogue.sqlite'}"
    migrate.upgrade(url, revision)
    return url


@contextlib.contextmanager
def postgres_database(admin_url: str | None = None) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards; yields its URL."""
    admin_url = admin_url or os.environ[PG_ENV]
    name = f"fieldkit_test_{uuid.uuid4().hex[:12]}"
    try:
        yield create_database(admin_url, name)
    finally:
        drop_database(admin_url, name)
