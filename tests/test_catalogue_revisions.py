"""The Alembic-free schema check (``fieldkit.catalogue.revisions``) agrees with Alembic itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from fieldkit.catalogue import migrate
from fieldkit.catalogue.engine import make_engine
from fieldkit.catalogue.revisions import VERSIONS_DIR, current_revision, head_revision
from fieldkit.catalogue.sqlite_reader import sqlite_database, stamped_revision
from fieldkit.errors import MigrationError
from fieldkit.workspace import open_workspace


def test_head_is_alembics_head():
    assert VERSIONS_DIR == migrate.MIGRATIONS_DIR / "versions"
    assert head_revision() == migrate.head()


def test_current_revision_is_alembics_at_every_step(empty_catalogue_url):
    engine = make_engine(empty_catalogue_url)
    try:
        assert current_revision(engine) is None and migrate.status(empty_catalogue_url).current is None
        for revision in ("0001", "0002", "head"):
            migrate.upgrade(empty_catalogue_url, revision, backup=False)
            assert current_revision(engine) == migrate.status(empty_catalogue_url).current
        assert current_revision(engine) == head_revision()
        migrate.downgrade(empty_catalogue_url, "base")
        assert current_revision(engine) is None
    finally:
        engine.dispose()


def test_the_sqlite3_reading_of_the_stamp_is_alembics_at_every_step(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    database = sqlite_database(url)
    assert database == tmp_path / "c.sqlite"
    assert stamped_revision(database) is None and not database.exists()  # never creates the file
    for revision in ("0001", "0002", "0003", "head"):
        migrate.upgrade(url, revision, backup=False)
        assert stamped_revision(database) == migrate.status(url).current
    assert stamped_revision(database) == head_revision()
    migrate.downgrade(url, "base")
    assert stamped_revision(database) is None


def test_sqlite_urls_name_their_file():
    assert sqlite_database("sqlite:////abs/c.sqlite?mode=ro") == Path("/abs/c.sqlite")
    assert sqlite_database("sqlite+pysqlite:///rel.db").as_posix() == "rel.db"
    assert sqlite_database("sqlite://") is None and sqlite_database("sqlite:///:memory:") is None
    assert sqlite_database("postgresql+psycopg://u@h/db") is None


def test_two_heads_are_refused(tmp_path):
    for name, down in (("a", "'0001'"), ("b", "'0001'"), ("root", "None")):
        rev = "0001" if name == "root" else name
        (tmp_path / f"{name}.py").write_text(f'"""x"""\nrevision: str = "{rev}"\ndown_revision = {down}\n')
    with pytest.raises(MigrationError, match=r"2 heads \(\['a', 'b'\]\)"):
        head_revision(tmp_path)
    (tmp_path / "merge.py").write_text('revision = "m"\ndown_revision = ("a", "b")\n')
    assert head_revision(tmp_path) == "m"


def test_opening_an_old_catalogue_names_both_revisions_and_the_fix(workspace):
    migrate.downgrade(workspace.paths.catalogue_url, "0002")
    with pytest.raises(MigrationError) as caught:
        open_workspace(workspace.root)
    assert f"is at schema revision 0002, this fieldkit needs {head_revision()}" in str(caught.value)
    assert "fieldkit db upgrade" in str(caught.value)


def test_opening_an_unstamped_catalogue_says_empty(workspace):
    engine = sa.create_engine(workspace.paths.catalogue_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alembic_version"))
    engine.dispose()
    with pytest.raises(MigrationError, match=r"schema revision \(empty\)"):
        open_workspace(workspace.root)
