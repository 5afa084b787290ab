"""End to end on real labelled data: ingest → process → annotations → dataset → export → baseline.

Bengalese finch songs (Bird0, syllable annotations) and the Free Spoken Digit Dataset (labels from
file names, one deployment per speaker so no speaker is in two splits). Both stay in
../shared/data (licences), so these tests skip when it is absent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fieldkit.cli import app

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def run(ws: Path, *args: str, expect: tuple[int, ...] = (0,)):
    result = CliRunner().invoke(app, ["-w", str(ws), *args, "--json"], catch_exceptions=False)
    assert result.exit_code in expect, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture(autouse=True)
def _need_data():
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")


def _workflow(tmp_path: Path, doc: dict) -> str:
    path = tmp_path / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_bird0_syllables(tmp_path):
    ws = tmp_path / "ws"
    CliRunner().invoke(app, ["init", str(ws)])
    run(ws, "ingest", str(SHARED / "crowsetta/birdsongrec/Bird0/Wave"), "--site", "lab", "--deployment", "bird0")
    imported = run(ws, "annotations", "import", str(SHARED / "crowsetta/csv/birdsongrec_Bird0_Annotation.csv"),
                   "--file-column", "notated_path", "--skip-bad-rows")
    assert imported["imported"] == 900
    wf = _workflow(tmp_path, {"name": "syllables", "resample": {"target_rate_hz": 32000},
                              "clips": {"length_s": 0.1, "hop_s": 0.05},
                              "features": {"n_fft": 512, "hop_length": 160, "n_mels": 40, "n_mfcc": 20, "fmin_hz": 300,
                                           "compute": ["mel", "mfcc", "centroid", "bandwidth", "rms"]},
                              "store": {"clips_per_chunk": 16, "clips_per_shard": 256}})
    processed = run(ws, "process", wf)
    assert processed["state"] == "complete"
    ds = run(ws, "dataset", "create", "bird0", "--run", str(processed["run_id"]), "--split-by", "recording",
             "--single-label", "--seed", "1")
    assert ds["leaking_groups"] == [] and ds["groups"] == 20
    exported = run(ws, "export", "bird0", "--format", "parquet")
    metrics = run(ws, "baseline", exported["out_dir"])
    test = metrics["splits"]["test"]
    print(f"\nBird0 syllables: test accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f}, "
          f"majority chance {test['chance_majority_accuracy']:.3f}, uniform {test['chance_uniform_accuracy']:.3f}")
    assert test["accuracy"] > 2 * test["chance_majority_accuracy"]


def test_fsdd_digits_split_by_speaker(tmp_path):
    ws = tmp_path / "ws"
    CliRunner().invoke(app, ["init", str(ws)])
    files = sorted((SHARED / "fsdd/recordings").glob("*.wav"))
    speakers = sorted({f.stem.split("_")[1] for f in files})
    for speaker in speakers:
        card = tmp_path / f"card-{speaker}"
        card.mkdir()
        for f in files:
            if f.stem.split("_")[1] == speaker:
                shutil.copyfile(f, card / f.name)
        run(ws, "ingest", str(card), "--site", "studio", "--deployment", speaker)
    labelled = run(ws, "annotations", "import", "--label-from", r"^(?P<label>\d)_")
    assert labelled["imported"] == len(files)
    wf = _workflow(tmp_path, {"name": "digits", "resample": {"target_rate_hz": 8000},
                              "clips": {"length_s": 1.0, "min_valid_fraction": 0.05},
                              "features": {"n_fft": 256, "hop_length": 80, "n_mels": 32, "n_mfcc": 20,
                                           "compute": ["mel", "mfcc", "centroid", "bandwidth", "rms"]},
                              "store": {"clips_per_chunk": 16, "clips_per_shard": 128}})
    processed = run(ws, "process", wf)
    ds = run(ws, "dataset", "create", "digits", "--run", str(processed["run_id"]), "--split-by", "deployment",
             "--single-label", "--ratios", "0.67,0.16,0.17")
    assert ds["leaking_groups"] == [] and ds["groups"] == len(speakers)
    exported = run(ws, "export", "digits", "--format", "numpy")
    metrics = run(ws, "baseline", exported["out_dir"])
    test = metrics["splits"]["test"]
    print(f"\nFSDD digits (unseen speaker): test accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f}, "
          f"chance {test['chance_uniform_accuracy']:.3f}")
    assert test["accuracy"] > 2 * test["chance_uniform_accuracy"]
