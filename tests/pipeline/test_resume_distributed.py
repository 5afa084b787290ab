"""Killing the driver mid-run and resuming; a real `dask scheduler` with two `dask worker`s."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from fieldkit.config.workflow import Workflow
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.pipeline.driver import run_workflow
from fieldkit.testing.cards import audiomoth_card
from fieldkit.workspace import init_workspace
from tests.pipeline.conftest import WORKFLOW, arrays_of, assert_same_arrays

BIN = Path(sys.executable).parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIELDKIT_", "DASK_"))}
    env.update(extra)
    return env


def _process(ws: Path, workflow: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``fieldkit process`` in its own session; when the driver exits (or is killed), its
    LocalCluster workers are killed at once, as they would die with it. Output goes to files,
    not pipes: the workers inherit the driver's descriptors, so reading pipes to EOF would wait
    for the workers and let them finish every task of a killed driver."""
    out_path, err_path = ws / f".process-{time.monotonic_ns()}.out", ws / f".process-{time.monotonic_ns()}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([str(BIN / "fieldkit"), "-w", str(ws), "process", str(workflow), "--json", *args],
                                stdout=out, stderr=err, text=True, env=env or _env(), start_new_session=True)
        try:
            proc.wait(timeout=300)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # workers of a killed driver must not linger
            except ProcessLookupError:
                pass
    stdout, stderr = out_path.read_text(), err_path.read_text()
    out_path.unlink()
    err_path.unlink()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture
def workflow_file(tmp_path) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(WORKFLOW))
    return path


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A run long enough to be killed midway: 30 tasks of 8 one-second clips (4 minutes of
    48 kHz audio), about 1 s of work for two workers, against ~10 ms from the first result
    to the driver's death (the shared processed workspace is done within that window)."""
    base = tmp_path_factory.mktemp("resume")
    ws = init_workspace(base / "ws")
    audiomoth_card(base / "card", start=dt.datetime(2024, 5, 2, 22, 0), count=30, seconds=8.0,
                   sample_rate_hz=48_000, utc_offset_minutes=120, era="1.6.0")
    ingest_card(ws, IngestRequest(base / "card", "Wood", "N2", timezone="+02:00"))
    report = run_workflow(ws, Workflow.from_dict(WORKFLOW), workflow_source="test", workers=2, cluster="local")
    assert report.state == "complete" and report.tasks == 30, report
    return ws, report


@pytest.mark.slow
@pytest.mark.reliability("E4")
@pytest.mark.parametrize("cluster", ["local", "inprocess"])
def test_kill_driver_then_resume_gives_identical_store(long_run, workflow_file, cluster):
    """On a LocalCluster and in process alike (fieldkit.pipeline.execution)."""
    ws, reference = long_run
    killed = _process(ws.root, workflow_file, "--new-run", "--cluster", cluster,
                      env=_env(FIELDKIT_CRASH_AT="after_task:1"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    runs = json.loads(subprocess.run([str(BIN / "fieldkit"), "-w", str(ws.root), "catalog", "runs", "--json"],
                                     capture_output=True, text=True, env=_env()).stdout)
    interrupted = max(r["id"] for r in runs)
    store = next(r["store_path"] for r in runs if r["id"] == interrupted)
    import zarr
    done_before = int(np.asarray(zarr.open_group(str(ws.root / store), mode="r")["progress/done"][:]).sum())
    assert 0 < done_before < reference.n_clips
    resumed = _process(ws.root, workflow_file, "--resume", str(interrupted), "--cluster", cluster)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    doc = json.loads(resumed.stdout)
    assert doc["run_id"] == interrupted and doc["state"] == "complete" and doc["execution"] == cluster
    assert doc["clips_computed"] == reference.n_clips - done_before  # nothing complete computed twice
    assert_same_arrays(arrays_of(ws, store), arrays_of(ws, reference.store))


@pytest.mark.slow
def test_resume_with_other_parameters_is_refused(processed, tmp_path):
    ws, reference = processed
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**WORKFLOW, "features": {**WORKFLOW["features"], "n_mels": 32}}))
    result = _process(ws.root, other, "--resume", str(reference.run_id))
    assert result.returncode != 0 and "other parameters" in result.stderr


@pytest.mark.slow
def test_real_scheduler_and_two_workers_give_the_same_arrays(processed, workflow_file, tmp_path):
    ws, reference = processed
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        procs += [subprocess.Popen([str(BIN / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1",
                                    "--no-dashboard", "--name", f"w{i}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
                  for i in range(2)]
        from distributed import Client
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        result = _process(ws.root, workflow_file, "--scheduler", address, "--new-run")
        assert result.returncode == 0, result.stderr[-2000:]
        doc = json.loads(result.stdout)
        assert doc["scheduler"] == address
        assert_same_arrays(arrays_of(ws, doc["store"]), arrays_of(ws, reference.store))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
