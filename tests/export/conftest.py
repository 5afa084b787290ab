"""A real processed store (the pipeline tests' card, run once on a real LocalCluster) and
plain ExportInputs over it: labels and splits assigned by recording, full lineage."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fieldkit.config.workflow import Workflow
from fieldkit.export.exporter import export_dataset
from fieldkit.export.request import ExportInput
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.pipeline.driver import run_workflow
from fieldkit.store.zarr_store import open_store
from fieldkit.workspace import init_workspace
from tests.pipeline.conftest import WORKFLOW, build_card

LABELS = ("bird", "frog", "insect")
#: Recording (by rank of its id) -> split: a recording never spans two splits.
SPLIT_OF_RANK = {0: "train", 1: "train", 2: "validation", 3: "test"}
FORMAT_NAMES = ("zarr", "numpy", "parquet")
#: Formats made for training loaders (audio inside); the baseline does not read them.
LOADER_FORMATS = ("webdataset", "lhotse")
#: Clips per WebDataset shard in the tests' export (several shards per split).
SHARD_SIZE = 10


@pytest.fixture(scope="session")
def store_path(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("export-store")
    ws = init_workspace(base / "ws")
    (base / "card").mkdir()
    ingest_card(ws, IngestRequest(build_card(base / "card"), "Wood", "N1", timezone="+02:00"))
    report = run_workflow(ws, Workflow.from_dict(WORKFLOW), workflow_source="test", workers=2)
    assert report.state == "complete", report.failures
    return ws.root / report.store


def fake_sha256(recording_id: int) -> str:
    return hashlib.sha256(f"recording {recording_id}".encode()).hexdigest()


def _labels_for(rank: int, multi_label: bool) -> list[str]:
    if not multi_label:
        return [LABELS[rank % 3]]
    return [[LABELS[0]], [LABELS[1], LABELS[2]], [], [LABELS[0], LABELS[2]]][rank % 3]


def _index(store_path: Path, multi_label: bool) -> pd.DataFrame:
    ds = open_store(store_path, consolidated=True, chunks=None)
    coords = ds[["recording_id", "start_time", "offset_s", "site", "deployment"]].to_dataframe()
    coords = coords.reset_index(drop=True).rename_axis("clip_id").reset_index()
    coords = coords[coords["recording_id"] >= 0].copy()
    rank = coords["recording_id"].rank(method="dense").astype(int) - 1
    coords["start_time"] = pd.to_datetime(coords["start_time"]).dt.tz_localize("UTC")
    coords["recording_sha256"] = coords["recording_id"].map(fake_sha256)
    coords["labels"] = rank.map(lambda r: _labels_for(r, multi_label))
    coords["split"] = rank.map(lambda r: SPLIT_OF_RANK[r % 4])
    coords["site"] = coords["site"].astype(str)
    coords["deployment"] = coords["deployment"].astype(str)
    return coords.sample(frac=1.0, random_state=1)  # ExportInput must not rely on row order


def _lineage(index: pd.DataFrame) -> list[dict]:
    return [{"clip_id": int(row.clip_id), "recording_sha256": row.recording_sha256,
             "archive_path": f"archive/{row.recording_sha256[:2]}/{row.recording_sha256}.wav",
             "cards": ["card-0001"], "ingest_sessions": [1],
             "source_paths": [f"/media/card/rec{row.recording_id}.WAV"], "run_id": 1,
             "params_hash": "69d0ef52"} for row in index.itertuples()]


def make_input(store_path: Path, *, multi_label: bool = False, name: str = "wood-calls",
               version: int = 1) -> ExportInput:
    ds = open_store(store_path, consolidated=True, chunks=None)
    index = _index(store_path, multi_label)
    return ExportInput(
        name=name, version=version, description="Night recordings from the Wood site.",
        licence="CC-BY-4.0", store_path=store_path, index=index, label_names=LABELS,
        split_by="recording", seed=7, ratios=(0.5, 0.25, 0.25), manifest_hash="ab" * 32,
        workflow=dict(ds.attrs["parameters"]), versions=dict(ds.attrs["versions"]),
        qc_summary={"recordings_ok": 12, "clipped_clips": 9, "quarantined_files": 1},
        lineage=_lineage(index))


@pytest.fixture(scope="session")
def export_input(store_path) -> ExportInput:
    return make_input(store_path)


@pytest.fixture(scope="session")
def exports(tmp_path_factory, export_input) -> dict[str, Path]:
    """One export per format of the single-label dataset."""
    base = tmp_path_factory.mktemp("exports")
    return {fmt: export_dataset(export_input, base / f"wood-calls-1-{fmt}", format=fmt).out_dir
            for fmt in FORMAT_NAMES}


@pytest.fixture(scope="session")
def loader_exports(tmp_path_factory, export_input) -> dict[str, Path]:
    """One export per loader format of the single-label dataset."""
    base = tmp_path_factory.mktemp("loader-exports")
    inp = type(export_input)(**{**export_input.__dict__, "shard_size": SHARD_SIZE})
    return {fmt: export_dataset(inp, base / f"wood-calls-1-{fmt}", format=fmt).out_dir
            for fmt in LOADER_FORMATS}


@pytest.fixture(params=FORMAT_NAMES)
def exported(request, exports) -> tuple[str, Path]:
    return request.param, exports[request.param]


def store_values(store_path: Path, variable: str, clip_ids: np.ndarray) -> np.ndarray:
    ds = open_store(store_path, consolidated=True, chunks=None)
    return ds[variable].values[clip_ids]
