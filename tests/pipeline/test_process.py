"""`fieldkit process` on real and synthetic recordings, checked against librosa and soxr."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import soundfile as sf
import soxr
from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.store.zarr_store import open_store
from tests.pipeline.conftest import CLIPPED, REAL, expected_clipped_per_clip

SR = 16000
N_FFT, HOP, N_MELS = 512, 160, 40


def recordings(ws) -> dict[str, dict]:
    result = CliRunner().invoke(app, ["-w", str(ws.root), "catalog", "recordings", "--json"])
    return {r["archive_path"].rsplit("/", 1)[-1]: r for r in json.loads(result.stdout)}


def reference_clips(path) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = x.mean(axis=1, dtype=np.float32)
    y = soxr.resample(mono, sr, SR, quality="HQ")
    n = max(1, int(np.ceil(len(y) / SR)))
    padded = np.zeros(n * SR, np.float32)
    padded[: len(y)] = y
    return padded.reshape(n, SR), len(y)


def rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / max(np.linalg.norm(b), 1e-30))


@pytest.fixture(scope="module")
def store(processed):
    ws, report = processed
    ds = open_store(ws.root / report.store).load()
    return ws, report, ds


@pytest.mark.parametrize("name", sorted(REAL))
def test_waveform_equals_soxr_and_features_agree_with_librosa(store, name):
    ws, _, ds = store
    rec = recordings(ws)[name]
    sel = np.flatnonzero(ds["recording_id"].values == rec["id"])
    clips, n_samples = reference_clips(ws.paths.archive / rec["archive_path"])
    assert len(sel) >= 1
    for k, index in enumerate(sel):
        ref = clips[k]
        valid = int(ds["valid_samples"].values[index])
        assert valid == min(SR, n_samples - k * SR)
        np.testing.assert_allclose(ds["waveform"].values[index], ref, rtol=0, atol=2e-7)
        mel = librosa.feature.melspectrogram(y=ref, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS,
                                             center=True, pad_mode="constant", power=2.0)
        if np.linalg.norm(mel) == 0:
            continue
        assert rel(ds["mel"].values[index].T, mel) <= 1e-5
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13)
        assert rel(ds["mfcc"].values[index].T, mfcc) <= 1e-5
        kw = dict(y=ref, sr=SR, n_fft=N_FFT, hop_length=HOP, center=True, pad_mode="constant")
        assert rel(ds["centroid"].values[index], librosa.feature.spectral_centroid(**kw)[0]) <= 1e-5
        assert rel(ds["bandwidth"].values[index], librosa.feature.spectral_bandwidth(**kw)[0]) <= 1e-5
        chroma = librosa.feature.chroma_stft(**kw, tuning=0.0, n_chroma=12)
        assert rel(ds["chroma"].values[index].T, chroma) <= 1e-5
        assert rel(ds["rms"].values[index], librosa.feature.rms(y=ref, frame_length=N_FFT, hop_length=HOP,
                                                                center=True, pad_mode="constant")[0]) <= 1e-5


@pytest.mark.parametrize("name", sorted(CLIPPED))
def test_clipped_fraction_counts_original_samples_exactly(store, name):
    ws, _, ds = store
    rec = recordings(ws)[name]
    sel = np.flatnonzero(ds["recording_id"].values == rec["id"])
    expected = expected_clipped_per_clip() / 32000  # 1 s clips of the 32 kHz original
    np.testing.assert_allclose(ds["clipped_fraction"].values[sel], expected, rtol=1e-6)
    assert rec["clipped_samples"] == expected_clipped_per_clip().sum()  # ingest QC agrees


def test_clean_recordings_are_not_clipped(store):
    ws, _, ds = store
    clean = [recordings(ws)[n]["id"] for n in ("birds_10s.wav", "rugr_drum.wav", "A101_3.WAV")]
    mask = np.isin(ds["recording_id"].values, clean)
    assert mask.any() and np.all(ds["clipped_fraction"].values[mask] == 0)


def test_clip_start_times_are_recording_start_plus_offset(store):
    ws, _, ds = store
    checked = 0
    for rec in recordings(ws).values():
        if rec["start_time_utc"] is None or rec["status"] == "sidecar":
            continue
        sel = np.flatnonzero(ds["recording_id"].values == rec["id"])
        start = np.datetime64(rec["start_time_utc"].replace("Z", ""), "ns")
        offsets = ds["offset_s"].values[sel]
        np.testing.assert_array_equal(offsets, np.arange(len(sel)) * 1.0)
        np.testing.assert_array_equal(ds["start_time"].values[sel], start + (offsets * 1e9).astype("timedelta64[ns]"))
        checked += 1
    assert checked >= 4  # the AudioMoth recordings (comment time in UTC+2 → UTC)
    assert recordings(ws)["20240501_220000.WAV"]["start_time_utc"] == "2024-05-01T20:00:00Z"


def test_padding_and_coordinates(store):
    ws, report, ds = store
    pad = ds["recording_id"].values == -1
    assert np.all(ds["valid_samples"].values[pad] == 0)
    assert np.all(np.isnan(ds["mel"].values[pad]))
    real = ~pad
    assert set(ds["site"].values[real]) == {"Wood"} and set(ds["deployment"].values[real]) == {"N1"}
    assert ds.attrs["schema_version"] == "2" and ds.attrs["parameters"]["name"] == "test-16k"
    assert ds.attrs["versions"]["librosa"] and ds.attrs["versions"]["soxr"]
    assert report.clips_computed == ds.sizes["clip"]


def test_catalog_run_json(store):
    ws, report, ds = store
    result = CliRunner().invoke(app, ["-w", str(ws.root), "catalog", "run", str(report.run_id), "--json"])
    doc = json.loads(result.stdout)
    assert doc["state"] == "complete" and doc["store_path"] == report.store and not doc["store_path"].startswith("/")
    assert doc["n_clips"] == ds.sizes["clip"] and doc["failures"] == []
    assert doc["parameters"]["clips"]["length_s"] == 1.0 and doc["versions"]["zarr"]
    recs = {d["recording_id"] for d in doc["derivatives"]}
    assert recs == set(np.unique(ds["recording_id"].values[ds["recording_id"].values >= 0]))
    runs = json.loads(CliRunner().invoke(app, ["-w", str(ws.root), "catalog", "runs", "--json"]).stdout)
    assert [r["id"] for r in runs] == [report.run_id]


def test_quarantined_recordings_are_skipped_and_listed(store):
    ws, report, ds = store
    statuses = {r["id"]: r["status"] for r in recordings(ws).values()}
    assert all(statuses[i] in ("ok", "truncated") for i in np.unique(ds["recording_id"].values) if i >= 0)


def test_workers_import_only_the_task_code(processed, workflow):
    """A worker runs the driver's warm-up and the tasks without importing the driver, the catalogue,
    xarray or pandas (~1 s and ~110 MB per worker when a warm-up function lived in the driver)."""
    from fieldkit.pipeline.clients import dask_client
    from fieldkit.pipeline.driver import run_workflow
    from tests.pipeline.worker_probe import heavy_modules

    ws, _ = processed
    with dask_client(None, 1, ws.settings.dask) as client:
        assert all(not mods for mods in client.run(heavy_modules).values())  # a fresh worker
        report = run_workflow(ws, workflow, workflow_source="test", scheduler=client.scheduler.address,
                              new_run=True)
        assert report.state == "complete" and report.clips_computed > 0
        assert client.run(heavy_modules) == {w: [] for w in client.scheduler_info()["workers"]}
