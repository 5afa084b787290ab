"""The catalogue schema comes only from Alembic migrations, on real SQLite files and PostgreSQL."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from alembic import command

from fieldkit.catalogue import migrate
from fieldkit.catalogue.base import utcnow
from fieldkit.catalogue.engine import Catalogue, make_engine
from fieldkit.catalogue.models import Base

DESIGN_TABLES = {
    "site", "device", "deployment", "card", "ingest_session", "source_file", "recording",
    "processing_run", "derivative", "annotation", "dataset", "dataset_item", "export",
}


def test_upgrade_from_empty_creates_every_table_without_drift(empty_catalogue_url):
    migrate.upgrade(empty_catalogue_url)
    engine = sa.create_engine(empty_catalogue_url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert DESIGN_TABLES <= tables
    assert tables - {"alembic_version"} == set(Base.metadata.tables)
    status = migrate.status(empty_catalogue_url)
    assert status.ok, status
    command.check(migrate.alembic_config(empty_catalogue_url))  # raises on model/migration drift


def test_single_head_and_every_revision_downgrades(empty_catalogue_url):
    assert migrate.head() == "0004"
    migrate.upgrade(empty_catalogue_url)
    migrate.downgrade(empty_catalogue_url, "base")
    engine = sa.create_engine(empty_catalogue_url)
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate.upgrade(empty_catalogue_url)
    assert migrate.status(empty_catalogue_url).ok


def _seed_children(url: str) -> dict[str, int]:
    """A recording with rows in every child table that references it."""
    engine = make_engine(url)
    now = utcnow()
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO site (id, name, created_at) VALUES (1, 's', :t)"), {"t": now})
        c.execute(sa.text("INSERT INTO deployment (id, name, site_id, timezone, created_at) "
                          "VALUES (1, 'd', 1, 'UTC', :t)"), {"t": now})
        c.execute(sa.text("INSERT INTO card (id, identity, created_at) VALUES (1, 'card-1', :t)"), {"t": now})
        c.execute(sa.text(
            "INSERT INTO ingest_session (id, card_id, deployment_id, state, source_root, "
            "inventory_fingerprint, files_total, bytes_total, safe_to_erase, started_at) "
            "VALUES (1, 1, 1, 'complete', '/card', 'f', 1, 10, false, :t)"), {"t": now})
        c.execute(sa.text(
            "INSERT INTO recording (id, sha256, size_bytes, archive_path, deployment_id, format, "
            "status, created_at) VALUES (1, :h, 10, 'a/b.wav', 1, 'wav', 'ok', :t)"),
            {"h": "0" * 64, "t": now})
        c.execute(sa.text(
            "INSERT INTO source_file (session_id, recording_id, raw_path, display_path, size_bytes, "
            "state) VALUES (1, 1, :p, 'b.wav', 10, 'verified')"), {"p": b"b.wav"})
        c.execute(sa.text(
            "INSERT INTO annotation (recording_id, begin_s, end_s, label, created_at) "
            "VALUES (1, 0.5, 1.0, 'song', :t)"), {"t": now})
        c.execute(sa.text(
            "INSERT INTO processing_run (id, name, workflow, params_hash, versions, state, store_path, "
            "n_clips, started_at) VALUES (1, 'r', '{}', 'h', '{}', 'done', 'stores/r.zarr', 1, :t)"), {"t": now})
        c.execute(sa.text(
            "INSERT INTO derivative (run_id, recording_id, channel, clip_start, clip_stop, state) "
            "VALUES (1, 1, 0, 0, 1, 'done')"))
    engine.dispose()
    return _child_counts(url)


def _child_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        counts = {t: c.execute(sa.text(f"SELECT count(*) FROM {t} WHERE recording_id = 1")).scalar_one()
                  for t in ("source_file", "annotation", "derivative")}
    engine.dispose()
    return counts


def test_round_trip_keeps_child_rows_through_batch_migration_of_parent(empty_catalogue_url):
    """0002 recreates `recording` (a parent) by move-and-copy on SQLite; children must survive."""
    migrate.upgrade(empty_catalogue_url)
    before = _seed_children(empty_catalogue_url)
    assert before == {"source_file": 1, "annotation": 1, "derivative": 1}
    migrate.downgrade(empty_catalogue_url, "0001")
    assert _child_counts(empty_catalogue_url) == before
    migrate.upgrade(empty_catalogue_url)
    assert _child_counts(empty_catalogue_url) == before
    assert migrate.status(empty_catalogue_url).ok


def test_the_hazard_is_real_with_foreign_keys_on(tmp_path):
    """Why migrations run with foreign keys OFF: with them ON, SQLite's table rebuild cascades."""
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    migrate.upgrade(url)
    _seed_children(url)
    con = sqlite3.connect(tmp_path / "c.sqlite", isolation_level=None)
    con.execute("PRAGMA foreign_keys=ON")
    assert con.execute("SELECT count(*) FROM source_file").fetchone()[0] == 1
    con.execute("CREATE TABLE ingest_session_new AS SELECT * FROM ingest_session")
    con.execute("DROP TABLE ingest_session")  # what a batch rebuild does; ON DELETE CASCADE fires
    assert con.execute("SELECT count(*) FROM source_file").fetchone()[0] == 0
    con.close()


@pytest.mark.reliability("H3")
def test_upgrade_backs_up_an_existing_sqlite_catalogue(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalogue.sqlite'}"
    migrate.upgrade(url, "0001")
    backup = migrate.upgrade(url)
    assert backup is not None and backup.is_file()
    con = sqlite3.connect(backup)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
    con.close()


def test_sqlite_connections_are_wal_with_foreign_keys_enforced(sqlite_catalogue_url):
    cat = Catalogue(sqlite_catalogue_url)
    with cat.read() as s:
        assert s.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert s.execute(sa.text("PRAGMA foreign_keys")).scalar_one() == 1
        assert s.execute(sa.text("PRAGMA busy_timeout")).scalar_one() >= 5000
    with pytest.raises(sa.exc.IntegrityError):
        with cat.write() as s:
            s.execute(sa.text("INSERT INTO deployment (name, site_id, timezone, created_at) "
                              "VALUES ('orphan', 999, 'UTC', :t)"), {"t": utcnow()})
    cat.dispose()


def test_status_check_constraint_rejects_unknown_status(empty_catalogue_url):
    migrate.upgrade(empty_catalogue_url)
    cat = Catalogue(empty_catalogue_url)
    with pytest.raises(sa.exc.IntegrityError):
        with cat.write() as s:
            s.execute(sa.text("INSERT INTO recording (sha256, size_bytes, archive_path, format, status, "
                              "created_at) VALUES (:h, 1, 'x', 'wav', 'bogus', :t)"),
                      {"h": "1" * 64, "t": utcnow()})
    cat.dispose()


@pytest.mark.reliability("H2")
def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "catalogue.sqlite"
    path.write_bytes(b"this is not sqlite at all")
    from fieldkit.errors import CatalogueError

    with pytest.raises(CatalogueError, match="not an SQLite database") as info:
        make_engine(f"sqlite:///{path}")
    assert "backup" in str(info.value)
    assert path.read_bytes() == b"this is not sqlite at all"
