"""A run stopped by Ctrl-C or SIGTERM, or whose cluster cannot start or be reached, or whose
worker dies mid-task, says so, ends with its exit code and never stays ``running``: real
``fieldkit process`` subprocesses (faulthandler on, so a crash prints its threads' stacks) with
real LocalCluster workers on a real workspace."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.testing.cards import audiomoth_card
from fieldkit.workspace import init_workspace
from tests.pipeline.conftest import WORKFLOW

BIN = Path(sys.executable).parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIELDKIT_", "DASK_"))}
    env["PYTHONFAULTHANDLER"] = "1"  # a SIGSEGV in the driver prints every thread's stack
    env.update(extra)
    return env


#: Runs a command with SIGINT as a command typed on a terminal has it (exec keeps a default
#: disposition). A suite started in the background ('&' or nohup from a script) has SIGINT
#: ignored, which its children inherit, and ``fieldkit process`` keeps an inherited SIG_IGN
#: (pipeline/stopping.py): Ctrl-C would never reach it. (Not a preexec_fn: unsafe with threads.)
AS_FROM_A_TERMINAL = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                      "os.execv(sys.argv[1], sys.argv[1:])")


def _start(ws: Path, workflow: Path, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, Path, Path]:
    """``fieldkit process`` in its own session, output to files (its workers inherit the descriptors).

    Every start but a ``--resume`` asks for a new run: the tests share a workspace, and an
    identical re-run would otherwise reuse (or resume) the run an earlier test left there. A
    LocalCluster unless the test chooses (``--cluster``): one worker would otherwise run in
    process (fieldkit.pipeline.execution), and these tests are about the cluster and its workers.
    """
    args = args if "--resume" in args else ("--new-run", *args)
    if "--cluster" not in args and "--scheduler" not in args:
        args = (*args, "--cluster", "local")
    out_path, err_path = ws / f".process-{time.monotonic_ns()}.out", ws / f".process-{time.monotonic_ns()}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", AS_FROM_A_TERMINAL, str(BIN / "fieldkit"), "-w", str(ws),
                                 "process", str(workflow), *args],
                                stdout=out, stderr=err, text=True, env=env or _env(), start_new_session=True)
    return proc, out_path, err_path


def _finish(proc: subprocess.Popen, out_path: Path, err_path: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    try:
        proc.wait(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # no worker may outlive its driver
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out_path.read_text(), err_path.read_text())


def _runs(ws: Path) -> list[tuple[int, str, str | None]]:
    with sqlite3.connect(ws / "catalogue.sqlite", timeout=10) as db:
        return db.execute("SELECT id, state, message FROM processing_run ORDER BY id").fetchall()


def _done(ws: Path, run_id: int) -> int:
    """Clips the run's store holds (0 before its first task is written)."""
    import zarr

    stores = list((ws / "stores").glob(f"run-{run_id:04d}-*.zarr"))
    try:
        return int(np.asarray(zarr.open_group(str(stores[0]), mode="r")["progress/done"][:]).sum())
    except (IndexError, KeyError, FileNotFoundError):  # not created yet
        return 0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """24 recordings of 40 s at 32 kHz (960 clips): with one worker, a run lasts a few seconds."""
    base = tmp_path_factory.mktemp("interrupt")
    ws = init_workspace(base / "ws")
    audiomoth_card(base / "card", start=dt.datetime(2024, 5, 2, 22, 0), count=24, seconds=40.0,
                   sample_rate_hz=32_000, utc_offset_minutes=120, era="1.6.0")
    ingest_card(ws, IngestRequest(base / "card", "Wood", "N2", timezone="+02:00"))
    return ws.root


@pytest.fixture
def workflow_file(tmp_path) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(WORKFLOW))
    return path


def _wait_running(workspace: Path, before: set[int], proc, err: Path, deadline: float) -> int:
    """The id of the new run once its row says ``running``."""
    while time.time() < deadline:
        new = [r for r in _runs(workspace) if r[0] not in before and r[1] == "running"]
        if new:
            return new[0][0]
        assert proc.poll() is None, err.read_text()[-2000:]
        time.sleep(0.05)
    raise AssertionError("the run never started")


@pytest.mark.slow
@pytest.mark.reliability("D3")
@pytest.mark.parametrize("cluster", ["local", "inprocess"])
def test_sigint_marks_the_run_interrupted_and_resume_completes_it(workspace, workflow_file, cluster):
    before = {r[0] for r in _runs(workspace)}
    proc, out, err = _start(workspace, workflow_file, "--workers", "1", "--cluster", cluster)
    deadline = time.time() + 120
    while time.time() < deadline and not [r for r in _runs(workspace) if r[0] not in before and r[1] == "running"]:
        assert proc.poll() is None, err.read_text()[-2000:]
        time.sleep(0.05)
    [(run_id, _, _)] = [r for r in _runs(workspace) if r[0] not in before]
    while time.time() < deadline and not _done(workspace, run_id):  # inside the task loop
        assert proc.poll() is None, err.read_text()[-2000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C on a terminal: the driver and its workers
    result = _finish(proc, out, err, timeout=120)
    [(_, state, message)] = [r for r in _runs(workspace) if r[0] == run_id]
    done = _done(workspace, run_id)
    assert result.returncode == 130, result.stderr[-2000:]
    assert (f"interrupted by SIGINT: run {run_id} is resumable ({done} of 960 clips stored). "
            f"Resume it with: fieldkit process {workflow_file} --resume {run_id}") in result.stderr
    assert "Traceback" not in result.stderr
    assert state == "interrupted"
    assert message == f"interrupted by SIGINT: {done} of 960 clips stored; --resume finishes it"

    resumed = _finish(*_start(workspace, workflow_file, "--json", "--resume", str(run_id)))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    doc = json.loads(resumed.stdout)
    assert doc["run_id"] == run_id and doc["state"] == "complete"
    assert 0 < done < doc["n_clips"] and doc["clips_computed"] == doc["n_clips"] - done  # nothing done twice
    assert [r[1] for r in _runs(workspace) if r[0] == run_id] == ["complete"]


@pytest.mark.slow
@pytest.mark.reliability("D3")
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_driver_alone_with_json_prints_one_error_document(workspace, workflow_file, sig, code):
    """``kill -INT``/``kill -TERM`` of the driver alone, as soon as its run is ``running`` (the
    cluster may still be starting): the revert of 7508228 was this test crashing (SIGSEGV)."""
    before = {r[0] for r in _runs(workspace)}
    proc, out, err = _start(workspace, workflow_file, "--json", "--workers", "1")
    run_id = _wait_running(workspace, before, proc, err, time.time() + 120)
    os.kill(proc.pid, sig)  # the driver alone: its cluster is closed all the same
    result = _finish(proc, out, err, timeout=120)
    [(_, state, message)] = [r for r in _runs(workspace) if r[0] == run_id]
    done = _done(workspace, run_id)
    name = signal.Signals(sig).name
    assert result.returncode == code, result.stderr[-4000:]
    assert json.loads(result.stdout) == {
        "error": f"interrupted by {name}: run {run_id} is resumable ({done} of 960 clips stored).", "code": code,
        "hint": f"fieldkit process {workflow_file} --resume {run_id}", "path": None}
    assert f"Resume it with: fieldkit process {workflow_file} --resume {run_id}" in result.stderr
    assert "Traceback" not in result.stderr
    assert state == "interrupted" and message.startswith(f"interrupted by {name}: {done} of 960")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: nothing listens there


@pytest.mark.slow
@pytest.mark.reliability("E4")
def test_unreachable_scheduler_fails_fast_with_exit_75(workspace, workflow_file):
    before = {r[0] for r in _runs(workspace)}
    address = f"tcp://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    result = _finish(*_start(workspace, workflow_file, "--json", "--scheduler", address,
                             env=_env(FIELDKIT_DASK__CONNECT_TIMEOUT="2")), timeout=120)
    assert time.monotonic() - started < 25  # not distributed's 30 s default, plus start-up
    assert result.returncode == 75, result.stderr[-2000:]
    doc = json.loads(result.stdout)
    assert doc["code"] == 75 and address in doc["error"] and "scheduler" in doc["hint"]
    assert "Traceback" not in result.stderr and address in result.stderr
    assert all(state == "failed" and address in message
               for _, state, message in [r for r in _runs(workspace) if r[0] not in before])


@pytest.mark.slow
@pytest.mark.reliability("E4")
def test_workers_that_cannot_start_fail_with_exit_75(workspace, workflow_file):
    """A worker preload that cannot be imported kills every worker while it starts: distributed's
    "Nanny failed to start" RuntimeError."""
    before = {r[0] for r in _runs(workspace)}
    env = _env(DASK_DISTRIBUTED__WORKER__PRELOAD='["fieldkit_no_such_preload_module"]')
    result = _finish(*_start(workspace, workflow_file, "--json", "--workers", "1", env=env), timeout=180)
    assert result.returncode == 75, result.stderr[-2000:]
    doc = json.loads(result.stdout)
    assert doc["code"] == 75 and "could not start its workers" in doc["error"]
    assert "Traceback" not in result.stderr
    assert all(state == "failed" for _, state, _ in [r for r in _runs(workspace) if r[0] not in before])


@pytest.mark.slow
@pytest.mark.reliability("E4")
def test_a_worker_killed_mid_task_fails_that_task_naming_the_recording(workspace, workflow_file):
    """Every worker that runs the task of recording 5 is SIGKILLed there (``FIELDKIT_CRASH_AT``,
    inherited by the LocalCluster's workers); with ``allowed-failures`` 1 the scheduler gives up
    after two deaths (KilledWorker). The other tasks complete; the run is ``failed`` and says which
    recording, which clips and what to do."""
    before = {r[0] for r in _runs(workspace)}
    # Saturation 1.0: the worker holds only the task it runs, so no other task is "processing" on
    # it when it dies (each death counts against every task processing there).
    env = _env(FIELDKIT_CRASH_AT="task_recording_5", DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1",
               DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION="1.0")
    result = _finish(*_start(workspace, workflow_file, "--json", "--workers", "1", env=env), timeout=300)
    assert result.returncode == 3, result.stderr[-4000:]  # EXIT_PARTIAL: the run finished with a failure
    doc = json.loads(result.stdout)
    [failure] = doc["failures"]
    assert failure["recordings"] == [5]
    assert "recordings 5 (" in failure["message"] and ".WAV)" in failure["message"]
    assert "died each time it ran" in failure["message"] and "--resume" in failure["message"]
    # 40 clips a recording: all but recording 5's stored (a task whose result died with the worker is
    # run again and finds its shards already done: skipped, not computed twice).
    assert doc["state"] == "failed" and doc["clips_computed"] + doc["clips_skipped"] == doc["n_clips"] - 40
    assert _done(workspace, doc["run_id"]) == doc["n_clips"] - 40
    [(run_id, state, message)] = [r for r in _runs(workspace) if r[0] not in before]
    assert run_id == doc["run_id"] and state == "failed" and failure["message"] in message
    assert "Traceback" not in result.stderr


def _loop_threads() -> set:
    import threading

    return {t for t in threading.enumerate() if t.name == "IO loop" and t.is_alive()}


@pytest.mark.slow
@pytest.mark.reliability("E4")
def test_no_event_loop_thread_outlives_a_failed_start():
    """A Client that cannot reach its scheduler leaves its "IO loop" thread running (distributed
    2026.x; this test fails without ``_closing_on_failure``); a LocalCluster whose worker cannot
    start stops its own today. ``dask_client`` stops and joins both, so a process that ends with
    ClusterUnavailableError never finalises with a live event-loop thread."""
    import dask
    import distributed  # noqa: F401 - its defaults before the override below

    from fieldkit.config.settings import DaskSettings
    from fieldkit.errors import ClusterUnavailableError
    from fieldkit.pipeline.clients import dask_client

    before = _loop_threads()
    with pytest.raises(ClusterUnavailableError, match="cannot reach the Dask scheduler"):
        with dask_client(f"tcp://127.0.0.1:{_closed_port()}", None, DaskSettings(connect_timeout=2)):
            pass
    assert _loop_threads() <= before
    with dask.config.set({"distributed.worker.preload": ["fieldkit_no_such_preload_module"]}):
        with pytest.raises(ClusterUnavailableError, match="could not start its workers"):
            with dask_client(None, 1, DaskSettings(memory_limit="1GiB")):
                pass
    assert _loop_threads() <= before
    with dask_client(None, 1, DaskSettings(memory_limit="1GiB")) as client:  # and after a good one
        assert client.submit(sum, [1, 2]).result() == 3
    assert _loop_threads() <= before
