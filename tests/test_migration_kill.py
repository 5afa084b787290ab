"""H3 by killing: ``fieldkit db upgrade`` SIGKILLed midway leaves the old schema with all its data, or
the new one complete, never a mix; and its ``VACUUM INTO`` backup is there.

A workspace catalogue at revision 0001 holds 20 000 recordings with their source files and
annotations (0002 and 0003 each copy ``recording`` whole on SQLite, so the DDL takes a while).
The upgrade runs as a real ``fieldkit`` process and is killed two ways: at a crash point after
each revision's DDL inside the transaction (``FIELDKIT_CRASH_AT=migration_applied:N``, the kill
that must leave 0001), and by the clock, SIGKILL at several delays after the backup file appears.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fieldkit.catalogue import migrate
from fieldkit.workspace import init_workspace

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))
N = 20_000
OLD_TABLES = ("site", "deployment", "card", "ingest_session", "recording", "source_file", "annotation")
NEW_TABLES = ("manifest", "run_exclusion")


def seed(database: Path) -> None:
    """Revision 0001 with data in every ingest table and in annotations."""
    migrate.upgrade(f"sqlite:///{database}", "0001")
    con = sqlite3.connect(database)
    t = "2024-05-01 22:00:00.000000"
    con.execute("INSERT INTO site (id, name, created_at) VALUES (1, 'Wood', ?)", (t,))
    con.execute("INSERT INTO deployment (id, name, site_id, timezone, created_at) VALUES (1, 'N1', 1, 'UTC', ?)", (t,))
    con.execute("INSERT INTO card (id, identity, created_at) VALUES (1, 'id:c1', ?)", (t,))
    con.execute("INSERT INTO ingest_session (id, card_id, deployment_id, state, source_root, inventory_fingerprint, "
                "files_total, bytes_total, safe_to_erase, started_at) VALUES (1, 1, 1, 'complete', '/card', 'f', ?, 0, 1, ?)",
                (N, t))
    con.executemany("INSERT INTO recording (id, sha256, size_bytes, archive_path, deployment_id, format, status, "
                    "reason, metadata, created_at) VALUES (?, ?, ?, ?, 1, 'wav', ?, ?, ?, ?)",
                    [(i, f"{i:064x}", 1000 + i, f"Wood/N1/{i:06d}.WAV", "ok" if i % 5 else "quarantined",
                      None if i % 5 else "empty", f'{{"n": {i}, "note": "{"x" * 200}"}}', t) for i in range(1, N + 1)])
    con.executemany("INSERT INTO source_file (session_id, recording_id, raw_path, display_path, size_bytes, state, "
                    "sha256) VALUES (1, ?, ?, ?, ?, 'verified', ?)",
                    [(i, f"{i:06d}.WAV".encode(), f"{i:06d}.WAV", 1000 + i, f"{i:064x}") for i in range(1, N + 1)])
    con.executemany("INSERT INTO annotation (recording_id, begin_s, end_s, label, created_at) VALUES (?, 0, 1, 'owl', ?)",
                    [(i, t) for i in range(1, N + 1, 7)])
    con.commit()
    con.close()


def contents(database: Path) -> dict[str, list[tuple]]:
    """Every row of the tables revision 0001 has (the data that must survive), after SQLite's recovery."""
    con = sqlite3.connect(database)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in OLD_TABLES}
    finally:
        con.close()


def schema(database: Path) -> tuple[str | None, set[str], str]:
    """(revision, tables, integrity check) of a catalogue, opened as any later command would open it."""
    con = sqlite3.connect(database)
    try:
        revision = con.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return revision[0] if revision else None, tables, con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("h3")
    with init_workspace(folder / "ws"):
        pass
    database = folder / "ws" / "catalogue.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    seed(database)
    return folder / "ws", contents(database)


def fresh(seeded: tuple[Path, dict], tmp_path: Path, name: str) -> Path:
    """A copy of the seeded workspace (catalogue at 0001, no backup yet)."""
    ws = tmp_path / name
    shutil.copytree(seeded[0], ws)
    return ws


def upgrade_process(ws: Path, crash: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}
    if crash:
        env["FIELDKIT_CRASH_AT"] = crash
    return subprocess.Popen([FIELDKIT, "-w", str(ws), "db", "upgrade", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def backups(ws: Path) -> list[Path]:
    """Complete backups only: a partial one (killed during VACUUM INTO) has a ``.partial-PID`` name."""
    return sorted(p for p in ws.glob("catalogue.sqlite.bak-0001-*") if ".partial" not in p.name)


def assert_old_or_new(ws: Path, before: dict) -> str:
    """The catalogue is at 0001 with every row, or at head with every row and the new tables; never between."""
    database = ws / "catalogue.sqlite"
    revision, tables, integrity = schema(database)
    assert integrity == "ok"
    assert contents(database) == before  # all data intact, whichever side it is on
    if revision == "0001":
        assert not tables & set(NEW_TABLES), f"at 0001 but with {tables & set(NEW_TABLES)}: a half migration"
    else:
        assert revision == migrate.head() and set(NEW_TABLES) <= tables, (revision, tables)
        assert migrate.status(f"sqlite:///{database}").drift == []  # the new schema is complete
    found = backups(ws)
    if revision != "0001" or found:  # a kill before the backup was complete leaves the catalogue untouched
        assert len(found) == 1 and contents(found[0]) == before and schema(found[0])[0] == "0001"
    return revision


@pytest.mark.reliability("H3")
@pytest.mark.parametrize("step", [1, 2, 3])
def test_a_migration_killed_after_each_revisions_ddl_leaves_the_old_schema_intact(seeded, tmp_path, step):
    ws = fresh(seeded, tmp_path, f"step{step}")
    proc = upgrade_process(ws, crash=f"migration_applied:{step}")
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    # Killed inside the transaction, even after the last revision's DDL (step 3): nothing of it stays.
    assert assert_old_or_new(ws, seeded[1]) == "0001"
    # and the next upgrade finishes it (a second backup: the first is never overwritten)
    done = upgrade_process(ws)
    done.communicate(timeout=300)
    assert done.returncode == 0
    database = ws / "catalogue.sqlite"
    assert schema(database)[0] == migrate.head() and contents(database) == seeded[1]


@pytest.mark.slow  # six upgrades of 20 000 recordings: ~40 s on a loaded machine
@pytest.mark.reliability("H3")
def test_a_migration_killed_by_the_clock_is_old_or_new_never_between(seeded, tmp_path):
    outcomes = []
    for n, delay in enumerate((0.0, 0.1, 0.3, 0.7, 1.2, 2.5)):
        ws = fresh(seeded, tmp_path, f"kill{n}")
        proc = upgrade_process(ws)
        deadline = time.monotonic() + 120
        while not backups(ws) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)  # the backup comes first: from then on the DDL may be running
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        outcomes.append((delay, proc.returncode, assert_old_or_new(ws, seeded[1])))
    print("H3 kills (delay s, return code, revision):", outcomes)  # shown with pytest -s
    # Killed as soon as the backup is complete, the DDL has begun (or is about to): the old schema.
    assert outcomes[0][1:] == (-signal.SIGKILL, "0001"), outcomes
    # An upgrade that finished before its kill came is at head (checked complete above).
    assert all(revision == migrate.head() for _, code, revision in outcomes if code == 0), outcomes
