"""``fieldkit picture ldfc | heatmap`` on the demo deployment, processed for real.

The workspace: the bundled sample card ingested as ``fieldkit demo`` does, processed twice on a
real LocalCluster: the demo workflow (no indices: run 1) and the shipped ``soundscape`` workflow
with 5 s clips (the card's recordings last 5-15 s; run 2). The PNGs are read back with
matplotlib's reader; the axes come from the figure the service drew.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from typer.testing import CliRunner

from fieldkit.catalogue.runs import get_run
from fieldkit.cli import app
from fieldkit.cli.demo import DEMO_DEPLOYMENT, DEMO_SITE, demo_workflow_path, sample_card_path
from fieldkit.cli.picture import INDEX_NAMES
from fieldkit.config.params import INDEX_SPECTRA, INDICES
from fieldkit.config.workflow import load_workflow
from fieldkit.errors import EXIT_NOINPUT, EXIT_USAGE
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.pipeline.driver import run_workflow
from fieldkit.store.zarr_store import open_store
from fieldkit.testing.serving import soundscape_5s
from fieldkit.workspace import init_workspace, open_workspace

runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, int]:
    base = tmp_path_factory.mktemp("picture")
    with init_workspace(base / "ws") as ws:
        ingest_card(ws, IngestRequest(sample_card_path(), DEMO_SITE, DEMO_DEPLOYMENT, timezone="+02:00"))
        plain = run_workflow(ws, load_workflow(demo_workflow_path()), workflow_source="demo", workers=1)
        report = run_workflow(ws, soundscape_5s(), workflow_source="test", workers=1)
    assert plain.state == report.state == "complete", (plain.failures, report.failures)
    return base / "ws", report.run_id


def cli(root: Path, *args: str):
    return runner.invoke(app, ["--workspace", str(root), *args])


def test_the_run_stores_every_index_and_its_parameters(demo):
    root, run_id = demo
    with open_workspace(root) as ws, ws.catalogue.read() as session:
        store = root / get_run(session, run_id).store_path
    ds = open_store(store, chunks=None)
    try:
        for name in INDICES:
            assert ds[name].dims == ("clip",) and ds[name].dtype == np.float32
        for name in INDEX_SPECTRA:
            assert ds[name].dims == ("clip", "freq_bin") and ds.sizes["freq_bin"] == 257
        real = ds["recording_id"].values >= 0
        assert np.isfinite(ds["aci"].values[real]).all() and np.ptp(ds["aci"].values[real]) > 0
        stored = ds.attrs["parameters"]["features"]["indices"]
    finally:
        ds.close()
    assert stored["bi_band_hz"] == [2000.0, 15000.0] and stored["activity_db_threshold"] == 6.0


def test_ldfc_of_the_demo_deployment(demo, tmp_path):
    root, run_id = demo
    out = tmp_path / "ldfc.png"
    result = cli(root, "picture", "ldfc", "--deployment", DEMO_DEPLOYMENT, "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["run_id"] == run_id and doc["png"] == str(out)
    pixels = matplotlib.image.imread(out)
    assert pixels.shape[:2] == (doc["height_px"], doc["width_px"]) == (500, 800)
    # axes: frequency in kHz up to Nyquist of 22.05 kHz, time in local clock time
    assert doc["ylabel"] == "frequency (kHz)" and doc["ylim"] == [0.0, 11.025]
    assert doc["xlabel"] == "local time (+02:00)"
    assert "2020-04-04 12:25" in doc["xticklabels"]  # 10:25 UTC on the AudioMoth file name, at +02:00
    assert doc["bins"] == 257 and doc["columns"] == doc["columns_with_data"] >= 3
    # every channel varies over the picture (inner part of the axes, away from labels)
    inner = pixels[int(0.2 * pixels.shape[0]):int(0.7 * pixels.shape[0]), int(0.15 * pixels.shape[1]):int(0.9 * pixels.shape[1]), :3]
    assert all(inner[..., c].std() > 0.05 for c in range(3)), [inner[..., c].std() for c in range(3)]
    for low, high in doc["channels"].values():
        assert low < high


def test_ldfc_of_one_day_is_24_hours_wide_with_missing_minutes_grey(demo, tmp_path):
    root, _ = demo
    result = cli(root, "picture", "ldfc", "--deployment", f"{DEMO_SITE}/{DEMO_DEPLOYMENT}", "--day", "2020-04-04",
                 "--out", str(tmp_path / "day.png"), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["columns"] == 1440 and 1 <= doc["columns_with_data"] <= 5
    assert doc["first"] == "00:00" and doc["last"] == "23:59" and doc["xticklabels"][0] == "00:00"
    pixels = matplotlib.image.imread(tmp_path / "day.png")
    assert pixels.shape[1] == doc["width_px"] > 1440  # about a pixel per minute, plus margins
    grey = np.all(np.abs(pixels[250, 200:1200, :3] - 0.5) < 0.01, axis=-1)
    assert grey.mean() > 0.9  # most of the day has no recording


def test_heatmap_of_an_index_by_hour_and_day(demo, tmp_path):
    root, run_id = demo
    result = cli(root, "picture", "heatmap", "--deployment", DEMO_DEPLOYMENT, "--index", "ndsi",
                 "--out", str(tmp_path / "heat.png"), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["run_id"] == run_id and doc["days"] == ["2019-05-22", "2020-04-04"]
    assert doc["xlabel"] == "hour (local time, +02:00)" and doc["xticklabels"][0] == "00:00"
    assert -1 <= doc["min"] < doc["max"] <= 1 and doc["hours_with_data"] >= 3
    assert matplotlib.image.imread(tmp_path / "heat.png").shape[:2] == (doc["height_px"], doc["width_px"])
    human = cli(root, "picture", "heatmap", "--deployment", DEMO_DEPLOYMENT, "--out", str(tmp_path / "h.png"))
    assert human.exit_code == 0 and human.stdout == "" and "aci over 2 days" in human.stderr


@pytest.mark.parametrize(("args", "code", "message"), [
    (["ldfc", "--deployment", "nowhere"], EXIT_NOINPUT,
     f"no deployment 'nowhere' in the catalogue; known: {DEMO_SITE}/{DEMO_DEPLOYMENT}."),
    (["ldfc", "--deployment", DEMO_DEPLOYMENT, "--run", "1"], EXIT_NOINPUT,
     (f"run 1 has aci_spectrum, ent_spectrum, evn_spectrum for clips of deployment {DEMO_SITE}/{DEMO_DEPLOYMENT} "
      "(or it is not complete).")),
    (["ldfc", "--deployment", DEMO_DEPLOYMENT, "--run", "9"], EXIT_NOINPUT, "no processing run 9 in the catalogue"),
    (["ldfc", "--deployment", DEMO_DEPLOYMENT, "--day", "2021-01-01"], EXIT_NOINPUT,
     "has no clip on 2021-01-01 (local time) in run 2; days with clips: 2019-05-22, 2020-04-04."),
    (["ldfc", "--deployment", DEMO_DEPLOYMENT, "--day", "April"], EXIT_USAGE, "expected YYYY-MM-DD"),
    (["heatmap", "--deployment", DEMO_DEPLOYMENT, "--index", "loudness"], EXIT_USAGE,
     "unknown index 'loudness'; known: aci, adi, aei, bi, h, hf, ht, ndsi."),
])
def test_bad_input_follows_the_cli_contract(demo, args, code, message):
    root, _ = demo
    result = cli(root, "picture", *args, "--json")
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    doc = json.loads(result.stdout)
    assert message in doc["error"] and doc["code"] == code


def test_a_picture_wider_than_a_week_of_minutes_is_refused(demo, monkeypatch):
    from fieldkit.listen import soundscape

    monkeypatch.setattr(soundscape, "MAX_COLUMNS", 3)  # the demo has a handful of minutes, not a week
    result = cli(demo[0], "picture", "ldfc", "--deployment", DEMO_DEPLOYMENT, "--json")
    assert result.exit_code == 78, result.output
    doc = json.loads(result.stdout)
    assert "steps of 60 s: more than the 3 columns" in doc["error"] and "--day" in doc["hint"]


def test_no_run_with_indices_says_how_to_make_one(tmp_path):
    with init_workspace(tmp_path / "ws") as ws:
        ingest_card(ws, IngestRequest(sample_card_path(), DEMO_SITE, DEMO_DEPLOYMENT, timezone="+00:00"))
    result = cli(tmp_path / "ws", "picture", "ldfc", "--deployment", DEMO_DEPLOYMENT)
    assert result.exit_code == EXIT_NOINPUT and "Traceback" not in result.output
    assert "no complete processing run has aci_spectrum" in result.stderr
    assert "fieldkit process soundscape" in result.stderr


def test_the_cli_names_the_indices_of_the_params():
    assert INDEX_NAMES == INDICES
