"""An identical re-run (same parameters hash, same planned selection) reuses its run: no second
store when it is complete, a resume when it was interrupted; --new-run always makes a new run."""

from __future__ import annotations

import datetime as dt
import json
import signal

import pytest
import yaml
from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.config.workflow import Workflow
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.pipeline.driver import run_workflow
from fieldkit.testing.cards import audiomoth_card
from fieldkit.workspace import init_workspace
from tests.pipeline.conftest import WORKFLOW
from tests.pipeline.test_resume_distributed import _env, _process


def _card(base, name: str, day: int, count: int):
    return audiomoth_card(base / name, start=dt.datetime(2024, 5, day, 22, 0), count=count, seconds=3.0,
                          sample_rate_hz=48_000, utc_offset_minutes=120, era="1.6.0")


@pytest.fixture
def small_ws(tmp_path):
    """A workspace of 3 recordings processed once (run 1)."""
    ws = init_workspace(tmp_path / "ws")
    _card(tmp_path, "card", 1, 3)
    ingest_card(ws, IngestRequest(tmp_path / "card", "Wood", "N1", timezone="+02:00"))
    first = run_workflow(ws, Workflow.from_dict(WORKFLOW), workflow_source="test", workers=1)
    assert first.state == "complete" and not first.reused
    return ws, first


@pytest.fixture
def workflow_file(tmp_path):
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(WORKFLOW))
    return path


def _runs(ws) -> list[dict]:
    return json.loads(CliRunner().invoke(app, ["-w", str(ws.root), "catalog", "runs", "--json"]).stdout)


def _stores(ws) -> list[str]:
    return sorted(p.name for p in ws.paths.stores.iterdir())


def test_identical_rerun_reuses_the_complete_run(small_ws, workflow_file):
    ws, first = small_ws
    stores = _stores(ws)
    result = CliRunner().invoke(app, ["-w", str(ws.root), "process", str(workflow_file), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["reused"] is True and doc["run_id"] == first.run_id and doc["state"] == "complete"
    assert doc["store"] == first.store and doc["clips_computed"] == 0 and doc["n_clips"] == first.n_clips
    assert [r["id"] for r in _runs(ws)] == [first.run_id] and _stores(ws) == stores
    text = CliRunner().invoke(app, ["-w", str(ws.root), "process", str(workflow_file)])
    assert text.exit_code == 0, text.output
    said = " ".join(text.stderr.split())
    assert (f"run {first.run_id} is identical and complete (store {first.store}): nothing to do; "
            "--new-run makes a new one") in said
    assert [r["id"] for r in _runs(ws)] == [first.run_id] and _stores(ws) == stores


def test_new_run_forces_a_second_run_and_store(small_ws, workflow_file):
    ws, first = small_ws
    result = CliRunner().invoke(app, ["-w", str(ws.root), "process", str(workflow_file), "--new-run", "--json",
                                      "--workers", "1"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["reused"] is False and doc["run_id"] != first.run_id and doc["store"] != first.store
    assert doc["clips_computed"] > 0
    assert [r["id"] for r in _runs(ws)] == [first.run_id, doc["run_id"]] and len(_stores(ws)) == 2
    # both runs are identical now: a plain re-run reuses the newest
    again = run_workflow(ws, Workflow.from_dict(WORKFLOW), workflow_source="test")
    assert again.reused and again.run_id == doc["run_id"]


def test_new_run_and_resume_exclude_each_other(small_ws, workflow_file):
    ws, first = small_ws
    result = CliRunner().invoke(app, ["-w", str(ws.root), "process", str(workflow_file), "--new-run",
                                      "--resume", str(first.run_id)])
    assert result.exit_code == 2 and "--new-run" in result.output
    assert [r["id"] for r in _runs(ws)] == [first.run_id]


def test_other_parameters_make_a_new_run(small_ws):
    ws, first = small_ws
    other = Workflow.from_dict({**WORKFLOW, "features": {**WORKFLOW["features"], "n_mels": 32}})
    report = run_workflow(ws, other, workflow_source="test", workers=1)
    assert not report.reused and report.run_id != first.run_id and report.state == "complete"


def test_a_new_recording_makes_a_new_run(small_ws, tmp_path):
    ws, first = small_ws
    _card(tmp_path, "card2", 3, 1)
    ingest_card(ws, IngestRequest(tmp_path / "card2", "Wood", "N2", timezone="+02:00"))
    report = run_workflow(ws, Workflow.from_dict(WORKFLOW), workflow_source="test", workers=1)
    assert not report.reused and report.run_id != first.run_id and report.n_recordings == first.n_recordings + 1
    assert report.state == "complete" and len(_stores(ws)) == 2


@pytest.mark.slow
def test_an_interrupted_identical_run_is_resumed(tmp_path, workflow_file):
    """The driver is killed after its first task; a plain re-run finishes that run, in its store."""
    ws = init_workspace(tmp_path / "ws")
    audiomoth_card(tmp_path / "card", start=dt.datetime(2024, 5, 2, 22, 0), count=16, seconds=8.0,
                   sample_rate_hz=48_000, utc_offset_minutes=120, era="1.6.0")
    ingest_card(ws, IngestRequest(tmp_path / "card", "Wood", "N2", timezone="+02:00"))
    killed = _process(ws.root, workflow_file, env=_env(FIELDKIT_CRASH_AT="after_task:1"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    [interrupted] = _runs(ws)
    assert interrupted["state"] == "running"
    resumed = _process(ws.root, workflow_file)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    doc = json.loads(resumed.stdout)
    assert doc["run_id"] == interrupted["id"] and doc["resumed"] is True and doc["reused"] is False
    assert doc["state"] == "complete" and doc["store"] == interrupted["store_path"]
    assert doc["clips_skipped"] > 0 and 0 < doc["clips_computed"] < doc["n_clips"]  # nothing done twice
    assert [r["id"] for r in _runs(ws)] == [interrupted["id"]] and len(_stores(ws)) == 1
