"""``fieldkit process --cluster slurm``: Dask workers in real SLURM jobs (dask-jobqueue), on the
one-node SLURM that ``.ci/slurm-up`` starts (in CI, and here as root).

The run's store equals a LocalCluster run's value for value; workers import only the task code;
a job that never starts ends as exit 75 naming it (and is cancelled); a missing ``sbatch`` is
exit 78. These tests run wherever ``sinfo`` answers, skip elsewhere, and fail where CI asked for
SLURM (``FIELDKIT_REQUIRE_SERVICES=1`` with ``FIELDKIT_TEST_SLURM=1``) and it does not answer.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from fieldkit.config.settings import load_settings
from fieldkit.errors import EXIT_CONFIG, EXIT_TEMPFAIL, EXIT_TERMINATED
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.pipeline.driver import run_workflow
from fieldkit.testing.cards import audiomoth_card
from fieldkit.workspace import init_workspace
from tests.conftest import REPO
from tests.pipeline.conftest import WORKFLOW, arrays_of

pytestmark = pytest.mark.slurm

BIN = Path(sys.executable).parent
#: Set by .ci/run once .ci/slurm-up has the node idle: then a SLURM that does not answer fails.
_SLURM_REQUIRED = (os.environ.get("FIELDKIT_TEST_SLURM") == "1"
                   and os.environ.get("FIELDKIT_REQUIRE_SERVICES") == "1")  # read before tests clear FIELDKIT_*
#: Worker jobs small enough for a 2-core CI machine; generous waits for its load.
JOBS = {"FIELDKIT_DASK__CLUSTER__MEMORY": "1GiB", "FIELDKIT_DASK__CLUSTER__CORES": "1",
        "FIELDKIT_DASK__CLUSTER__MAX_WORKERS": "2", "FIELDKIT_DASK__CLUSTER__WALLTIME": "00:20:00",
        "FIELDKIT_DASK__CONNECT_TIMEOUT": "180"}


#: What a worker must not import: it reads no workspace (each task carries its paths).
NOT_ON_A_WORKER = ("fieldkit.workspace", "fieldkit.config.settings", "fieldkit.cli", "fieldkit.cli.app",
                   "fieldkit.pipeline.execution", "fieldkit.pipeline.jobqueue", "typer", "sqlalchemy")


def _sinfo_state() -> str | None:
    """The state of SLURM's nodes (``idle``, ``mix`` ...), or None when ``sinfo`` does not answer."""
    if shutil.which("sinfo") is None:
        return None
    try:  # without a controller sinfo retries for its MessageTimeout before it gives up
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout.split()[0] if done.returncode == 0 and done.stdout.split() else None


@pytest.fixture(scope="module")
def slurm() -> str:
    state = _sinfo_state()
    if state in ("idle", "mix", "alloc"):
        return state
    reason = f"no SLURM here: sinfo {'is not installed' if shutil.which('sinfo') is None else 'does not answer'}" \
        if state is None else f"SLURM's node is {state}"
    if _SLURM_REQUIRED:
        pytest.fail(f"{reason}; FIELDKIT_TEST_SLURM=1 requires it (.ci/slurm-up)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def card_ws(tmp_path_factory):
    """A workspace with a small synthetic AudioMoth card ingested (5 files of 6 s at 48 kHz)."""
    base = tmp_path_factory.mktemp("slurm")
    ws = init_workspace(base / "ws")
    audiomoth_card(base / "card", start=dt.datetime(2024, 5, 1, 22, 0), count=5, seconds=6.0,
                   sample_rate_hz=48_000, utc_offset_minutes=120)
    ingest_card(ws, IngestRequest(base / "card", "Wood", "N1", timezone="+02:00"))
    workflow = base / "wf.yaml"
    workflow.write_text(yaml.safe_dump(WORKFLOW))
    return ws, workflow


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_")}
    # sbatch exports this environment to the job: the workers import this checkout's fieldkit
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **JOBS, **extra}


def _fieldkit(ws, *args: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "fieldkit"), "-w", str(ws.root), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout, check=False)


def _our_jobs() -> list[str]:
    """fieldkit's worker jobs pending or running (a cancelled one may show COMPLETING a moment)."""
    done = subprocess.run(["squeue", "-h", "-n", "fieldkit-worker", "-t", "PENDING,CONFIGURING,RUNNING", "-o", "%i %T"],
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.split()


def test_a_run_on_slurm_stores_what_a_local_cluster_stores(slurm, card_ws, tmp_path):
    ws, workflow = card_ws
    result = _fieldkit(ws, "process", str(workflow), "--cluster", "slurm", "--json", cwd=tmp_path, env=_env())
    assert result.returncode == 0, result.stderr
    on_slurm = json.loads(result.stdout)
    assert on_slurm["state"] == "complete" and on_slurm["execution"] == "slurm", on_slurm
    assert on_slurm["scheduler"].startswith("tcp://") and on_slurm["clips_computed"] == on_slurm["n_clips"] > 0
    # The workers ran as SLURM jobs (each wrote its log to slurm-JOBID.out in the submit directory),
    # and closing the cluster cancelled them.
    logs = sorted(tmp_path.glob("slurm-*.out"))
    assert logs and any("Starting Worker" in p.read_text() for p in logs), [p.read_text()[-2000:] for p in logs]
    assert _our_jobs() == []

    local = run_workflow(ws, _workflow(workflow), workflow_source="test", workers=2, cluster="local", new_run=True)
    assert local.state == "complete" and local.execution == "local"
    assert (local.n_clips, local.clips_computed) == (on_slurm["n_clips"], on_slurm["clips_computed"])
    a, b = arrays_of(ws, on_slurm["store"]), arrays_of(ws, local.store)
    assert a.keys() == b.keys() and "mel" in a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def _workflow(path: Path):
    from fieldkit.config.workflow import load_workflow

    return load_workflow(path)


def test_slurm_workers_import_only_the_task_code(slurm, card_ws, tmp_path, monkeypatch):
    """A worker in a SLURM job runs the tasks without the driver, the catalogue, the workflow
    reader, xarray or pandas: it needs no workspace, only the paths each task carries."""
    from fieldkit.pipeline.clients import dask_client
    from tests.pipeline.worker_probe import environ as worker_environ
    from tests.pipeline.worker_probe import heavy_modules, loaded

    ws, workflow = card_ws
    monkeypatch.chdir(tmp_path)  # the jobs' slurm-JOBID.out files
    monkeypatch.setenv("PYTHONPATH", _env()["PYTHONPATH"])
    settings = load_settings(ws.root, env={k: v for k, v in JOBS.items()}).settings.dask
    waited: list[str] = []
    with dask_client(None, 1, settings, "slurm", waited.append) as client:
        assert all(not mods for mods in client.run(heavy_modules).values())  # a fresh worker
        report = run_workflow(ws, _workflow(workflow), workflow_source="test", scheduler=client.scheduler.address,
                              new_run=True)
        assert report.state == "complete" and report.clips_computed > 0
        assert client.run(heavy_modules) == {w: [] for w in client.scheduler_info()["workers"]}
        # no workspace on the worker: neither its settings, nor the workspace, nor the CLI were imported
        assert set(map(tuple, client.run(loaded, *NOT_ON_A_WORKER).values())) == {()}
        assert set(map(tuple, client.run(loaded, "fieldkit.pipeline.tasks").values())) == {("fieldkit.pipeline.tasks",)}
        assert _our_jobs(), "the worker's job is running while the client is open"
        # as on a LocalCluster: glibc's own trim threshold (dask's nanny would set 65536), one BLAS thread
        environ = client.run(worker_environ, "MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")
        assert environ and all(env == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}
                               for env in environ.values()), environ
    assert _our_jobs() == []  # closed: cancelled
    assert all("SLURM job" in line or "submitting" in line for line in waited)


def test_a_job_that_never_starts_is_exit_75_naming_it(slurm, card_ws, tmp_path):
    """A job held by the queue (here: told to begin in an hour) leaves no worker within
    dask.connect_timeout: exit 75 with the job id and the squeue command; the job is cancelled."""
    ws, workflow = card_ws
    env = _env(FIELDKIT_DASK__CONNECT_TIMEOUT="8",
               FIELDKIT_DASK__CLUSTER__JOB_EXTRA_DIRECTIVES='["--begin=now+1hour"]')
    result = _fieldkit(ws, "process", str(workflow), "--cluster", "slurm", "--new-run", "--json", cwd=tmp_path, env=env)
    assert result.returncode == EXIT_TEMPFAIL, result.stderr
    doc = json.loads(result.stdout)
    assert doc["code"] == EXIT_TEMPFAIL and "no Dask worker started within 8 s" in doc["error"]
    assert "squeue -j" in doc["hint"] and "dask.connect_timeout" in doc["hint"]
    assert "Traceback" not in result.stderr
    assert _our_jobs() == []
    with ws.catalogue.read() as s:  # the run row says why it failed; none is left 'running'
        from fieldkit.catalogue import runs as run_rows

        states = [r.state for r in run_rows.list_runs(s)]
    assert "running" not in states and "failed" in states


def test_a_job_sbatch_refuses_is_exit_78_with_its_answer(slurm, card_ws, tmp_path):
    """A partition the cluster does not have: sbatch's own words, at once (not after the
    connect timeout), no traceback, and the run row failed."""
    ws, workflow = card_ws
    before = {run_id for run_id, _ in _runs(ws)}
    env = _env(FIELDKIT_DASK__CLUSTER__QUEUE="no-such-partition", FIELDKIT_DASK__CONNECT_TIMEOUT="120")
    started = time.monotonic()
    result = _fieldkit(ws, "process", str(workflow), "--cluster", "slurm", "--new-run", "--json", cwd=tmp_path, env=env)
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert time.monotonic() - started < 60
    doc = json.loads(result.stdout)
    assert doc["path"] == "sbatch" and "refused" in doc["error"] and "no-such-partition" in doc["error"]
    assert "dask.cluster.queue" in doc["hint"] and "Traceback" not in result.stderr
    assert [state for run_id, state in _runs(ws) if run_id not in before] == ["failed"]
    assert _our_jobs() == []


def test_without_sbatch_it_is_exit_78_naming_it(card_ws, tmp_path):
    """No SLURM needed: a PATH without sbatch."""
    ws, workflow = card_ws
    env = _env(PATH=str(BIN))
    result = _fieldkit(ws, "process", str(workflow), "--cluster", "slurm", "--new-run", "--json", cwd=tmp_path, env=env)
    assert result.returncode == EXIT_CONFIG, result.stderr
    doc = json.loads(result.stdout)
    assert doc["code"] == EXIT_CONFIG and "'sbatch'" in doc["error"] and doc["path"] == "sbatch"
    assert "slurm-client" in doc["hint"] and "login node" in doc["hint"]
    assert "Traceback" not in result.stderr


def _runs(ws) -> list[tuple[int, str]]:
    from fieldkit.catalogue import runs as run_rows

    with ws.catalogue.read() as s:
        return [(r.id, r.state) for r in run_rows.list_runs(s)]


def test_sigterm_while_the_jobs_are_pending_interrupts_and_cancels_them(slurm, card_ws, tmp_path):
    """The graceful stop (SIGTERM, as a scheduler's or the user's kill) reaches a run waiting for
    its jobs: exit 143 within seconds, the run ``interrupted`` (resumable), the jobs cancelled."""
    ws, workflow = card_ws
    before = {run_id for run_id, _ in _runs(ws)}
    env = _env(FIELDKIT_DASK__CONNECT_TIMEOUT="300",
               FIELDKIT_DASK__CLUSTER__JOB_EXTRA_DIRECTIVES='["--begin=now+1hour"]')
    proc = subprocess.Popen([str(BIN / "fieldkit"), "-w", str(ws.root), "process", str(workflow), "--cluster", "slurm",
                             "--new-run", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (_our_jobs() and [r for r in _runs(ws) if r[0] not in before and r[1] == "running"]):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        pending = _our_jobs()
        assert "PENDING" in pending, pending
        proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == EXIT_TERMINATED, err
    assert time.monotonic() - stopped < 60  # not the 300 s connect timeout
    assert json.loads(out)["code"] == EXIT_TERMINATED and "Traceback" not in err
    assert [state for run_id, state in _runs(ws) if run_id not in before] == ["interrupted"]
    assert _our_jobs() == []


@pytest.mark.slow
def test_a_killed_driver_leaves_no_job_behind(slurm, card_ws, tmp_path):
    """SIGKILL cannot be handled: the driver cannot cancel its jobs. Their workers then lose the
    scheduler and end within dask-jobqueue's death timeout (60 s), which ends the jobs."""
    ws, workflow = card_ws
    proc = subprocess.Popen([str(BIN / "fieldkit"), "-w", str(ws.root), "process", str(workflow), "--cluster", "slurm",
                             "--new-run", "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "RUNNING" not in _our_jobs():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    gone = time.monotonic() + 150
    while _our_jobs() and time.monotonic() < gone:
        time.sleep(1)
    assert _our_jobs() == []
