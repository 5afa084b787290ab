"""E2: ingest writing while `process` plans and `catalog` reads, all as real processes.

SQLite in WAL mode lets readers read while one writer writes; writers take ``BEGIN IMMEDIATE``
and wait out a busy catalogue. So readers started while a long ingest commits batch after batch
must all succeed, with no "database is locked" anywhere. (A catalogue that *stays* locked is exit
75 with a retry message: tests/test_cli_contract.py::test_a_busy_catalogue_is_a_temporary_failure.)
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fieldkit.testing.cards import audiomoth_card

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))
pytestmark = [pytest.mark.reliability("E2"), pytest.mark.slow]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FIELDKIT, *argv], capture_output=True, text=True, timeout=300, check=False)


def test_readers_and_a_planner_run_while_an_ingest_writes(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert _run("init", str(ws)).returncode == 0
    first = audiomoth_card(tmp_path / "card-a", start=dt.datetime(2024, 5, 1, 5, 0), count=6, seconds=3.0)
    done = _run("-w", str(ws), "ingest", str(tmp_path / "card-a"), "--site", "s", "--deployment", "d1")
    assert done.returncode == 0, done.stderr
    audiomoth_card(tmp_path / "card-b", start=dt.datetime(2024, 5, 2, 5, 0), count=400, seconds=1.0,
                   serial="24E144055E080099")
    # small transactions, so the writer commits many times while the readers read
    env_ingest = ["-w", str(ws), "ingest", str(tmp_path / "card-b"), "--site", "s", "--deployment", "d2"]
    writer = subprocess.Popen([FIELDKIT, *env_ingest, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**_env(), "FIELDKIT_INGEST__BATCH_FILES": "8"})
    overlapped = 0
    reads: list[subprocess.CompletedProcess[str]] = []
    try:
        while writer.poll() is None and len(reads) < 40:
            listing = _run("-w", str(ws), "catalog", "recordings", "--json")
            plan = _run("-w", str(ws), "process", "demo", "--dry-run", "--json")
            if writer.poll() is None:
                overlapped += 1  # both read while the ingest was still writing
            reads += [listing, plan]
        out, err = writer.communicate(timeout=600)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err
    assert overlapped >= 2, "the readers never overlapped the ingest; make the card bigger"
    for done in reads:
        assert done.returncode == 0, (done.args, done.stdout, done.stderr)
        for text in (done.stdout, done.stderr):
            assert "Traceback" not in text and "database is locked" not in text
        json.loads(done.stdout)  # exactly one JSON document, while the catalogue is being written
    counts = [len(json.loads(r.stdout)) for r in reads[::2]]
    assert counts == sorted(counts), "a reader saw rows disappear"
    assert counts[0] >= 6
    final = json.loads(_run("-w", str(ws), "catalog", "recordings", "--json").stdout)
    assert len([r for r in final if r["archive_path"].upper().endswith(".WAV")]) == 406


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}
