"""A catalogue that defends itself (H2), and the faults of its volume (H1, C4): a real migrated
catalogue with a real backup, damaged by overwriting one of its pages; real tmpfs and read-only
bind mounts (skipped where this machine cannot mount)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldkit.catalogue import migrate
from fieldkit.errors import EXIT_CANTCREAT, EXIT_DATAERR
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.testing.cards import audiomoth_card
from fieldkit.workspace import init_workspace
from tests.conftest import mounted

FIELDKIT = Path(sys.executable).parent / "fieldkit"


def run(*argv: str, **env: str):
    """``fieldkit ARGV --json`` in its own process (which leaves no catalogue handle open on the
    volumes the tests unmount): the exit code, the one JSON document and stderr."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")} | env
    result = subprocess.run([str(FIELDKIT), *argv, "--json"], capture_output=True, text=True, env=environ, check=False,
                            timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


@pytest.fixture
def ingested(tmp_path: Path) -> Path:
    """A workspace whose catalogue was migrated by ``db upgrade`` (so it has its automatic backup)
    and holds one ingested card."""
    ws = init_workspace(tmp_path / "ws")
    migrate.downgrade(ws.paths.catalogue_url, "-1")
    assert migrate.upgrade(ws.paths.catalogue_url) is not None  # the backup 'db upgrade' makes
    audiomoth_card(tmp_path / "card", start=dt.datetime(2024, 5, 1, 22, 0), count=3, seconds=2.0)
    ingest_card(ws, IngestRequest(tmp_path / "card", "Wood", "N1", timezone="+02:00"))
    ws.close()
    audiomoth_card(tmp_path / "card2", start=dt.datetime(2024, 5, 2, 22, 0), count=2, seconds=2.0)
    return ws.root


def damage_page_of(catalogue: Path, table: str) -> None:
    """Overwrite the root page of ``table`` (not page 1: the header and schema stay intact)."""
    with sqlite3.connect(catalogue) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        (page_size,) = con.execute("PRAGMA page_size").fetchone()
    con.close()
    assert root > 1
    with open(catalogue, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(bytes([0xDE, 0xAD, 0xBE, 0xEF]) * (page_size // 4))


def state_of(ws: Path) -> tuple[bytes, bytes, list[str]]:
    """The catalogue's bytes, its write-ahead log's, and every path in the archive."""
    wal = ws / "catalogue.sqlite-wal"
    return ((ws / "catalogue.sqlite").read_bytes(), wal.read_bytes() if wal.exists() else b"",
            sorted(str(p.relative_to(ws)) for p in (ws / "archive").rglob("*") if p.name != ".ingest.lock"))


@pytest.mark.reliability("H2")
def test_a_damaged_catalogue_is_refused_for_writing_with_its_backups(ingested):
    ws = ingested
    catalogue = ws / "catalogue.sqlite"
    [backup] = ws.glob("catalogue.sqlite.bak-*")
    damage_page_of(catalogue, "recording")
    before = state_of(ws)

    code, doc, stderr = run("-w", str(ws), "ingest", str(ws.parent / "card2"), "--site", "Wood", "--deployment", "N2")
    assert code == EXIT_DATAERR
    assert doc["error"].startswith(f"the catalogue {catalogue} is damaged (")
    assert doc["error"].endswith("refusing to write to it, nothing was written.")
    assert f"Automatic backups: {backup}." in doc["hint"] and f"cp {backup} {catalogue}" in doc["hint"]
    assert doc["path"] == str(catalogue)
    assert len(stderr.strip().splitlines()) == 1
    assert state_of(ws) == before  # no session row, no copied file: the card was not touched either

    # Reads that do not need the damaged pages still work.
    code, runs, _ = run("-w", str(ws), "catalog", "runs")
    assert (code, runs) == (0, [])
    code, deployments, stderr = run("-w", str(ws), "catalog", "deployments")
    assert code == 0 and [d["name"] for d in deployments] == ["N1"]
    # A10's gaps and overlaps need the damaged recording pages: unknown (null), said on stderr.
    assert (deployments[0]["overlaps"], deployments[0]["gaps"]) == (None, None)
    assert "could not be read" in " ".join(stderr.split()) and "Traceback" not in stderr


@pytest.mark.reliability("H2")
def test_rows_pointing_nowhere_are_refused_for_writing_too(ingested):
    """Header and pages intact, but a recording deleted behind the foreign keys' back."""
    ws = ingested
    with sqlite3.connect(ws / "catalogue.sqlite") as con:
        con.execute("PRAGMA foreign_keys=OFF")
        (rec,) = con.execute("SELECT recording_id FROM source_file WHERE recording_id IS NOT NULL LIMIT 1").fetchone()
        con.execute("DELETE FROM recording WHERE id = ?", (rec,))
    con.close()
    code, doc, _ = run("-w", str(ws), "ingest", str(ws.parent / "card2"), "--site", "Wood", "--deployment", "N2")
    assert code == EXIT_DATAERR
    assert "points to a missing recording row" in doc["error"] and "nothing was written" in doc["error"]
    assert "Automatic backups:" in doc["hint"]


def test_the_check_runs_once_per_catalogue_handle(ingested):
    from fieldkit.workspace import open_workspace

    ws = open_workspace(ingested)
    calls = []
    original = ws.catalogue.check_before_writing

    def counting():
        calls.append(1)
        original()

    ws.catalogue.check_before_writing = counting
    for _ in range(3):
        with ws.catalogue.write():
            pass
    ws.close()
    assert calls == [1]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, filled by the tests with a file of zeros."""
    (tmp_path / "tiny").mkdir()
    with mounted(tmp_path / "tiny", "-t", "tmpfs", "-o", "size=2m", "tmpfs") as volume:
        yield volume


def fill(volume: Path, leave: int = 0) -> Path:
    """Fill ``volume`` but ``leave`` bytes."""
    st = os.statvfs(volume)
    filler = volume / "filler"
    filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return filler


def recordings(catalogue: Path) -> int:
    with sqlite3.connect(catalogue) as con:
        assert con.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        (n,) = con.execute("SELECT count(*) FROM recording").fetchone()
    con.close()
    return n


@pytest.mark.reliability("H1")
def test_a_full_catalogue_volume_rolls_back_and_the_next_ingest_finishes(tmp_path, tmpfs):
    """The archive has room, the catalogue's volume has 48 KiB: the ingest's transaction meets
    SQLITE_FULL. Exit 73, nothing committed, the catalogue intact; with space freed, the same
    ingest adopts what was copied and finishes."""
    catalogue = tmpfs / "catalogue.sqlite"
    init_workspace(tmp_path / "ws", catalogue_url=f"sqlite:///{catalogue}").close()
    audiomoth_card(tmp_path / "card", start=dt.datetime(2024, 5, 1, 22, 0), count=6, seconds=2.0)
    filler = fill(tmpfs, leave=48 * 1024)
    ingest = ("-w", str(tmp_path / "ws"), "ingest", str(tmp_path / "card"), "--site", "Wood", "--deployment", "N1")
    code, doc, _ = run(*ingest)
    assert code == EXIT_CANTCREAT
    assert "disk is full" in doc["error"] and "rolled back" in doc["error"] and "Free space" in doc["hint"]
    assert recordings(catalogue) == 0
    filler.unlink()
    code, doc, _ = run(*ingest)
    assert code == 0 and doc["state"] == "complete"
    assert recordings(catalogue) == 7  # six recordings and CONFIG.TXT


@pytest.mark.reliability("C4")
def test_verify_on_a_full_volume_is_exit_73(tmp_path, tmpfs):
    init_workspace(tmpfs / "ws").close()
    audiomoth_card(tmp_path / "card", start=dt.datetime(2024, 5, 1, 22, 0), count=2, seconds=2.0)
    code, _, stderr = run("-w", str(tmpfs / "ws"), "ingest", str(tmp_path / "card"), "--site", "Wood",
                          "--deployment", "N1", FIELDKIT_INGEST__FREE_SPACE_MARGIN_BYTES="0")
    assert code == 0, stderr
    fill(tmpfs)
    code, doc, _ = run("-w", str(tmpfs / "ws"), "verify")
    assert code == EXIT_CANTCREAT
    assert "full" in doc["error"] and "Free space" in doc["hint"] and doc["path"].startswith(str(tmpfs / "ws"))


@pytest.mark.reliability("C4")
def test_a_read_only_archive_is_refused_with_exit_73_and_nothing_catalogued(ingested):
    ws = ingested
    with mounted(ws / "archive", "--bind", "-o", "ro", str(ws / "archive")):
        code, doc, _ = run("-w", str(ws), "ingest", str(ws.parent / "card2"), "--site", "Wood", "--deployment", "N2")
    assert code == EXIT_CANTCREAT
    assert "read-only" in doc["error"] and doc["path"].startswith(str(ws / "archive"))
    assert recordings(ws / "catalogue.sqlite") == 4  # the first card's three and CONFIG.TXT
