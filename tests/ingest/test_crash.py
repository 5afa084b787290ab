"""SIGKILL at each step boundary of an ingest, then recovery by the next ingest (RELIABILITY.md D1).

The ingest runs as a real `fieldkit` process; a fault-injection point (FIELDKIT_CRASH_AT) kills
it with SIGKILL at the n-th time it passes: after a staged copy, after placing a batch in the
archive (before its commit), inside the catalogue transaction, before and after the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fieldkit.testing.cards import snapshot

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))

POINTS = ["after_copy:3", "after_copy:7", "after_place:1", "after_place:2", "during_commit:2",
          "during_commit:6", "before_seal:1", "after_manifest:1"]


def run_ingest(ws: Path, card: Path, crash: str | None = None, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}
    env["FIELDKIT_INGEST__BATCH_FILES"] = "4"
    env.update({f"FIELDKIT_INGEST__{k.upper()}": v for k, v in settings.items()})
    if crash:
        env["FIELDKIT_CRASH_AT"] = crash
    return subprocess.run([FIELDKIT, "-w", str(ws), "ingest", str(card), "--site", "Wood", "--deployment", "N1",
                           "--json"], capture_output=True, text=True, env=env, timeout=120)


def archive_state(ws: Path) -> tuple[dict[str, str], list[tuple]]:
    con = sqlite3.connect(ws / "catalogue.sqlite")
    recs = con.execute("SELECT sha256, archive_path FROM recording").fetchall()
    dup_sightings = con.execute("SELECT session_id, raw_path, count(*) FROM source_file GROUP BY 1, 2 "
                                "HAVING count(*) > 1").fetchall()
    con.close()
    assert dup_sightings == []
    return {a: h for h, a in recs}, recs


#: Describing in a worker process lets several batches be placed (and journalled) before the
#: first is committed; batches of 2 make that happen on the small card.
POOLED = {"batch_files": "2", "describe_processes": "1"}


@pytest.mark.slow
@pytest.mark.parametrize(("point", "settings"), [(p, {}) for p in POINTS] + [
    ("after_place:3", POOLED), ("during_commit:2", POOLED), ("during_commit:5", POOLED)])
@pytest.mark.reliability("D1")
def test_kill_then_next_ingest_recovers(point, settings, card, workspace):
    ws = workspace.root
    before = snapshot(card)
    killed = run_ingest(ws, card, point, **settings)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run_ingest(ws, card)
    assert resumed.returncode == 3, resumed.stderr  # broken files on the card: partial, truthfully
    report = json.loads(resumed.stdout)
    assert report["state"] == "complete" and report["safe_to_erase"]
    assert snapshot(card) == before
    by_path, recs = archive_state(ws)
    assert len(recs) == len({h for h, _ in recs}) == 12  # every content once, nothing lost
    card_hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in card.rglob("*")
                   if p.is_file() and not p.name.startswith("._") and "Spotlight" not in str(p)}
    assert set(by_path.values()) == card_hashes
    for rel, digest in by_path.items():
        assert hashlib.sha256((ws / "archive" / rel).read_bytes()).hexdigest() == digest
    assert not list((ws / "archive" / ".staging").rglob("*.partial"))
    verify = subprocess.run([FIELDKIT, "-w", str(ws), "verify", "--json"], capture_output=True, text=True)
    doc = json.loads(verify.stdout)
    assert verify.returncode == 0 and doc["passed"] and doc["uncatalogued"] == [], doc


def test_describe_workers_see_a_killed_ingest_as_gone():
    """A killed ingest is a zombie until its parent reaps it; its describe workers must not wait
    for the reaping (the parent may itself be waiting for their output pipes to close)."""
    from fieldkit.ingest.describe import _alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert _alive(child.pid)
        child.send_signal(signal.SIGKILL)
        for _ in range(100):  # not reaped: a zombie
            if not _alive(child.pid):
                break
            import time
            time.sleep(0.05)
        assert not _alive(child.pid)
        assert os.waitpid(child.pid, os.WNOHANG)[0] == child.pid  # it was a zombie, now reaped
        child.returncode = -9
    finally:
        if child.returncode is None:
            child.kill()
            child.wait()
    assert not _alive(child.pid)
