"""Every recording accounted for: a run's selection lists each recording of its scope it leaves
out, with one reason; ``process --dry-run`` shows the plan and writes nothing. On the bundled
sample card (the demo's), ingested for real, with the shipped ``birds-16k`` workflow."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fieldkit.cli.app import app
from fieldkit.config.workflow import Workflow, load_workflow
from fieldkit.config.workflow_files import resolve_workflow
from fieldkit.errors import ProcessingError
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.pipeline.plan import EXCLUSION_REASONS, plan_run, select_recordings
from fieldkit.workspace import init_workspace

SAMPLE_CARD = Path(__file__).resolve().parents[2] / "fieldkit" / "data" / "sample_card"
#: birds-16k on the sample card (deployment zone +02:00; window 04:00-21:00 local): four
#: quarantined files, two files with no time in name or header, one starting at 00:00 local.
BIRDS_LEFT_OUT = {
    "20200404_103000.WAV": "status", "20200404_104000.WAV": "status", "20200404_104500.WAV": "status",
    "20200404_105000.WAV": "status", "birds_10s.wav": "no_start_time", "rugr_drum.wav": "no_start_time",
    "S4A03895_20190522_000000.wav": "outside_time_of_day",
}


@pytest.fixture(scope="module")
def sample_ws(tmp_path_factory):
    ws = init_workspace(tmp_path_factory.mktemp("excl") / "ws")
    ingest_card(ws, IngestRequest(SAMPLE_CARD, "Wood", "N1", timezone="+02:00"))
    return ws


def birds(ws) -> Workflow:
    return load_workflow(resolve_workflow("birds-16k", ws.root))


def with_selection(ws, **selection) -> Workflow:
    doc = birds(ws).to_dict()
    doc["selection"] = {**doc["selection"], **selection}
    return Workflow.from_dict(doc)


def cli(ws, *args):
    return CliRunner().invoke(app, ["-w", str(ws.root), *args])


def recordings(ws) -> dict[int, dict]:
    rows = json.loads(cli(ws, "catalog", "recordings", "--json").stdout)
    return {r["id"]: r for r in rows if r["status"] != "sidecar"}


def names(rows, key="archive_path") -> dict[str, dict]:
    return {Path(r[key]).name: r for r in rows}


def row_counts(db: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()


def test_dry_run_lists_every_excluded_recording_and_writes_nothing(sample_ws):
    db = sample_ws.root / "catalogue.sqlite"
    before = (db.read_bytes(), row_counts(db), sorted(p.name for p in sample_ws.paths.stores.iterdir()))
    result = cli(sample_ws, "process", "birds-16k", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert (db.read_bytes(), row_counts(db), sorted(p.name for p in sample_ws.paths.stores.iterdir())) == before
    left_out = names(plan["excluded"])
    assert {name: e["reason"] for name, e in left_out.items()} == BIRDS_LEFT_OUT
    assert all(e["message"] for e in plan["excluded"])
    assert "time_of_day" in left_out["birds_10s.wav"]["message"]
    assert "00:00 local, outside 04:00-21:00" in left_out["S4A03895_20190522_000000.wav"]["message"]
    # every recording (sidecars aside) is either in the plan or listed with its reason
    in_ids = {r["id"] for r in plan["recordings"]}
    assert in_ids | {e["recording_id"] for e in plan["excluded"]} == set(recordings(sample_ws))
    assert not in_ids & {e["recording_id"] for e in plan["excluded"]}
    assert plan["excluded_counts"] == {"status": 4, "no_start_time": 2, "outside_time_of_day": 1}
    assert plan["n_recordings"] == 3 and plan["n_clips"] == sum(r["clips"] for r in plan["recordings"]) == 10
    assert plan["tasks"] >= 1 and plan["estimated_mb"] > 0


def test_dry_run_human_plan(sample_ws):
    result = cli(sample_ws, "process", "birds-16k", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    text = " ".join(result.stderr.split())
    assert "dry run: nothing written" in text and "3 recordings → 10 clips" in text
    assert "left out: 4 status, 2 no start time, 1 outside 04:00-21:00" in text
    assert "rugr_drum" in text and "no_start_time" in text


def test_run_records_its_exclusions(sample_ws, tmp_path):
    result = cli(sample_ws, "process", "birds-16k", "--workers", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {n: e["reason"] for n, e in names(report["excluded"]).items()} == BIRDS_LEFT_OUT
    assert report["excluded_counts"] == {"status": 4, "no_start_time": 2, "outside_time_of_day": 1}
    doc = json.loads(cli(sample_ws, "catalog", "run", str(report["run_id"]), "--json").stdout)
    assert doc["excluded"] == report["excluded"]
    human = cli(sample_ws, "catalog", "run", str(report["run_id"]))
    assert "recordings left out" in human.stderr and "outside_time_of_day" in human.stderr


def test_run_summary_counts_per_reason_and_verbose_lists_them(sample_ws):
    result = CliRunner().invoke(app, ["-v", "-w", str(sample_ws.root), "process", "birds-16k", "--workers", "1",
                                      "--new-run"])  # another test may have made an identical run
    assert result.exit_code == 0, result.output
    text = " ".join(result.stderr.split())
    assert "left out: 4 status, 2 no start time, 1 outside 04:00-21:00" in text
    assert text.count("left out ") == len(BIRDS_LEFT_OUT) and "left out Wood/N1/rugr_drum.wav: no_start_time" in text


def reasons(ws, workflow: Workflow) -> dict[str, str]:
    with ws.catalogue.read() as s:
        _, excluded = select_recordings(s, workflow)
    assert {e.reason for e in excluded} <= set(EXCLUSION_REASONS)
    return {Path(e.archive_path).name: e.reason for e in excluded}


def test_each_reason_names_the_deciding_rule(sample_ws):
    no_window = {"time_of_day": None}
    assert reasons(sample_ws, with_selection(sample_ws, **no_window)) == {
        n: r for n, r in BIRDS_LEFT_OUT.items() if r == "status"}  # undated recordings are fine without a window
    dated = reasons(sample_ws, with_selection(sample_ws, **no_window, start="2020-01-01"))
    assert dated["birds_10s.wav"] == "no_start_time" and dated["S4A03895_20190522_060000.wav"] == "outside_dates"
    rate = reasons(sample_ws, with_selection(sample_ws, **no_window, max_sample_rate_hz=24_000))
    assert rate["20200404_102500.WAV"] == "sample_rate" and "S4A03895_20190522_060000.wav" not in rate
    short = reasons(sample_ws, with_selection(sample_ws, **no_window, min_duration_s=10.1))
    assert short["20200404_103500.WAV"] == "too_short" and short["S4A03895_20190522_060000.wav"] == "too_short"
    assert "birds_10s.wav" not in short  # 10.13 s


def test_recordings_of_unselected_sites_are_out_of_scope(sample_ws):
    assert reasons(sample_ws, with_selection(sample_ws, sites=["Elsewhere"])) == {}


def test_a_recording_giving_no_clip_is_listed(sample_ws):
    doc = with_selection(sample_ws, time_of_day=None).to_dict()
    doc["clips"] = {**doc["clips"], "length_s": 12.0, "min_valid_fraction": 1.0}
    with sample_ws.catalogue.read() as s:
        plan = plan_run(s, Workflow.from_dict(doc), sample_ws.paths.archive, "")
    short = {Path(e.archive_path).name: e.message for e in plan.excluded if e.reason == "shorter_than_clip"}
    assert set(short) == {"20200404_103500.WAV", "birds_10s.wav", "rugr_drum.wav", "S4A03895_20190522_000000.wav",
                          "S4A03895_20190522_060000.wav"}
    assert [Path(r.archive_path).name for r in plan.recordings] == ["20200404_102500.WAV"]
    assert all(i.n_clips for i in plan.items)


def test_a_selection_of_nothing_says_what_was_left_out(sample_ws):
    workflow = with_selection(sample_ws, statuses=["truncated"], min_duration_s=6.0)
    with sample_ws.catalogue.read() as s, pytest.raises(ProcessingError) as caught:
        plan_run(s, workflow, sample_ws.paths.archive, "")
    assert "selects no recording" in str(caught.value)
    assert "left out: 9 status, 1 too_short" in str(caught.value)
