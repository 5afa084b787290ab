"""No non-finite or overflowed value is stored silently (issue #13), under the shipped
the shipped ``bats-ultrasonic.yaml`` (float16 features, 384 kHz).

The card: a synthetic 80 kHz tone (known centroid, beyond float16's 65 504), an unnormalised
float file whose middle clip overflows float16 in its mel power, and, when ../shared/data is
present, the real bat recordings of ``batdetect2/`` (tests/data holds none the workflow
selects: its only ultrasonic file has 4 frames at 192 kHz). Before schema version 2, 37 % of
the real centroid frames were stored as +Inf with only a numpy warning, and the run said
``complete``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.config.workflow_files import bundled_workflows_dir
from fieldkit.pipeline.driver import RunReport
from fieldkit.store.zarr_store import open_store

WORKFLOW = bundled_workflows_dir() / "bats-ultrasonic.yaml"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BATS = ("0166_20240531_223911.wav", "Echometer.wav")  # 312.5 and 256 kHz: selected by the workflow
RATE = 384_000
FLOAT16_MAX = 65_504
runner = CliRunner()


def _card(root: Path) -> Path:
    root.mkdir()
    t = np.arange(2 * RATE) / RATE
    sf.write(root / "tone80k_20240531_221000.wav", 0.3 * np.sin(2 * np.pi * 80_000 * t), RATE, subtype="PCM_16")
    loud = 0.01 * np.sin(2 * np.pi * 30_000 * t)
    loud[RATE:RATE + RATE // 2] *= 30_000  # clip 2 of 4 (1.0-1.5 s): peak 300, an unnormalised float file
    sf.write(root / "loud_20240531_230000.wav", loud.astype(np.float32), RATE, subtype="FLOAT")
    for name in BATS:
        if (SHARED / "batdetect2" / name).is_file():
            shutil.copyfile(SHARED / "batdetect2" / name, root / name)
    return root


@pytest.fixture(scope="module")
def bat_run(tmp_path_factory):
    """(store Dataset, {file name: recording id}, process result, ``catalog run --json``)."""
    base = tmp_path_factory.mktemp("nonfinite")
    ws = base / "ws"
    assert runner.invoke(app, ["init", str(ws)]).exit_code == 0
    ingest = runner.invoke(app, ["-w", str(ws), "ingest", str(_card(base / "card")), "--site", "cave",
                                 "--deployment", "b1", "--timezone", "+00:00"])
    assert ingest.exit_code == 0, ingest.output
    recs = json.loads(runner.invoke(app, ["-w", str(ws), "catalog", "recordings", "--json"]).stdout)
    ids = {r["archive_path"].rsplit("/", 1)[-1]: r["id"] for r in recs}
    done = runner.invoke(app, ["-w", str(ws), "process", str(WORKFLOW), "--workers", "1"])
    row = json.loads(runner.invoke(app, ["-w", str(ws), "catalog", "run", "1", "--json"]).stdout)
    ds = open_store(ws / row["store_path"], chunks=None).load()
    shown = runner.invoke(app, ["-w", str(ws), "catalog", "run", "1"])
    resumed = runner.invoke(app, ["-w", str(ws), "process", str(WORKFLOW), "--resume", "1", "--json"])
    return ds, ids, done, {**row, "shown": shown.stderr, "resumed": json.loads(resumed.stdout)}


def _clips(ds, recording_id: int) -> np.ndarray:
    return np.flatnonzero(ds["recording_id"].values == recording_id)


def test_hz_features_beyond_float16_are_stored_as_float32(bat_run):
    ds, ids, _, _ = bat_run
    assert ds.attrs["schema_version"] == "2" and ds.attrs["layout"]["feature_dtype"] == "float16"
    assert ds["centroid"].dtype == ds["bandwidth"].dtype == np.float32 and ds["mel"].dtype == np.float16
    tone = ds["centroid"].values[_clips(ds, ids["tone80k_20240531_221000.wav"])]
    assert np.isfinite(tone).all()
    np.testing.assert_allclose(np.median(tone, axis=1), 80_000, rtol=0.01)


def test_an_overflowing_clip_is_flagged_counted_and_reported(bat_run):
    ds, ids, done, row = bat_run
    flags = ds["nonfinite_count"].values
    loud = _clips(ds, ids["loud_20240531_230000.wav"])
    assert list(flags[loud] > 0) == [False, False, True, False]
    assert np.count_nonzero(flags) == 1 and flags[loud[2]] == int(np.isposinf(ds["mel"].values[loud[2]]).sum())
    assert np.isfinite(ds["mel"].values[np.flatnonzero(flags == 0)]).all()
    values = int(flags.sum())
    assert done.exit_code == 0 and "run 1 (bats-ultrasonic): complete" in done.stderr
    assert f"warning 1 clip(s) hold {values} non-finite feature value(s) (NaN/Inf)" in done.stderr
    assert row["state"] == "complete" and row["message"].startswith(f"1 clip(s) hold {values} non-finite")
    assert row["timings"]["nonfinite_clips"] == 1 and row["timings"]["nonfinite_values"] == values
    assert f"message 1 clip(s) hold {values} non-finite" in row["shown"]  # fieldkit catalog run 1
    resumed = row["resumed"]  # nothing left to compute: the counts are read back from the store
    assert resumed["clips_computed"] == 0 and resumed["clips_skipped"] == len(flags)
    assert (resumed["nonfinite_clips"], resumed["nonfinite_values"], resumed["exit_code"]) == (1, values, 0)


def test_the_run_report_json_counts_flagged_clips_and_values():
    report = RunReport(1, "bats", "complete", "stores/x.zarr", 4, 1, 1, nonfinite_clips=2, nonfinite_values=7)
    doc = report.to_dict()
    assert (doc["nonfinite_clips"], doc["nonfinite_values"], doc["exit_code"]) == (2, 7, 0)
    assert RunReport(1, "bats", "complete", "s", 4, 1, 1).warning is None


@pytest.mark.shared_data
def test_real_bat_recordings_keep_their_centroids_beyond_float16(bat_run):
    ds, ids, _, _ = bat_run
    if not all(name in ids for name in BATS):
        pytest.skip("../shared/data is not present")
    for name in BATS:
        clips = _clips(ds, ids[name])
        centroid = ds["centroid"].values[clips]
        assert np.isfinite(centroid).all() and (ds["nonfinite_count"].values[clips] == 0).all()
        beyond = (centroid > FLOAT16_MAX).mean()  # float16 would have made these +Inf
        assert beyond > {"0166_20240531_223911.wav": 0.3, "Echometer.wav": 0.01}[name], (name, beyond)
        # The stored values are the real ones: librosa on the stored (int16, resampled) waveform.
        wave = ds["waveform"].values[clips[0]].astype(np.float32) / 32768
        theirs = librosa.feature.spectral_centroid(y=wave, sr=RATE, n_fft=512, hop_length=128, window="hann")[0]
        np.testing.assert_allclose(np.mean(centroid[0]), np.mean(theirs), rtol=0.02)
