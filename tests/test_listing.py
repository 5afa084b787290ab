"""The recordings listing (``fieldkit.catalogue.listing``): one SQL text, two ways to run it.

Through a SQLAlchemy session on SQLite and PostgreSQL, and through ``sqlite3`` alone (what
``fieldkit catalog recordings`` uses, so that it starts without importing SQLAlchemy). Both must
give the same records, and those must agree with the ORM's view of the same rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from fieldkit.catalogue import queries
from fieldkit.catalogue.listing import RecordingFilter, list_recordings
from fieldkit.catalogue.models import Recording
from fieldkit.catalogue.sqlite_reader import open_reader, sqlite_database
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.testing.cards import audiomoth_card
from fieldkit.workspace import Workspace, init_workspace

UTC = dt.timezone.utc
FILTERS = [
    RecordingFilter(),
    RecordingFilter(status="ok"),
    RecordingFilter(status="quarantined"),
    RecordingFilter(site="wood", deployment="night"),
    RecordingFilter(deployment="no-such"),
    RecordingFilter(start=dt.datetime(2024, 5, 1, 22, 1, tzinfo=UTC)),  # boundary: included
    RecordingFilter(end=dt.datetime(2024, 5, 1, 22, 1, tzinfo=UTC)),  # boundary: excluded
    RecordingFilter(start=dt.datetime(2024, 5, 2, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
    RecordingFilter(ids=()),
    RecordingFilter(ids=(1, 3)),
]


@pytest.fixture
def catalogued(empty_catalogue_url: str, tmp_path: Path):
    """A workspace on each backend: three AudioMoth files one minute apart, the first seen on two
    cards, an empty file that ends in quarantine, and CONFIG.TXT (a sidecar, no start time)."""
    with _ingested(empty_catalogue_url, tmp_path) as ws:
        yield ws


@contextlib.contextmanager
def _ingested(url: str, tmp_path: Path) -> Iterator[Workspace]:
    first, second = tmp_path / "card1", tmp_path / "card2"
    audiomoth_card(first, start=dt.datetime(2024, 5, 1, 22, 0), count=3, interval_s=60)
    audiomoth_card(second, start=dt.datetime(2024, 5, 1, 22, 0), count=1)
    (first / "20240501_230000.WAV").write_bytes(b"")
    with init_workspace(tmp_path / "ws", catalogue_url=url) as ws:
        for card in (first, second):
            ingest_card(ws, IngestRequest(card, "wood", "night"))
        yield ws


def test_the_listing_agrees_with_the_orm_on_both_backends(catalogued):
    with catalogued.catalogue.read() as s:
        rows = queries.list_recordings(s)
        orm = s.scalars(sa.select(Recording)).all()
    by_id = {r.id: r for r in orm}
    assert len(rows) == len(orm) == 5
    assert [r.status for r in rows] == ["ok", "ok", "ok", "quarantined", "sidecar"]
    assert [r.start_time_utc for r in rows] == [  # by start time, the one without last
        "2024-05-01T22:00:00Z", "2024-05-01T22:01:00Z", "2024-05-01T22:02:00Z", "2024-05-01T23:00:00Z", None]
    for row in rows:
        rec = by_id[row.id]
        assert (row.sha256, row.archive_path, row.sample_rate_hz, row.duration_s, row.status) == (
            rec.sha256, rec.archive_path, rec.sample_rate_hz, rec.duration_s, rec.status)
        assert row.times == (rec.times or {}) and row.metadata == (rec.metadata_ or {})
        assert (row.site, row.deployment) == ("wood", "night")
    seen_twice = [Path(r.archive_path).name for r in rows if len(r.source_paths) == 2]
    assert seen_twice == ["20240501_220000.WAV", "CONFIG.TXT"]  # one entry per card, first card first
    assert [p.split(":")[-1] for p in rows[0].source_paths] == ["20240501_220000.WAV"] * 2
    assert "card1" in rows[0].source_paths[0] and "card2" in rows[0].source_paths[1]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: repr(f)[16:60])
def test_sqlite3_and_sqlalchemy_give_the_same_records(catalogued, filters):
    database = sqlite_database(catalogued.paths.catalogue_url)
    with catalogued.catalogue.read() as s:
        through_orm_session = queries.list_recordings(s, filters)
    if database is None:  # PostgreSQL: the session is the only way; check the filter's meaning
        with catalogued.catalogue.read() as s:
            assert through_orm_session == queries.list_recordings(s, filters)
    else:
        with open_reader(database) as run:
            assert list_recordings(run, filters) == through_orm_session
    everything = _all(catalogued)
    expected = [r for r in everything if _matches(r, filters)]
    assert [r.id for r in through_orm_session] == [r.id for r in expected]


def _all(ws):
    with ws.catalogue.read() as s:
        return queries.list_recordings(s)


def _matches(row, f: RecordingFilter) -> bool:
    start = dt.datetime.fromisoformat(row.start_time_utc.replace("Z", "+00:00")) if row.start_time_utc else None
    return ((f.status is None or row.status == f.status)
            and (f.site is None or row.site == f.site)
            and (f.deployment is None or row.deployment == f.deployment)
            and (f.start is None or (start is not None and start >= f.start))
            and (f.end is None or (start is not None and start < f.end))
            and (f.ids is None or row.id in f.ids))


def test_the_sqlite3_reader_cannot_write(tmp_path):
    with _ingested(f"sqlite:///{tmp_path / 'c.sqlite'}", tmp_path) as ws:
        with open_reader(tmp_path / "c.sqlite") as run, pytest.raises(sqlite3.OperationalError, match="readonly"):
            run("DELETE FROM recording", {})
        assert len(_all(ws)) == 5


def test_the_sqlite3_reader_never_creates_a_catalogue(tmp_path):
    with pytest.raises(sqlite3.OperationalError, match="unable to open"), open_reader(tmp_path / "none.sqlite"):
        pass
    assert not (tmp_path / "none.sqlite").exists()
