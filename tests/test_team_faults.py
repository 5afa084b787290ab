"""A team catalogue under faults, on a real PostgreSQL server (H4, the cross-machine lock, two laptops).

Every test runs ``fieldkit`` in processes of its own against a fresh database. A test that needs
fieldkit stopped mid-transaction uses the pause points of :mod:`fieldkit.faults`: the process writes
a file and waits there; the test terminates fieldkit's connection from a second connection
(``pg_terminate_backend``), then lets it go on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from fieldkit.catalogue.team import LOCK_APPLICATION, AdvisoryLock
from fieldkit.cli.demo import demo_workflow_path, sample_card_path
from fieldkit.errors import EXIT_OK, EXIT_TEMPFAIL
from fieldkit.faults import PAUSE_ENV, PAUSE_FILE_ENV
from fieldkit.testing.cards import audiomoth_card
from fieldkit.testing.catalogue import PG_ENV

FIELDKIT = Path(sys.executable).parent / "fieldkit"
START = dt.datetime(2024, 5, 1, 22, 0)


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}, **extra}


def start(*argv: str, **env: str) -> subprocess.Popen:
    """``fieldkit ARGV --json`` started in its own process."""
    return subprocess.Popen([str(FIELDKIT), *argv, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(**env))


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, dict, str]:
    out, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return proc.returncode, json.loads(out), err


def fieldkit(*argv: str, **env: str) -> tuple[int, dict, str]:
    return finish(start(*argv, **env))


def workspace(root: Path, url: str, *, archive: Path | None = None, batch_files: int | None = None) -> Path:
    code, _, err = fieldkit("init", str(root), "--catalogue-url", url)
    assert code == EXIT_OK, err
    config = root / "fieldkit.toml"
    text = config.read_text(encoding="utf-8")
    if archive is not None:  # a second laptop's workspace on the first one's (shared) archive
        text = text.replace('archive_root = "archive"', f'archive_root = "{archive}"')
    if batch_files is not None:
        text = text.replace("[ingest]\n", f"[ingest]\nbatch_files = {batch_files}\n")
    config.write_text(text, encoding="utf-8")
    return root


def scalar(url: str, sql: str, **params) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def terminate_fieldkit(url: str, *, refuse_new: bool = False) -> int:
    """``pg_terminate_backend`` of fieldkit's catalogue connections (not its lock's) from another
    connection; with ``refuse_new`` the database first stops accepting connections."""
    name = sa.make_url(url).database
    engine = sa.create_engine(os.environ[PG_ENV], isolation_level="AUTOCOMMIT")  # the server's admin database
    try:
        with engine.connect() as conn:
            if refuse_new:
                conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            return len(conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name "
                "AND application_name = 'fieldkit'"), {"name": name}).all())
    finally:
        engine.dispose()


def terminate_locks(url: str) -> int:
    """``pg_terminate_backend`` of fieldkit's lock connections (their application_name starts with
    ``fieldkit-lock``), as a server restart or a network cut would end them."""
    engine = sa.create_engine(os.environ[PG_ENV], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name "
                "AND application_name LIKE :lock"), {"name": sa.make_url(url).database,
                                                     "lock": f"{LOCK_APPLICATION} %"}).all())
    finally:
        engine.dispose()


def allow_connections(url: str) -> None:
    name = sa.make_url(url).database
    engine = sa.create_engine(os.environ[PG_ENV], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    finally:
        engine.dispose()


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"fieldkit ended before its pause point: {proc.communicate()}"
        assert time.monotonic() < deadline, f"fieldkit never reached its pause point {path}"
        time.sleep(0.05)


def ingest_args(ws: Path, card: Path, card_id: str) -> tuple[str, ...]:
    return ("-w", str(ws), "ingest", str(card), "--site", "Wood", "--deployment", "N1", "--card-id", card_id)


def assert_no_duplicates(url: str, files: int) -> None:
    assert scalar(url, "SELECT count(*) FROM recording") == files
    assert scalar(url, "SELECT count(DISTINCT sha256) FROM recording") == files
    assert scalar(url, "SELECT count(*) FROM ingest_session") == 1
    assert scalar(url, "SELECT count(*) FROM source_file WHERE state = 'verified'") == files
    assert scalar(url, "SELECT count(*) FROM manifest") == 1


@pytest.mark.postgres
@pytest.mark.reliability("H4")
@pytest.mark.parametrize("pause", ["during_commit:3", "during_commit:4"], ids=["mid-transaction", "at-commit"])
def test_a_connection_terminated_mid_ingest_is_retried(tmp_path: Path, pg_url: str, pause: str) -> None:
    """The 2nd batch's transaction loses its connection (after its first statement, or with every
    row written just before COMMIT): the batch is written again on a new connection, the ingest
    completes, and nothing is doubled."""
    ws = workspace(tmp_path / "ws", pg_url, batch_files=10)
    audiomoth_card(tmp_path / "card", start=START, count=30)
    flag = tmp_path / "paused"
    proc = start(*ingest_args(ws, tmp_path / "card", "c1"), **{PAUSE_ENV: pause, PAUSE_FILE_ENV: str(flag)})
    wait_for(flag, proc)
    assert terminate_fieldkit(pg_url) >= 1
    flag.unlink()
    code, doc, err = finish(proc)
    assert code == EXIT_OK, err
    # 30 recordings and the recorder's CONFIG.TXT, which is archived too
    assert doc["state"] == "complete" and doc["counts"]["verified"] == 31 and doc["safe_to_erase"]
    assert "catalogue ingest batch failed (connection" in err  # it was retried, not lucky
    assert_no_duplicates(pg_url, 31)


@pytest.mark.postgres
@pytest.mark.reliability("H4")
def test_a_catalogue_that_stays_unreachable_stops_the_ingest_with_exit_75_and_a_rerun_completes(
        tmp_path: Path, pg_url: str) -> None:
    ws = workspace(tmp_path / "ws", pg_url, batch_files=10)
    audiomoth_card(tmp_path / "card", start=START, count=30)
    flag = tmp_path / "paused"
    proc = start(*ingest_args(ws, tmp_path / "card", "c1"),
                 **{PAUSE_ENV: "during_commit:3", PAUSE_FILE_ENV: str(flag)})
    wait_for(flag, proc)
    try:
        terminate_fieldkit(pg_url, refuse_new=True)
        flag.unlink()
        code, doc, err = finish(proc)
    finally:
        allow_connections(pg_url)
    assert code == EXIT_TEMPFAIL, err
    assert "is out of reach after 6 attempts" in doc["error"] and "run the same command again" in doc["hint"]
    password = sa.make_url(pg_url).password
    assert f":{password}@" not in doc["error"] + err
    assert scalar(pg_url, "SELECT count(*) FROM recording") == 10  # the 1st batch, committed before
    code, doc, err = fieldkit(*ingest_args(ws, tmp_path / "card", "c1"))
    assert code == EXIT_OK, err
    assert doc["state"] == "complete" and doc["counts"]["verified"] == 31  # the same session, resumed
    assert_no_duplicates(pg_url, 31)


@pytest.mark.postgres
@pytest.mark.reliability("H4")
def test_a_connection_terminated_mid_run_is_retried(tmp_path: Path, pg_url: str) -> None:
    """``fieldkit process`` loses its catalogue connection while writing the run's results: they
    are written again; one run, its derivative rows once each, the run complete."""
    ws = workspace(tmp_path / "ws", pg_url)
    code, _, err = fieldkit("-w", str(ws), "ingest", str(sample_card_path()), "--site", "demo-wood",
                            "--deployment", "d1", "--timezone", "+00:00", "--card-id", "sample")
    assert code in (0, 3), err  # 3: the sample card holds truncated and quarantined files
    flag = tmp_path / "paused"
    proc = start("-w", str(ws), "process", str(demo_workflow_path()), "--cluster", "inprocess",
                 **{PAUSE_ENV: "during_finish", PAUSE_FILE_ENV: str(flag)})
    wait_for(flag, proc)
    assert terminate_fieldkit(pg_url) >= 1
    flag.unlink()
    code, doc, err = finish(proc)
    assert code == EXIT_OK, err
    assert doc["state"] == "complete" and "catalogue run results failed (connection" in err
    assert scalar(pg_url, "SELECT count(*) FROM processing_run") == 1
    assert scalar(pg_url, "SELECT state FROM processing_run") == "complete"
    n = scalar(pg_url, "SELECT count(*) FROM derivative")
    assert n == scalar(pg_url, "SELECT count(DISTINCT (recording_id, channel)) FROM derivative") > 0
    code, doc, err = fieldkit("-w", str(ws), "process", str(demo_workflow_path()), "--cluster", "inprocess")
    assert code == EXIT_OK and doc["reused"], err  # the run is whole: nothing left to do


@pytest.mark.postgres
def test_the_same_card_is_locked_across_machines_by_the_catalogue(tmp_path: Path, pg_url: str) -> None:
    """A card being ingested elsewhere (its advisory lock held by another session) is refused at
    once, naming the holder; no lock file is involved on a server catalogue."""
    ws = workspace(tmp_path / "ws", pg_url)
    audiomoth_card(tmp_path / "card", start=START, count=3)
    other = AdvisoryLock(pg_url, "card:id:c1", command="ingest")
    assert other.acquire()
    try:
        code, doc, err = fieldkit(*ingest_args(ws, tmp_path / "card", "c1"))
    finally:
        other.release()
    assert code == EXIT_TEMPFAIL
    assert f"card id:c1 is being ingested (ingest by pid {os.getpid()}, host " in doc["error"]
    assert " since 20" in doc["error"] and ":***@" in doc["error"]
    assert scalar(pg_url, "SELECT count(*) FROM ingest_session") == 0
    code, doc, err = fieldkit(*ingest_args(ws, tmp_path / "card", "c1"))
    assert code == EXIT_OK and doc["counts"]["verified"] == 4, err  # 3 recordings and CONFIG.TXT
    assert not (ws / "archive" / ".ingest.lock").exists()


@pytest.mark.postgres
@pytest.mark.reliability("E1")
def test_a_lock_lost_with_its_connection_stops_the_ingest_before_its_next_batch(tmp_path: Path, pg_url: str) -> None:
    """The server ends both lock connections of a running ingest (its advisory locks go with them)
    while the 2nd batch is placed: another ingest could take the lock now, so the first stops with
    exit 75 before recording anything more, and the same command later completes the session."""
    ws = workspace(tmp_path / "ws", pg_url, batch_files=10)
    audiomoth_card(tmp_path / "card", start=START, count=30)
    flag = tmp_path / "paused"
    proc = start(*ingest_args(ws, tmp_path / "card", "c1"), **{PAUSE_ENV: "after_place:2", PAUSE_FILE_ENV: str(flag)})
    wait_for(flag, proc)
    assert terminate_locks(pg_url) == 2  # the card's lock and the catalogue's ingest lock
    other = AdvisoryLock(pg_url, "ingest", command="ingest")
    try:
        assert other.acquire()  # free: a second ingest could start now
        recorded = scalar(pg_url, "SELECT count(*) FROM recording")
        flag.unlink()
        code, doc, err = finish(proc)
        assert scalar(pg_url, "SELECT count(*) FROM recording") == recorded < 31  # nothing more recorded
    finally:
        other.release()
    assert code == EXIT_TEMPFAIL, err
    assert doc["error"].startswith("the ingest lock (card:id:c1, ingest) in the team catalogue postgresql")
    assert "was lost: its connection ended" in doc["error"] and ":***@" in doc["error"]
    assert doc["hint"].startswith("Run the same command again to resume")
    assert scalar(pg_url, "SELECT state FROM ingest_session") != "complete"
    code, doc, err = fieldkit(*ingest_args(ws, tmp_path / "card", "c1"))
    assert code == EXIT_OK and doc["state"] == "complete" and doc["counts"]["verified"] == 31, err
    assert_no_duplicates(pg_url, 31)


@pytest.mark.postgres
def test_an_ingest_waits_for_the_one_in_progress_then_completes(tmp_path: Path, pg_url: str) -> None:
    ws = workspace(tmp_path / "ws", pg_url)
    audiomoth_card(tmp_path / "card", start=START, count=3)
    other = AdvisoryLock(pg_url, "ingest", command="ingest")
    assert other.acquire()
    log = tmp_path / "stderr.txt"
    try:
        with log.open("w", encoding="utf-8") as stderr:
            proc = subprocess.Popen([str(FIELDKIT), *ingest_args(ws, tmp_path / "card", "c1"), "--json"],
                                    stdout=subprocess.PIPE, stderr=stderr, text=True, env=_env())
        deadline = time.monotonic() + 120
        while "waiting for ingest by pid" not in " ".join(log.read_text(encoding="utf-8").split()):
            assert proc.poll() is None, log.read_text(encoding="utf-8")  # waiting, not refused
            assert time.monotonic() < deadline, "the second ingest never said it was waiting"
            time.sleep(0.1)
        assert scalar(pg_url, "SELECT count(*) FROM ingest_session") == 0
    finally:
        other.release()
    out, _ = proc.communicate(timeout=300)
    err = log.read_text(encoding="utf-8")
    doc = json.loads(out)
    assert proc.returncode == EXIT_OK and doc["counts"]["verified"] == 4, err  # 3 recordings and CONFIG.TXT
    assert f"waiting for ingest by pid {os.getpid()}, host " in " ".join(err.split())


@pytest.mark.postgres
def test_two_laptops_ingest_two_cards_into_one_catalogue_and_archive_at_once(tmp_path: Path, pg_url: str) -> None:
    """Two ``fieldkit ingest`` processes, two workspaces, one PostgreSQL catalogue, one archive:
    both complete; the 10 files present on both cards are stored once, with both origins."""
    alice = workspace(tmp_path / "alice", pg_url, batch_files=8)
    bob = workspace(tmp_path / "bob", pg_url, archive=alice / "archive", batch_files=8)
    shared = audiomoth_card(tmp_path / "shared", start=START, count=10)
    for card, offset, serial in (("card_a", 10, "24E144055E08000A"), ("card_b", 20, "24E144055E08000B")):
        audiomoth_card(tmp_path / card, start=START + dt.timedelta(hours=offset), count=20, serial=serial)
        for path in shared:
            shutil.copy2(path, tmp_path / card / path.name)
    procs = [start(*ingest_args(alice, tmp_path / "card_a", "A")), start(*ingest_args(bob, tmp_path / "card_b", "B"))]
    results = [finish(p, timeout=240) for p in procs]  # a deadlock would time out here
    for code, doc, err in results:
        assert code == EXIT_OK, err
        assert doc["state"] == "complete" and doc["safe_to_erase"] and doc["counts"]["files"] == 31
    assert scalar(pg_url, "SELECT count(*) FROM recording") == 52  # 20 + 20 + 10 shared, two CONFIG.TXT
    archived = [p for p in (alice / "archive").rglob("*.WAV")]
    assert len(archived) == 50 and not list((bob / "archive").rglob("*.WAV"))
    both = scalar(pg_url, "SELECT count(*) FROM (SELECT sha256 FROM source_file WHERE sha256 IS NOT NULL "
                          "GROUP BY sha256 HAVING count(DISTINCT session_id) = 2) AS twice")
    assert both == 10
    states = scalar(pg_url, "SELECT string_agg(DISTINCT state, ',' ORDER BY state) FROM source_file "
                            "WHERE sha256 IN (SELECT sha256 FROM source_file GROUP BY sha256 HAVING count(*) = 2)")
    assert states == "duplicate,verified"
    code, doc, err = fieldkit("-w", str(bob), "verify")
    assert code == EXIT_OK and doc["ok"] == 52, err


@pytest.mark.postgres
@pytest.mark.reliability("H4")
@pytest.mark.parametrize("sqlstate", ["40001", "40P01"], ids=["serialization-failure", "deadlock"])
def test_serialization_failures_and_deadlocks_are_retried_with_backoff(pg_url: str, sqlstate: str,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """The server rolls the transaction back with SQLSTATE 40001 (40P01) twice: the write runs a
    third time and lands once; an error that retrying cannot mend (a unique violation) is not retried."""
    from fieldkit.catalogue import migrate
    from fieldkit.catalogue.engine import Catalogue
    from fieldkit.catalogue.retry import RetryPolicy, write_with_retry

    migrate.upgrade(pg_url)
    attempts = []

    def work(s) -> int:
        attempts.append(time.monotonic())
        s.execute(sa.text("INSERT INTO site (name, created_at) VALUES ('Wood', now())"))
        if len(attempts) < 3:  # raised by the server itself, as a conflicting transaction would be
            s.execute(sa.text(f"DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '{sqlstate}'; END $$"))
        return len(attempts)

    with Catalogue(pg_url) as catalogue:
        assert write_with_retry(catalogue, work, what="test", policy=RetryPolicy(first_delay_s=0.2)) == 3
        assert attempts[2] - attempts[1] >= 0.2 * 2 * 0.5  # backed off (exponential, jittered)
        with pytest.raises(sa.exc.IntegrityError):
            write_with_retry(catalogue, lambda s: s.execute(
                sa.text("INSERT INTO site (name, created_at) VALUES ('Wood', now())")), what="test")
    assert scalar(pg_url, "SELECT count(*) FROM site") == 1
    assert [r.message.split(" (")[1].split(":")[0] for r in caplog.records if "catalogue test failed" in r.message] \
        == ["serialization", "serialization"]
