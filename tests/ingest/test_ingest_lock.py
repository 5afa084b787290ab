"""The file lock beside the archive (E1), which an SQLite catalogue's ingests take; a team
catalogue's locks (PostgreSQL advisory locks) are tried by tests/test_team_faults.py and
tests/test_team_catalogue.py."""

from __future__ import annotations

import os

import pytest

from fieldkit.errors import EXIT_PARTIAL


def test_a_second_ingest_waits_for_the_lock(card, cli, workspace):
    from fieldkit.ingest.lock import IngestLock

    with IngestLock(workspace.paths.archive / ".ingest.lock"):
        result = cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    assert result.exit_code == 75 and "ingest in progress" in result.stderr and f"pid {os.getpid()}" in result.stderr


@pytest.mark.reliability("E1")
def test_a_dead_holders_lock_is_taken_over(card, cli, workspace):
    """SIGKILL leaves the lock file behind, but the kernel released the flock: no manual step."""
    import socket

    lock = workspace.paths.archive / ".ingest.lock"
    lock.write_text('{"pid": 999999, "host": "%s", "since": "2024-01-01T00:00:00+00:00"}' % socket.gethostname())
    assert cli("ingest", str(card), "--site", "Wood", "--deployment", "N1").exit_code == EXIT_PARTIAL
    assert lock.read_text() == ""  # released


@pytest.mark.reliability("E1")
def test_lock_held_by_another_process_is_refused_with_its_pid(card, cli, workspace):
    import subprocess
    import sys
    import time

    lock = workspace.paths.archive / ".ingest.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from fieldkit.ingest.lock import IngestLock\n"
        f"l = IngestLock(Path({str(lock)!r})); l.acquire(); print('held', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
        assert result.exit_code == 75 and f"pid {holder.pid}" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert cli("ingest", str(card), "--site", "Wood", "--deployment", "N1").exit_code == EXIT_PARTIAL
