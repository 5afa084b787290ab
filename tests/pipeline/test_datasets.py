"""Datasets: labels by overlap, grouped splits that never leak a group, reproducible hashes."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict

import pytest
from typer.testing import CliRunner

from fieldkit.catalogue.records import AnnotationSpan
from fieldkit.cli import app
from fieldkit.config.workflow import Workflow
from fieldkit.curate.datasets import SPLIT_KEYS, clip_labels
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.pipeline.driver import run_workflow
from fieldkit.testing.cards import audiomoth_card
from fieldkit.workspace import init_workspace

WF = {"name": "ds", "resample": {"target_rate_hz": 16000}, "clips": {"length_s": 1.0},
      "features": {"n_fft": 256, "hop_length": 128, "n_mels": 16, "n_mfcc": 8, "compute": ["mel", "mfcc", "rms"]},
      "store": {"clips_per_chunk": 4, "clips_per_shard": 8}}


@pytest.fixture(scope="module")
def survey(tmp_path_factory, module_catalogue_backend):
    """3 sites × 2 deployments, each its own AudioMoth (serial) on its own nights; 1-s clips; on
    each catalogue backend."""
    base = tmp_path_factory.mktemp("survey")
    ws = init_workspace(base / "ws", catalogue_url=module_catalogue_backend)
    for s, site in enumerate("ABC"):
        for d in range(2):
            card = base / f"card-{site}{d}"
            audiomoth_card(card, start=dt.datetime(2024, 5, 1 + 2 * s + d, 22, 0), count=4, seconds=3.0,
                           sample_rate_hz=16000, serial=f"24E1440{s}{d}E080032", interval_s=1800)
            ingest_card(ws, IngestRequest(card, f"site-{site}", f"dep-{d}"))
    report = run_workflow(ws, Workflow.from_dict(WF), workers=2)
    runner = CliRunner()
    # label = the hour the recording started (22 or 23): two classes present at every site
    result = runner.invoke(app, ["-w", str(ws.root), "annotations", "import", "--label-from",
                                 r"_(?P<label>\d\d)\d{4}\.WAV$", "--json"])
    assert result.exit_code == 0, result.output
    return ws, report


def cli(ws, *args):
    result = CliRunner().invoke(app, ["-w", str(ws.root), *args, "--json"])
    return result.exit_code, (json.loads(result.stdout) if result.stdout.strip() else None), result.stderr


def test_clip_labels_by_overlap():
    anns = [AnnotationSpan(begin_s=0.2, end_s=0.3, label="call"), AnnotationSpan(begin_s=0.0, end_s=10.0, label="rain"),
            AnnotationSpan(begin_s=0.95, end_s=1.5, label="edge")]
    assert clip_labels(0.0, 1.0, anns, 0.5) == ["call", "rain"]  # edge overlaps 0.05 s of a 0.55 s call
    assert clip_labels(1.0, 1.0, anns, 0.5) == ["edge", "rain"]
    assert clip_labels(5.0, 1.0, anns[:1], 0.5) == []


@pytest.mark.parametrize("key", SPLIT_KEYS)
def test_no_group_in_two_splits(survey, key):
    ws, report = survey
    code, summary, err = cli(ws, "dataset", "create", f"by-{key}", "--run", str(report.run_id), "--split-by", key,
                             "--seed", "3")
    assert code == 0, err
    assert summary["leaking_groups"] == [] and summary["clips"] == 72
    assert set(summary["splits"]) == {"train", "validation", "test"} and all(summary["splits"].values())
    from fieldkit.catalogue import labels as rows
    with ws.catalogue.read() as s:
        items = rows.get_dataset(s, f"by-{key}").items
        lineage = rows.recording_lineage(s, sorted({i.recording_id for i in items}))
        devices = rows.recording_devices(s, sorted({i.recording_id for i in items}))
    group_of = {
        "site": lambda i: lineage[i.recording_id].site,
        "deployment": lambda i: (lineage[i.recording_id].site, lineage[i.recording_id].deployment),
        "device": lambda i: devices[i.recording_id],
        "day": lambda i: (lineage[i.recording_id].site, lineage[i.recording_id].start_time_utc[:10]),
        "recording": lambda i: i.recording_id,
    }[key]
    splits = defaultdict(set)
    for item in items:
        splits[group_of(item)].add(item.split)
    assert all(len(s) == 1 for s in splits.values()), dict(splits)


def test_same_seed_same_hash_other_seed_other_hash(survey):
    ws, report = survey
    hashes = [cli(ws, "dataset", "create", "seeded", "--run", str(report.run_id), "--split-by", "recording",
                  "--seed", str(seed))[1]["manifest_hash"] for seed in (7, 7, 8)]
    assert hashes[0] == hashes[1] != hashes[2]
    _, listed, _ = cli(ws, "dataset", "list")
    assert [d["version"] for d in listed if d["name"] == "seeded"] == [1, 2, 3]


def test_too_few_groups_is_an_error_with_the_count(processed):
    ws, report = processed
    CliRunner().invoke(app, ["-w", str(ws.root), "annotations", "import", "--label-from", r"(?P<label>\.(WAV|wav))$"])
    code, _, err = cli(ws, "dataset", "create", "one-site", "--run", str(report.run_id), "--split-by", "site")
    assert code == 65 and "1 group exists for site" in " ".join(err.split())


def test_lineage_from_clip_to_card(survey):
    ws, report = survey
    code, doc, err = cli(ws, "lineage", f"{report.run_id}:5")
    assert code == 0, err
    rec = doc["recording"]
    assert rec["sha256"] and rec["archive_path"].startswith("site-")
    assert rec["sources"][0]["card"].startswith("path:") and rec["sources"][0]["card_path"].endswith(".WAV")
    assert doc["processing"]["params_hash"] == Workflow.from_dict(WF).params_hash()
    code, _, err = cli(ws, "lineage", f"{report.run_id}:99999")
    assert code == 66 and "no clip 99999" in err


def test_malformed_annotation_file_imports_nothing_and_names_lines(survey, tmp_path):
    ws, _ = survey
    bad = tmp_path / "20240501_220000.Table.1.selections.txt"
    bad.write_text("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tSpecies\n"
                   "1\tSpectrogram 1\t1\t0.5\t0.9\towl\n"
                   "2\tSpectrogram 1\t1\t1.5\t1.2\towl\n"
                   "3\tSpectrogram 1\t1\tabc\t2.0\towl\n")
    before = cli(ws, "catalog", "annotations")[1]
    code, doc, _ = cli(ws, "annotations", "import", str(bad))
    assert code == 65 and doc["imported"] == 0
    lines = sorted({p["line"] for p in doc["files"][0]["problems"]})
    assert lines == [3, 4]
    assert cli(ws, "catalog", "annotations")[1] == before
    code, doc, _ = cli(ws, "annotations", "import", str(bad), "--skip-bad-rows")
    assert code == 0 and doc["imported"] == 1


def test_export_has_complete_lineage_for_every_clip(survey, tmp_path):
    ws, report = survey
    cli(ws, "dataset", "create", "lineage-check", "--run", str(report.run_id), "--split-by", "deployment")
    code, doc, err = cli(ws, "export", "lineage-check", "--format", "numpy", "--out", str(tmp_path / "out"))
    assert code == 0, err
    lineage = json.loads((tmp_path / "out" / "lineage.json").read_text())
    records = lineage["clips"] if isinstance(lineage, dict) else lineage
    assert len(records) == sum(doc["clips_per_split"].values()) == 72
    for rec in records:
        assert rec["recording_sha256"] and rec["archive_path"] and rec["cards"] and rec["ingest_sessions"]
        assert rec["source_paths"] and rec["run_id"] == report.run_id and rec["params_hash"]


def test_human_output_of_the_handoff_has_words_not_reprs(survey, tmp_path):
    """Issue #13: summary lines print splits as 'train 7, ...', offsets rounded, no dict or list repr."""
    ws, report = survey

    def human(*args):
        result = CliRunner().invoke(app, ["-w", str(ws.root), *args], env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.stderr
        assert not re.search(r"[{\[]['\"\d]", result.stderr), result.stderr
        return " ".join(result.stderr.split())

    created = human("dataset", "create", "words", "--run", str(report.run_id), "--split-by", "deployment")
    assert re.search(r"splits train \d+, validation \d+, test \d+;", created)
    exported = human("export", "words", "--format", "numpy", "--out", str(tmp_path / "words"))
    assert re.search(r"exported \d+ clips \(train \d+, validation \d+, test \d+\) as numpy", exported)
    offset = cli(ws, "lineage", f"{report.run_id}:5")[1]["clip"]["offset_s"]
    assert f"offset {offset:.1f} s," in human("lineage", f"{report.run_id}:5")
    for args in (("catalog", "runs"), ("catalog", "run", str(report.run_id)), ("dataset", "list")):
        human(*args)


def test_export_with_augment_through_the_cli(survey, tmp_path):
    """#15: --augment adds train-only items, recorded in the export's files and its catalogue row."""
    ws, report = survey
    cli(ws, "dataset", "create", "augmented", "--run", str(report.run_id), "--split-by", "deployment")
    code, doc, err = cli(ws, "export", "augmented", "--format", "numpy", "--out", str(tmp_path / "aug"),
                         "--augment", "pitch:+2,reverse|gain:-6", "--augment-seed", "3")
    assert code == 0, err
    index = (tmp_path / "aug" / "augmented" / "index.csv").read_text().splitlines()
    assert len(index) - 1 == 2 * doc["clips_per_split"]["train"] and "augmented/lineage.json" in doc["files"]
    code, doc, _ = cli(ws, "export", "augmented", "--format", "numpy", "--out", str(tmp_path / "bad"),
                       "--augment", "pitch:+2,warp:3")
    assert code == 78 and "'warp:3'" in doc["error"] and not (tmp_path / "bad").exists()
