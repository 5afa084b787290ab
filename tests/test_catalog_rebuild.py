"""``fieldkit catalog rebuild``: the catalogue rebuilt from the archive equals the original, table by table.

A mixed card (stopped after one batch and resumed; good AudioMoth files, the five broken kinds, CONFIG.TXT, macOS junk, one file twice
under two names, a non-UTF-8 name) and a second card (its own files, one shared with the first, a
``--device-serial`` and a ``--timezone``) are ingested, the first card again (a sighting), the
archive verified; the rebuild goes into a new SQLite file or a new PostgreSQL database, and every
ingest table is compared with the original as a set of tuples.

Excluded columns, and why:

- every ``id`` (surrogate keys): foreign keys are compared through the natural key of the row
  they point to (site name; device make/model/serial; site and deployment name; card identity;
  a session's card identity and ``started_at``; a recording's SHA-256; a manifest's sequence);
- ``created_at`` of ``site``, ``device``, ``deployment``, ``card`` and ``recording``: the moment
  the row was inserted, which the archive does not record; the rebuild writes its own time.
  (``ingest_session.started_at``/``finished_at`` and ``manifest.created_at`` are compared: the
  ledger carries them.)
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from fieldkit.catalogue.models import Base
from fieldkit.cli import app
from fieldkit.errors import EXIT_CANTCREAT, EXIT_DATAERR, EXIT_OK, EXIT_PARTIAL
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.testing.cards import add_broken_files, audiomoth_card, plain_wav, write_file
from fieldkit.testing.catalogue import PG_ENV, postgres_database
from fieldkit.workspace import init_workspace, open_workspace
from tests.conftest import skip_unless_required

INGEST_TABLES = ("site", "device", "deployment", "card", "ingest_session", "source_file", "recording", "manifest")
INSERT_TIME = {"site", "device", "deployment", "card", "recording"}  # tables whose created_at is excluded
runner = CliRunner()


def fk(table: str, row: dict, keys: dict) -> tuple:
    """A row with its surrogate ids replaced by the natural keys of what they point to."""
    out = []
    for column, value in sorted(row.items()):
        if column == "id" or (column == "created_at" and table in INSERT_TIME):
            continue
        target = {"site_id": "site", "device_id": "device", "deployment_id": "deployment", "card_id": "card",
                  "session_id": "ingest_session", "resumed_from_id": "ingest_session",
                  "recording_id": "recording"}.get(column)
        if target is not None and value is not None:
            value = keys[target][value]
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True)
        if isinstance(value, memoryview):
            value = bytes(value)
        out.append((column, value))
    return tuple(out)


def natural_tables(url: str) -> dict[str, set[tuple]]:
    """Every ingest table of a catalogue as a set of tuples keyed by natural keys."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            raw = {t: [dict(r._mapping) for r in conn.execute(sa.select(Base.metadata.tables[t]))]
                   for t in INGEST_TABLES}
    finally:
        engine.dispose()
    keys: dict[str, dict] = {"site": {r["id"]: r["name"] for r in raw["site"]},
                             "device": {r["id"]: (r["make"], r["model"], r["serial"]) for r in raw["device"]},
                             "card": {r["id"]: r["identity"] for r in raw["card"]},
                             "recording": {r["id"]: r["sha256"] for r in raw["recording"]}}
    keys["deployment"] = {r["id"]: (keys["site"][r["site_id"]], r["name"]) for r in raw["deployment"]}
    keys["ingest_session"] = {r["id"]: (keys["card"][r["card_id"]], r["started_at"]) for r in raw["ingest_session"]}
    return {t: {fk(t, r, keys) for r in rows} for t, rows in raw.items()}


def cli(root: Path, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["-w", str(root), *args, "--json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def mixed_cards(tmp_path: Path) -> tuple[Path, Path]:
    one, two = tmp_path / "card1", tmp_path / "card2"
    audiomoth_card(one, start=dt.datetime(2024, 5, 1, 22, 0), count=4)
    add_broken_files(one)
    shutil.copy(one / "20240501_220000.WAV", one / "COPY_OF_220000.WAV")  # the same content twice
    write_file(one / "._20240501_220000.WAV", b"\0\5\26\7" + b"\0" * 60)  # AppleDouble: ignored
    write_file(one / os.fsdecode(b"caf\xe9.wav"), plain_wav(0.5, freq_hz=330.0))  # a Latin-1 name
    audiomoth_card(two, start=dt.datetime(2024, 6, 2, 21, 0), count=2, serial="24E144055E0800FF")
    shutil.copy(one / "20240501_221000.WAV", two / "SHARED.WAV")  # content also on card 1
    write_file(two / "PLAIN.WAV", plain_wav(0.25, freq_hz=880.0))  # no serial: --device-serial names it
    return one, two


def ingest_everything(root: Path, one: Path, two: Path) -> None:
    # Card 1 is stopped after its first batch of 4 (sealed incomplete: a ledger record and a manifest),
    # then resumed to the end (sealed again: the newer record of the same session must win).
    with open_workspace(root, {"ingest.batch_files": 4}) as ws:
        asked = iter([False])
        stopped = ingest_card(ws, IngestRequest(one, "Wood", "N1"), should_stop=lambda: next(asked, True))
    assert stopped.state == "incomplete" and 0 < sum(f.state == "verified" for f in stopped.files) < 10
    assert cli(root, "ingest", str(one), "--site", "Wood", "--deployment", "N1")[0] == 3  # broken files: partial
    code, report = cli(root, "ingest", str(two), "--site", "Wood", "--deployment", "S2", "--timezone", "+02:00",
                       "--device", "SM4-0042", "--card-id", "card-two")
    assert code == EXIT_OK, report
    code, again = cli(root, "ingest", str(one), "--site", "Wood", "--deployment", "N1")  # F1: a sighting
    assert again["repeat_of"] is not None
    assert cli(root, "verify")[0] == EXIT_OK


def catalogue_bytes(root: Path) -> list[bytes]:
    """The SQLite catalogue's files (with its WAL and shared memory), to prove a rebuild never touches them."""
    gc.collect()  # an earlier in-process command's engine, closed by the collector, would checkpoint the WAL
    return [p.read_bytes() for p in sorted(root.glob("catalogue.sqlite*"))]


def check_rebuild_equals(root: Path, original_url: str, target: list[str], rebuilt_url: str) -> dict:
    before = catalogue_bytes(root)
    code, report = cli(root, "catalog", "rebuild", *target)
    assert code == EXIT_OK, report
    assert catalogue_bytes(root) == before  # the current catalogue is never opened
    original, rebuilt = natural_tables(original_url), natural_tables(rebuilt_url)
    for table in INGEST_TABLES:
        assert original[table], f"{table} is empty: the comparison would prove nothing"
        assert rebuilt[table] == original[table], (
            table, sorted(original[table] - rebuilt[table])[:3], sorted(rebuilt[table] - original[table])[:3])
    return report


@pytest.mark.reliability("H2")
def test_rebuild_into_a_new_sqlite_file_equals_the_original(tmp_path: Path):
    one, two = mixed_cards(tmp_path)
    with init_workspace(tmp_path / "ws") as ws:
        root, original_url, manifests = ws.root, ws.paths.catalogue_url, ws.paths.manifests
    ingest_everything(root, one, two)
    out = tmp_path / "rebuilt.sqlite"
    report = check_rebuild_equals(root, original_url, ["--out", str(out)], f"sqlite:///{out}")
    assert report["recordings"] == 15 and report["sessions"] == 3 and report["manifests"] == 4
    assert report["unlisted"] == report["missing"] == report["hash_mismatches"] == []
    assert "annotation" in report["not_rebuilt"]
    assert len(list((manifests / "ledger").glob("session-*.json"))) == 4  # card 1 sealed twice
    # An existing target is refused, untouched.
    code, refused = cli(root, "catalog", "rebuild", "--out", str(out))
    assert code == EXIT_CANTCREAT and "already exists" in refused["error"]


@pytest.mark.postgres
def test_rebuild_into_a_new_postgresql_database_equals_the_original(tmp_path: Path):
    if not os.environ.get(PG_ENV):
        skip_unless_required(f"{PG_ENV} is not set (no PostgreSQL server for this run)")
    one, two = mixed_cards(tmp_path)
    with postgres_database() as original_url, postgres_database() as rebuilt_url:
        with init_workspace(tmp_path / "ws", catalogue_url=original_url) as ws:
            root = ws.root
        ingest_everything(root, one, two)
        report = check_rebuild_equals(root, original_url, ["--url", rebuilt_url], rebuilt_url)
        assert report["recordings"] == 15 and rebuilt_url.split("@")[0] not in json.dumps(report)
        code, refused = cli(root, "catalog", "rebuild", "--url", rebuilt_url)  # not empty now
        assert code == EXIT_CANTCREAT and "not empty" in refused["error"]


def test_a_changed_copy_is_catalogued_as_such_and_unlisted_files_are_reported(tmp_path: Path):
    one, _ = mixed_cards(tmp_path)
    with init_workspace(tmp_path / "ws") as ws:
        root, archive = ws.root, ws.paths.archive
    cli(root, "ingest", str(one), "--site", "Wood", "--deployment", "N1")
    changed = archive / "Wood" / "N1" / "20240501_221000.WAV"
    changed.chmod(0o644)
    data = bytearray(changed.read_bytes())
    data[-1] ^= 0xFF
    changed.write_bytes(bytes(data))
    write_file(archive / "Wood" / "N1" / "STRAY.WAV", plain_wav(0.1))
    out = tmp_path / "rebuilt.sqlite"
    code, report = cli(root, "catalog", "rebuild", "--out", str(out))
    assert code == EXIT_DATAERR
    assert [m["archive_path"] for m in report["hash_mismatches"]] == ["Wood/N1/20240501_221000.WAV"]
    assert report["unlisted"] == ["Wood/N1/STRAY.WAV"]
    engine = sa.create_engine(f"sqlite:///{out}")
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status, reason, status_message FROM recording "
                                      "WHERE archive_path = 'Wood/N1/20240501_221000.WAV'")).one()
        stray = conn.execute(sa.text("SELECT count(*) FROM recording WHERE archive_path LIKE '%STRAY%'")).scalar()
    engine.dispose()
    assert status[:2] == ("quarantined", "hash_mismatch") and "Restore" in status[2]
    assert stray == 0


@pytest.mark.reliability("H2")
def test_a_damaged_catalogue_is_rebuilt_without_being_opened(tmp_path: Path):
    from tests.test_catalogue_integrity import damage_page_of

    one, two = mixed_cards(tmp_path)
    with init_workspace(tmp_path / "ws") as ws:
        root, original_url = ws.root, ws.paths.catalogue_url
    ingest_everything(root, one, two)
    original = natural_tables(original_url)
    damage_page_of(root / "catalogue.sqlite", "recording")
    damaged = (root / "catalogue.sqlite").read_bytes()
    assert cli(root, "catalog", "recordings")[0] == EXIT_DATAERR  # the damage is real
    out = tmp_path / "rebuilt.sqlite"
    code, report = cli(root, "catalog", "rebuild", "--out", str(out))
    assert code == EXIT_OK, report
    assert natural_tables(f"sqlite:///{out}") == original
    assert (root / "catalogue.sqlite").read_bytes() == damaged
    assert "Last resort: 'fieldkit catalog rebuild" in cli(root, "ingest", str(two), "--site", "Wood",
                                                           "--deployment", "S2")[1]["hint"]
    # The restore steps: the damaged file aside, the rebuilt one in its place; every command works again.
    for path in root.glob("catalogue.sqlite*"):
        path.rename(path.with_name(path.name.replace("catalogue.sqlite", "catalogue.sqlite.damaged")))
    shutil.move(out, root / "catalogue.sqlite")
    assert cli(root, "verify")[0] == EXIT_OK
    code, recordings = cli(root, "catalog", "recordings")
    assert code == EXIT_OK and len(recordings) == 15
    code, again = cli(root, "ingest", str(two), "--site", "Wood", "--deployment", "S2", "--card-id", "card-two")
    assert code == EXIT_OK and again["repeat_of"] is not None  # the rebuilt sessions are recognised


def test_an_archive_without_ledger_is_rebuilt_from_its_manifests_and_says_what_it_lacks(tmp_path: Path):
    one, _ = mixed_cards(tmp_path)
    with init_workspace(tmp_path / "ws") as ws:
        root, manifests = ws.root, ws.paths.manifests
    cli(root, "ingest", str(one), "--site", "Wood", "--deployment", "N1")
    shutil.rmtree(manifests / "ledger")  # as an archive ingested before the ledger existed
    out = tmp_path / "rebuilt.sqlite"
    code, report = cli(root, "catalog", "rebuild", "--out", str(out))
    assert code == EXIT_PARTIAL and report["sessions"] == 0 and report["recordings"] == 11
    assert len(report["without_session"]) == 11 and report["manifests"] == 1
    engine = sa.create_engine(f"sqlite:///{out}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, reason, deployment_id FROM recording")).all()
    engine.dispose()
    assert {r[2] for r in rows} == {None}  # no deployment is guessed from a path
    assert ("quarantined", "empty", None) in rows and ("sidecar", None, None) in rows  # re-probed


def test_a_rebuild_is_refused_while_an_ingest_holds_the_archive(tmp_path: Path):
    from fieldkit.errors import EXIT_TEMPFAIL
    from fieldkit.ingest.lock import IngestLock

    with init_workspace(tmp_path / "ws") as ws:
        root, archive = ws.root, ws.paths.archive
    with IngestLock(archive / ".ingest.lock"):  # an ingest in progress (a flock of its own open file)
        code, refused = cli(root, "catalog", "rebuild", "--out", str(tmp_path / "rebuilt.sqlite"))
    assert code == EXIT_TEMPFAIL and str(os.getpid()) in refused["error"]
    assert not (tmp_path / "rebuilt.sqlite").exists()
