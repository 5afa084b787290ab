"""Which path runs the tasks (in process, a LocalCluster, a scheduler), why, and that every path
stores the same values and accounts for failures and resumes the same way."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
import yaml
from typer.testing import CliRunner

from fieldkit.catalogue import runs as run_rows
from fieldkit.cli.app import app
from fieldkit.config.settings import DaskSettings
from fieldkit.config.workflow import Workflow
from fieldkit.errors import EXIT_PARTIAL, EXIT_USAGE
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.pipeline.driver import run_workflow
from fieldkit.pipeline.execution import (
    MIN_AUDIO_S_FOR_CLUSTER,
    MIN_CORES_FOR_CLUSTER,
    choose_path,
    usable_cores,
)
from fieldkit.testing.cards import audiomoth_card
from fieldkit.workspace import init_workspace
from tests.pipeline.conftest import WORKFLOW, arrays_of, assert_same_arrays, process_card

SMALL, LARGE = 600.0, MIN_AUDIO_S_FOR_CLUSTER + 1


@pytest.mark.parametrize(("cluster", "scheduler", "workers", "settings", "audio_s", "kind", "n", "why"), [
    ("auto", None, 1, {}, LARGE, "inprocess", 1, "one worker"),
    ("auto", None, None, {"n_workers": 1}, LARGE, "inprocess", 1, "one worker"),
    ("auto", None, 2, {}, SMALL, "inprocess", 1, "under 3 h"),
    ("auto", None, None, {}, SMALL, "inprocess", 1, "under 3 h"),  # the default n_workers is 2
    ("auto", None, 2, {}, LARGE, "local", 2, "LocalCluster"),
    ("auto", None, None, {"n_workers": 4}, LARGE, "local", 4, "LocalCluster"),
    ("local", None, 1, {}, SMALL, "local", 1, "--cluster local"),
    ("inprocess", None, 2, {}, LARGE, "inprocess", 2, "2 task threads"),  # --workers given: task threads
    ("inprocess", None, None, {}, LARGE, "inprocess", 1, "one task at a time"),  # dask.n_workers is for clusters
    ("auto", "tcp://h:8786", 1, {}, SMALL, "scheduler", 1, "tcp://h:8786"),
    ("inprocess", None, 1, {"scheduler_address": "tcp://s:1"}, SMALL, "scheduler", 1, "tcp://s:1"),
])
def test_the_rule(cluster, scheduler, workers, settings, audio_s, kind, n, why, monkeypatch):
    """The rule on a machine of 8 usable cores (on fewer than 3, see the next test)."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    path = choose_path(cluster, scheduler, workers, DaskSettings(**settings), audio_s, cores=8)
    assert (path.kind, path.workers) == (kind, n) and why in path.reason


@pytest.mark.parametrize("audio_s", [SMALL, LARGE, 100 * 3600.0])
@pytest.mark.parametrize("workers", [2, 4])
def test_two_cores_run_several_workers_in_process(workers, audio_s, monkeypatch):
    """On 2 cores the one-worker path already uses both (its audio and write threads) and a
    LocalCluster of 2 was slower than it at 10 h: auto never starts one there, whatever the
    job's size; --cluster local still does."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    path = choose_path("auto", None, workers, DaskSettings(), audio_s, cores=2)
    assert (path.kind, path.workers) == ("inprocess", 1) and "2 usable cores" in path.reason
    assert choose_path("local", None, workers, DaskSettings(), audio_s, cores=2).kind == "local"
    assert choose_path("auto", None, workers, DaskSettings(), LARGE, cores=MIN_CORES_FOR_CLUSTER).kind == "local"


def test_usable_cores_are_this_process_s_affinity():
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_a_scheduler_address_in_the_environment_wins(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://env:8786")
    path = choose_path("auto", None, 1, DaskSettings(), SMALL)
    assert path.kind == "scheduler" and path.address == "tcp://env:8786"


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="auto, local, inprocess"):
        choose_path("threads", None, 1, DaskSettings(), SMALL)


@pytest.fixture(scope="module")
def processed(tmp_path_factory, workflow):
    """The shared pipeline card (synthetic, clipped and real recordings) in a workspace of this
    module's own (the shared one must keep its single run), processed on a real LocalCluster of
    two worker processes."""
    return process_card(tmp_path_factory.mktemp("execution"), workflow)


@pytest.mark.parametrize("workers", [1, 2], ids=["one-task-at-a-time", "two-task-threads"])
def test_in_process_stores_the_same_values_as_a_local_cluster(processed, workflow, workers):
    ws, on_cluster = processed
    assert on_cluster.execution == "local" and on_cluster.scheduler.startswith("tcp://")
    here = run_workflow(ws, workflow, workflow_source="test", workers=workers, cluster="inprocess", new_run=True)
    assert here.state == "complete" and here.execution == "inprocess" and here.scheduler is None
    assert (here.clips_computed, here.audio_seconds, here.n_clips) == (
        on_cluster.clips_computed, on_cluster.audio_seconds, on_cluster.n_clips)
    assert_same_arrays(arrays_of(ws, here.store), arrays_of(ws, on_cluster.store))


def _cli(ws, *args: str, env: dict | None = None):
    return CliRunner().invoke(app, ["-w", str(ws.root), *args], env=env)


@pytest.fixture
def workflow_file(tmp_path):
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(WORKFLOW))
    return path


def test_verbose_says_which_path_and_why(processed, workflow_file):
    ws, _ = processed
    result = _cli(ws, "-v", "process", str(workflow_file), "--workers", "1", "--new-run")
    assert result.exit_code == 0, result.output
    assert "tasks run in this process: one worker" in " ".join(result.stderr.split())
    result = _cli(ws, "-v", "process", str(workflow_file), "--workers", "1", "--cluster", "local", "--new-run",
                  "--json")
    assert result.exit_code == 0, result.output
    assert "tasks run on a LocalCluster: --cluster local" in " ".join(result.stderr.split())
    doc = json.loads(result.stdout)
    assert doc["execution"] == "local" and doc["scheduler"].startswith("tcp://")


def test_the_setting_and_the_option(processed, workflow_file):
    ws, _ = processed
    by_setting = _cli(ws, "process", str(workflow_file), "--workers", "1", "--new-run", "--json",
                      env={"FIELDKIT_DASK__CLUSTER": "local"})
    assert by_setting.exit_code == 0, by_setting.output
    assert json.loads(by_setting.stdout)["execution"] == "local"
    by_option = _cli(ws, "process", str(workflow_file), "--workers", "1", "--new-run", "--json",
                     "--cluster", "inprocess", env={"FIELDKIT_DASK__CLUSTER": "local"})
    assert json.loads(by_option.stdout)["execution"] == "inprocess"  # the flag beats the setting
    both = _cli(ws, "process", str(workflow_file), "--scheduler", "tcp://127.0.0.1:9", "--cluster", "local")
    assert both.exit_code == EXIT_USAGE and "give one of them" in " ".join(both.output.split())
    unknown = _cli(ws, "process", str(workflow_file), "--cluster", "threads")
    assert unknown.exit_code == EXIT_USAGE


def test_process_help_documents_the_rule():
    text = " ".join(CliRunner().invoke(app, ["process", "--help"], env={"COLUMNS": "200"}).stdout.replace("│", " ").split())
    assert "--cluster" in text and "under 3 cores" in text and "under 3 h of pending audio" in text and "-v logs the choice" in text


@pytest.fixture
def small_card(tmp_path):
    card = tmp_path / "card"
    audiomoth_card(card, start=dt.datetime(2024, 5, 3, 22, 0), count=4, seconds=5.0, sample_rate_hz=48_000,
                   utc_offset_minutes=120, era="1.6.0")
    return card


@pytest.mark.parametrize("cluster", ["inprocess", "local"])
def test_a_failed_task_is_accounted_and_resumed_the_same_way(tmp_path, small_card, cluster):
    """A recording that cannot be decoded fails its task on either path: the run is failed, the
    failure names the recording, its derivative rows are failed; once the file is readable again
    ``--resume`` finishes the run and the store equals an in-process run's."""
    ws = init_workspace(tmp_path / f"ws-{cluster}")
    ingest_card(ws, IngestRequest(small_card, "Wood", "N3", timezone="+02:00"))
    workflow = Workflow.from_dict({**WORKFLOW, "store": {"clips_per_chunk": 4, "clips_per_shard": 8}})
    archived = sorted(ws.paths.archive.rglob("*.WAV"))
    broken, good_bytes = archived[1], archived[1].read_bytes()
    broken.chmod(0o644)  # the archive is read-only: this test breaks its own copy, then mends it
    broken.write_bytes(b"\0" * len(good_bytes))  # decoding it fails

    failed = run_workflow(ws, workflow, workflow_source="test", workers=2, cluster=cluster)
    assert failed.state == "failed" and failed.exit_code == EXIT_PARTIAL and failed.execution == cluster
    assert len(failed.failures) == 1 and broken.name in failed.failures[0]["message"]
    assert failed.clips_computed == failed.n_clips - (failed.failures[0]["clips"][1] - failed.failures[0]["clips"][0])
    with ws.catalogue.read() as s:
        row = run_rows.get_run(s, failed.run_id)
    assert row.state == "failed" and broken.name in (row.message or "")

    broken.write_bytes(good_bytes)
    resumed = run_workflow(ws, workflow, workflow_source="test", workers=2, cluster=cluster, resume=failed.run_id)
    assert resumed.state == "complete" and resumed.run_id == failed.run_id
    assert resumed.clips_computed == failed.n_clips - failed.clips_computed  # only the failed task again
    reference = run_workflow(ws, workflow, workflow_source="test", cluster="inprocess", new_run=True)
    assert_same_arrays(arrays_of(ws, resumed.store), arrays_of(ws, reference.store))


@pytest.mark.parametrize("overlap", [False, True], ids=["one-thread", "overlap"])
def test_memory_stays_flat_in_process(tmp_path, overlap):
    """In process the driver streams audio in blocks and holds one shard at a time, as a worker
    does: the peak of Python and numpy allocations (tracemalloc) for a 4-minute recording is
    that of a 24-second one, and an 8-minute one's that of the 4-minute one. With the overlap
    (dask.overlap) the audio thread holds one extraction batch of clips ahead and the writer one
    shard behind: a fixed allowance of one read block's buffers (int16 read, float32, mono,
    resampled: at most 14 bytes per frame) and of that batch's float32 clips, whatever the
    length."""
    import tracemalloc

    from fieldkit.pipeline.plan import _dsp_spec
    from fieldkit.pipeline.spec import DspSpec
    from fieldkit.pipeline.tasks import read_ahead_clips
    from fieldkit.workspace import open_workspace

    init_workspace(tmp_path / "ws")
    ws = open_workspace(tmp_path / "ws", flags={"dask": {"overlap": overlap}})
    assert ws.settings.dask.overlap is overlap
    for name, seconds in (("short", 24.0), ("long", 240.0), ("longer", 480.0)):
        card = tmp_path / f"card-{name}"
        audiomoth_card(card, start=dt.datetime(2024, 5, 4, 6, 0), count=1, seconds=seconds, sample_rate_hz=48_000,
                       utc_offset_minutes=120, era="1.6.0")
        ingest_card(ws, IngestRequest(card, "Wood", name, timezone="+02:00"))

    def peak(deployment: str) -> int:
        workflow = Workflow.from_dict({**WORKFLOW, "name": f"flat-{deployment}",
                                       "selection": {"deployments": [deployment]}})
        tracemalloc.reset_peak()
        report = run_workflow(ws, workflow, workflow_source="test", cluster="inprocess", new_run=True)
        assert report.state == "complete" and report.execution == "inprocess"
        return tracemalloc.get_traced_memory()[1]

    tracemalloc.start()
    try:
        peak("short")  # first calls: imports, caches, filter banks
        short, long, longer = peak("short"), peak("long"), peak("longer")
    finally:
        tracemalloc.stop()
    # the audio thread's one read block, and one extraction batch of float32 clips held ahead
    dsp = _dsp_spec(Workflow.from_dict(WORKFLOW), WORKFLOW["resample"]["target_rate_hz"])
    clips_ahead = read_ahead_clips(dsp, WORKFLOW["store"]["clips_per_shard"])
    allowance = 14 * DspSpec.block_frames + 4 * dsp.clip_len * clips_ahead if overlap else 0
    assert long <= 1.25 * short + allowance, (short, long)
    assert longer <= 1.1 * long, (long, longer)


def _write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_cgroup_cpu_quota_bounds_the_usable_cores(tmp_path):
    """docker --cpus, a Kubernetes CPU limit or a SLURM job's cgroup leave the affinity at every
    core of the host: the quota of the process's cgroup (or of a parent, the tightest) counts."""
    from fieldkit.pipeline.execution import cgroup_cpu_quota

    v2, proc = tmp_path / "v2", tmp_path / "cgroup-v2"
    _write(proc, "0::/user.slice/job\n")
    _write(v2 / "cpu.max", "max 100000\n")
    _write(v2 / "user.slice" / "cpu.max", "150000 100000\n")  # 1.5 cores: 2 usable
    _write(v2 / "user.slice" / "job" / "cpu.max", "max 100000\n")
    assert cgroup_cpu_quota(str(v2), str(proc)) == 2
    assert usable_cores(str(v2), str(proc)) == min(2, len(os.sched_getaffinity(0)))
    _write(v2 / "user.slice" / "job" / "cpu.max", "50000 100000\n")  # half a core: still one
    assert cgroup_cpu_quota(str(v2), str(proc)) == 1 and usable_cores(str(v2), str(proc)) == 1

    v1, proc1 = tmp_path / "v1", tmp_path / "cgroup-v1"
    _write(proc1, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    _write(v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "300000\n")
    _write(v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    _write(v1 / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    _write(v1 / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_quota(str(v1), str(proc1)) == 3

    _write(v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "-1\n")  # no quota anywhere
    assert cgroup_cpu_quota(str(v1), str(proc1)) is None
    assert usable_cores(str(v1), str(proc1)) == len(os.sched_getaffinity(0))
    assert cgroup_cpu_quota(str(v1), str(tmp_path / "absent")) is None
    assert 1 <= usable_cores() <= len(os.sched_getaffinity(0))  # this machine, as it is
