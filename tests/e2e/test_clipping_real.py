"""The real clipped recordings of ../shared/data/avianz are found clipped — at ingest (QC) and in
the store (per-clip clipped fraction, counted on the original samples) — and the clean ones not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.store.zarr_store import open_store

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
#: full-scale sample counts worked out from the files (PROVENANCE.md: 572 and 131)
CLIPPED = {"Wb_Thunder_200.wav": 572, "Wb_k800.wav": 131}
CLEAN = ("Rain_220.wav", "Crickets_2000.wav", "Weta_1000.wav")


@pytest.mark.slow
@pytest.mark.shared_data
def test_avianz_clipped_recordings_are_found(tmp_path):
    if not (SHARED / "avianz").is_dir():
        pytest.skip("../shared/data is not present")
    runner = CliRunner()
    ws = tmp_path / "ws"
    runner.invoke(app, ["init", str(ws)])
    result = runner.invoke(app, ["-w", str(ws), "ingest", str(SHARED / "avianz"), "--site", "nz", "--deployment", "d"])
    assert result.exit_code in (0, 3), result.stderr
    recs = {r["archive_path"].rsplit("/", 1)[-1]: r
            for r in json.loads(runner.invoke(app, ["-w", str(ws), "catalog", "recordings", "--json"]).stdout)}
    for name, count in CLIPPED.items():
        assert recs[name]["clipped_samples"] == count
    for name in CLEAN:
        assert recs[name]["clipped_samples"] == 0
    wf = tmp_path / "wf.yaml"
    wf.write_text(yaml.safe_dump({"name": "nz", "resample": {"target_rate_hz": 8000}, "clips": {"length_s": 2.0},
                                  "features": {"n_fft": 256, "hop_length": 128, "n_mels": 16, "n_mfcc": 8,
                                               "compute": ["mel", "rms"]},
                                  "store": {"clips_per_chunk": 4, "clips_per_shard": 8}}))
    done = json.loads(runner.invoke(app, ["-w", str(ws), "process", str(wf), "--json"]).stdout)
    ds = open_store(ws / done["store"]).load()
    for name, count in CLIPPED.items():
        sel = ds["recording_id"].values == recs[name]["id"]
        rate = recs[name]["sample_rate_hz"]
        total = float((ds["clipped_fraction"].values[sel] * ds["valid_samples"].values[sel] * rate / 8000).sum())
        assert total == pytest.approx(count, abs=0.5)
    clean = np.isin(ds["recording_id"].values, [recs[n]["id"] for n in CLEAN])
    assert np.all(ds["clipped_fraction"].values[clean] == 0)
