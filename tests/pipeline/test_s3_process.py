"""`fieldkit process` with the archive and the store on a real S3 server (moto, its own process):
workers read raw audio with ranged requests, stores are written through zarr's FsspecStore, the
results equal a local run value for value, a killed driver resumes, memory stays flat."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.config.workflow import Workflow
from fieldkit.curate.lineage import clips_lineage
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.pipeline.driver import run_workflow
from fieldkit.testing.cards import audiomoth_card
from fieldkit.testing.s3server import TRANSPORTS
from fieldkit.testing.s3workspace import copy_archive_to, use_s3_roots
from fieldkit.workspace import init_workspace, open_workspace
from tests.pipeline.conftest import WORKFLOW, arrays_of, assert_same_arrays
from tests.pipeline.test_resume_distributed import _env, _process


def local_and_s3_workspaces(base: Path, server, bucket: str, *, count: int, seconds: float,
                            transport: str = "obstore"):
    """Two copies of one ingested workspace: the first local, the second with its archive and
    stores on ``bucket`` (the archive copied object for object, paths relative as catalogued),
    reached through ``transport`` (fieldkit.testing.s3server.TRANSPORTS)."""
    local = init_workspace(base / "local")
    audiomoth_card(base / "card", start=dt.datetime(2024, 5, 1, 22, 0), count=count, seconds=seconds,
                   sample_rate_hz=48_000, utc_offset_minutes=120, era="1.6.0")
    ingest_card(local, IngestRequest(base / "card", "Wood", "N1", timezone="+02:00"))
    local.close()
    shutil.copytree(base / "local", base / "s3")
    copied = copy_archive_to(base / "s3" / "archive", f"{bucket}/archive", server.storage_options)
    assert copied >= count
    shutil.rmtree(base / "s3" / "archive")  # nothing can be read from the local disk by mistake
    use_s3_roots(base / "s3", {**server.storage_options, **TRANSPORTS[transport]}, archive=f"{bucket}/archive",
                 stores=f"{bucket}/stores")
    return open_workspace(base / "local"), open_workspace(base / "s3")


@pytest.fixture(params=sorted(TRANSPORTS))
def pair(request, tmp_path, s3_server, s3_bucket):
    local, remote = local_and_s3_workspaces(tmp_path, s3_server, s3_bucket, count=4, seconds=6.0,
                                            transport=request.param)
    assert (remote.roots.archive._direct is not None) == (request.param == "obstore")
    yield local, remote, s3_bucket
    local.close()
    remote.close()


def test_a_run_on_s3_equals_the_local_run(pair, s3_server) -> None:
    local, remote, bucket = pair
    workflow = Workflow.from_dict(WORKFLOW)
    on_disk = run_workflow(local, workflow, workflow_source="test", cluster="inprocess")
    on_s3 = run_workflow(remote, workflow, workflow_source="test", cluster="inprocess")
    assert on_disk.state == on_s3.state == "complete", on_s3.failures
    assert on_s3.store == f"{bucket}/stores/run-0001-{workflow.name}.zarr"
    assert on_s3.clips_computed == on_disk.clips_computed > 0
    assert_same_arrays(arrays_of(local, on_disk.store), arrays_of(remote, on_s3.store))
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket[5:], Prefix="stores/")["Contents"]]
    assert f"stores/run-0001-{workflow.name}.zarr/zarr.json" in keys and any(".zarr/mel/c." in k for k in keys)
    assert not (remote.root / "stores").exists() or not any((remote.root / "stores").iterdir())
    # the readers open the store at its URL: lineage of a clip, the run listing
    [s3_clip], [disk_clip] = clips_lineage(remote, on_s3.run_id, [5]), clips_lineage(local, on_disk.run_id, [5])
    assert s3_clip["clip"] == disk_clip["clip"] and s3_clip["processing"]["store"] == on_s3.store
    assert s3_clip["recording"] == disk_clip["recording"]
    shown = CliRunner().invoke(app, ["-w", str(remote.root), "catalog", "run", str(on_s3.run_id), "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["store_path"] == on_s3.store
    # a second identical invocation finds the complete store on S3 and reuses it
    again = run_workflow(remote, workflow, workflow_source="test", cluster="inprocess")
    assert again.reused and again.run_id == on_s3.run_id


def test_a_killed_driver_resumes_on_s3(tmp_path, s3_server, s3_bucket) -> None:
    """kill -9 of the driver after its first task; --resume finishes the same store on S3, whose
    arrays then equal an uninterrupted local run's."""
    local, remote = local_and_s3_workspaces(tmp_path, s3_server, s3_bucket, count=12, seconds=8.0)
    workflow_file = tmp_path / "wf.yaml"
    workflow_file.write_text(yaml.safe_dump(WORKFLOW))
    whole = run_workflow(local, Workflow.from_dict(WORKFLOW), workflow_source="test", cluster="inprocess")
    killed = _process(remote.root, workflow_file, "--cluster", "inprocess",
                      env=_env(FIELDKIT_CRASH_AT="after_task:2"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = _process(remote.root, workflow_file, "--cluster", "inprocess", "--resume", "1")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # the zarr store's asynchronous S3 session is closed at exit: no aiohttp warning or traceback
    assert "Unclosed client session" not in resumed.stderr and "Traceback" not in resumed.stderr, resumed.stderr
    doc = json.loads(resumed.stdout)
    assert doc["state"] == "complete" and doc["store"].startswith(s3_bucket)
    assert doc["clips_skipped"] > 0 and 0 < doc["clips_computed"] < doc["n_clips"]  # nothing done twice
    assert_same_arrays(arrays_of(local, whole.store), arrays_of(remote, doc["store"]))
    local.close()
    remote.close()


_MEASURE = """
import json, sys
from fieldkit.io.storage import open_root
from fieldkit.pipeline.spec import ItemSpec
from fieldkit.pipeline.tasks import item_clips

def hwm_mb():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024

where, path, frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = None if where == "local" else open_root(where, base=".", options={"endpoint_url": sys.argv[4]})
item = ItemSpec(1, path, "PCM_16", 96_000, 1, frames, 0, frames // 288_000, 0, root)
clips = item_clips(item, 16_000, "HQ", 48_000, 48_000, 262_144)
first = next(clips)  # imports done, the first ranged block and the resampler's buffers in memory
base = hwm_mb()
n = len(first[0]) + sum(len(c) for c, _, _ in clips)
print(json.dumps({"base_mb": base, "peak_mb": hwm_mb(), "clips": n}))
"""


def _peak(*argv: str) -> dict:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _MEASURE, *argv], capture_output=True, text=True, check=False,
                          env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_reading_a_long_file_from_s3_keeps_memory_flat(tmp_path, s3_server, s3_bucket) -> None:
    """10 min of 96 kHz 16-bit audio (115 MB) streamed from S3 through the task's reading code:
    memory grows by the ranged-read blocks (8 MB), not by the file, and stays near a local read."""
    import soundfile as sf

    from fieldkit.io.storage import open_root

    frames = 96_000 * 600
    path = tmp_path / "long.wav"
    rng = np.random.default_rng(3)
    with sf.SoundFile(path, "w", 96_000, 1, "PCM_16") as out:
        for _ in range(60):
            out.write(rng.integers(-8000, 8000, 96_000 * 10, dtype=np.int16))
    root = open_root(f"{s3_bucket}/archive", base=tmp_path, options=s3_server.storage_options)
    with open(path, "rb") as fh:
        root.put_new("long.wav", iter(lambda: fh.read(8 << 20), b""))
    size_mb = path.stat().st_size / 2**20
    local = _peak("local", str(path), str(frames))
    remote = _peak(f"{s3_bucket}/archive", "long.wav", str(frames), s3_server.endpoint)
    assert local["clips"] == remote["clips"] == 200
    grown = remote["peak_mb"] - remote["base_mb"]
    print(f"local {local}, S3 {remote}, file {size_mb:.0f} MB")
    assert grown < 48 < size_mb / 2, (remote, local, size_mb)  # a whole download would add >= 115 MB
    # the S3 client's libraries, imported on the first S3 read, cost some MB once, whatever the file
    assert remote["peak_mb"] < local["peak_mb"] + 96, (remote, local)
