"""A processed workspace shared by the pipeline tests: a card of synthetic AudioMoth recordings,
files with exactly known clipping (16-bit, 24-bit, float) and real recordings from tests/data,
ingested and processed once on a real LocalCluster."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fieldkit.config.workflow import Workflow
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.pipeline.driver import run_workflow
from fieldkit.store.zarr_store import open_store
from fieldkit.testing.cards import audiomoth_card
from fieldkit.testing.signals import clip_bursts
from fieldkit.workspace import init_workspace

TEST_DATA = Path(__file__).resolve().parents[1] / "data"
REAL = {
    "birds_10s.wav": TEST_DATA / "opensoundscape" / "birds_10s.wav",
    "rugr_drum.wav": TEST_DATA / "opensoundscape" / "rugr_drum.wav",
    "S4A03895_20190522_000000.wav": TEST_DATA / "scikit-maad" / "S4A03895_20190522_000000.wav",
    "A101_3.WAV": TEST_DATA / "wavinfo" / "A101_3.WAV",  # 24-bit stereo: mixed down
    "izotoperx_cues_test.wav": TEST_DATA / "wavinfo" / "izotoperx_cues_test.wav",  # float32
}
#: (start, length, sign) of full-scale bursts in 3 s at 32 kHz: one burst per 1 s clip.
BURSTS = [(1000, 50, 1), (40000, 7, -1), (70000, 300, 1)]
CLIPPED = {"clip16.wav": ("int16", "PCM_16"), "clip24.wav": ("int24", "PCM_24"), "clipfloat.wav": ("float32", "FLOAT")}

WORKFLOW = {
    "name": "test-16k",
    "resample": {"target_rate_hz": 16000, "quality": "HQ"},
    "clips": {"length_s": 1.0, "min_valid_fraction": 0.5},
    "features": {"n_fft": 512, "hop_length": 160, "n_mels": 40, "n_mfcc": 13,
                 "compute": ["mel", "mfcc", "centroid", "bandwidth", "chroma", "rms"]},
    "store": {"clips_per_chunk": 4, "clips_per_shard": 8},
}


def build_card(root: Path) -> Path:
    audiomoth_card(root, start=dt.datetime(2024, 5, 1, 22, 0), count=4, seconds=5.0, sample_rate_hz=48_000,
                   utc_offset_minutes=120, era="1.6.0")
    for name, path in REAL.items():
        shutil.copyfile(path, root / name)
    for name, (fmt, subtype) in CLIPPED.items():
        known = clip_bursts(96_000, BURSTS, fmt=fmt, seed=len(name))
        sf.write(root / name, known.samples, 32_000, subtype=subtype)
    return root


def arrays_of(ws, store_path: str) -> dict[str, np.ndarray]:
    """Every data variable and coordinate of a run's store, loaded (local path or URL)."""
    ds = open_store(ws.store_location(store_path)).load()
    try:
        return {name: ds[name].values for name in [*ds.data_vars, *ds.coords]}
    finally:
        ds.close()


def assert_same_arrays(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope="session")
def workflow() -> Workflow:
    return Workflow.from_dict(WORKFLOW)


def process_card(base: Path, workflow: Workflow):
    """A workspace under ``base`` with :func:`build_card` ingested and processed on a real
    LocalCluster of two worker processes: ``(workspace, run report)``."""
    ws = init_workspace(base / "ws")
    ingest_card(ws, IngestRequest(build_card(base / "card"), "Wood", "N1", timezone="+02:00"))
    report = run_workflow(ws, workflow, workflow_source="test", workers=2, cluster="local")
    assert report.state == "complete", report.failures
    return ws, report


@pytest.fixture(scope="session")
def processed(tmp_path_factory, workflow):
    return process_card(tmp_path_factory.mktemp("pipeline"), workflow)


def expected_clipped_per_clip() -> np.ndarray:
    return np.array([length for _, length, _ in BURSTS])
