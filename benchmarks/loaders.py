"""Loader benchmark: clips/s for the three ways an ML team reads a fieldkit export, same run.

Builds a seeded synthetic card (``--files`` WAV files of ``--seconds`` s at 16 kHz: tones in
noise, one of three labels per file), ingests and processes it (5 s clips, 64-band mel,
waveform stored), exports the dataset as Zarr, WebDataset and NumPy, then times one pass over
the train split, ``--repeats`` times interleaved (median, min-max beside it):

1. ``torch``: :class:`fieldkit.export.torch_dataset.ZarrClipDataset` (``mel``, label) in a
   ``torch.utils.data.DataLoader``, batch 32, ``--workers`` workers;
2. ``webdataset``: the tar shards read by ``webdataset`` (``.npy`` mel + ``.json`` label),
   batched 32 in a ``WebLoader`` with the same workers; and the same with each ``.flac``
   decoded by soundfile (``webdataset+flac``);
3. ``npy-mmap``: ``np.load(mel.npy, mmap_mode="r")`` and ``labels.npy`` sliced in batches of
   32 in this process (the floor: no decoding, no worker processes).

Each pass includes starting its worker processes (fork), as an epoch does; the libraries are
imported before any timing. Every loader yields the same mel arrays (checked on the first
batch). Prints one JSON document
(``--json FILE`` also writes it). The machine is shared: compare the figures of one run.
Usage::

    python benchmarks/loaders.py                  # 120 files x 60 s -> 1440 clips, 3 repeats
    python benchmarks/loaders.py --files 24 --repeats 1
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from fieldkit.config.workflow import Workflow
from fieldkit.export.exporter import export_dataset
from fieldkit.export.request import ExportInput
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.pipeline.driver import run_workflow
from fieldkit.store.zarr_store import open_store
from fieldkit.testing.riffwriter import wav_bytes
from fieldkit.workspace import init_workspace

LABELS = ("bird", "frog", "insect")
RATE = 16_000
BATCH = 32
WORKFLOW = {
    "name": "bench-loaders",
    "resample": {"target_rate_hz": RATE, "quality": "MQ"},
    "clips": {"length_s": 5.0, "min_valid_fraction": 0.5},
    "features": {"n_fft": 512, "hop_length": 256, "n_mels": 64, "n_mfcc": 13,
                 "compute": ["mel", "mfcc", "rms"]},
    "store": {"waveform": True, "clips_per_chunk": 16, "clips_per_shard": 128},
}


def make_card(root: Path, n_files: int, seconds: float, seed: int = 7) -> None:
    """``n_files`` AudioMoth-named WAVs: a tone per label class in seeded noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    t = np.arange(int(seconds * RATE)) / RATE
    for i in range(n_files):
        tone = 0.2 * np.sin(2 * np.pi * (500 + 1500 * (i % 3)) * t)
        x = tone + 0.02 * rng.standard_normal(t.size)
        name = f"202405{1 + i // 96:02d}_{(i % 96) // 4:02d}{(i % 4) * 15:02d}00.WAV"
        (root / name).write_bytes(wav_bytes(x, RATE))


def export_input(store: Path) -> ExportInput:
    """Every real clip, labelled by its file's class, split by recording (4:1:1)."""
    ds = open_store(store, consolidated=True, chunks=None)
    coords = ds[["recording_id", "start_time", "offset_s", "site", "deployment"]].to_dataframe()
    index = coords.reset_index(drop=True).rename_axis("clip_id").reset_index()
    index = index[index["recording_id"] >= 0].copy()
    rank = index["recording_id"].rank(method="dense").astype(int) - 1
    index["start_time"] = pd.to_datetime(index["start_time"]).dt.tz_localize("UTC")
    index["recording_sha256"] = index["recording_id"].map(lambda r: f"{r:064x}")
    index["labels"] = rank.map(lambda r: [LABELS[r % 3]])
    # by recording, in groups of three (one per label): 4 groups train, 1 validation, 1 test
    index["split"] = rank.map(lambda r: ("train",) * 4 + ("validation", "test"))
    index["split"] = [parts[r // 3 % 6] for parts, r in zip(index["split"], rank)]
    lineage = [{"clip_id": int(r.clip_id), "recording_sha256": r.recording_sha256,
                "archive_path": f"rec{r.recording_id}.wav", "cards": ["bench"],
                "ingest_sessions": [1], "source_paths": ["x"], "run_id": 1, "params_hash": "b"}
               for r in index.itertuples()]
    return ExportInput(name="bench", version=1, description="loader benchmark",
                       licence="CC0-1.0", store_path=store, index=index, label_names=LABELS,
                       split_by="recording", seed=0, ratios=(0.67, 0.17, 0.16),
                       manifest_hash="0" * 64, lineage=lineage, shard_size=256)


def torch_pass(out: Path, workers: int) -> tuple[int, np.ndarray]:
    from torch.utils.data import DataLoader

    from fieldkit.export.torch_dataset import ZarrClipDataset

    ds = ZarrClipDataset(out, "train", variables=("mel",))
    n, first = 0, None
    for batch in DataLoader(ds, batch_size=BATCH, num_workers=workers):
        first = batch["mel"].numpy() if first is None else first
        n += len(batch["label"])
    return n, first


def wds_pass(out: Path, workers: int, flac: bool) -> tuple[int, np.ndarray]:
    import webdataset as wds

    urls = sorted(str(p) for p in (out / "data").glob("train-*.tar"))
    keys = ("npy", "json", "flac") if flac else ("npy", "json")
    handlers = [wds.handle_extension("flac", lambda b: sf.read(io.BytesIO(b), dtype="float32")[0])]
    ds = (wds.WebDataset(urls, shardshuffle=False, workersplitter=wds.split_by_worker,
                         nodesplitter=wds.split_by_node, empty_check=False)
          .decode(*handlers).to_tuple(*keys).batched(BATCH))
    n, first = 0, None
    for batch in wds.WebLoader(ds, batch_size=None, num_workers=workers):
        first = np.asarray(batch[0]) if first is None else first
        n += len(batch[1])
    return n, first


def npy_pass(out: Path) -> tuple[int, np.ndarray]:
    mel = np.load(out / "data" / "train" / "mel.npy", mmap_mode="r")
    labels = np.load(out / "data" / "train" / "labels.npy", mmap_mode="r")
    n, first = 0, None
    for start in range(0, mel.shape[0], BATCH):
        x = np.array(mel[start:start + BATCH])  # a real read, as a training step would do
        y = np.array(labels[start:start + BATCH]).argmax(axis=1)
        first = x if first is None else first
        n += len(y)
    return n, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    # imported before any timing: torch alone takes seconds to import on a busy machine
    import torch.utils.data  # noqa: F401
    import webdataset  # noqa: F401

    import fieldkit.export.torch_dataset  # noqa: F401

    base = Path(tempfile.mkdtemp(prefix="fieldkit-bench-loaders-", dir=args.workdir))
    try:
        ws = init_workspace(base / "ws")
        make_card(base / "card", args.files, args.seconds)
        ingest_card(ws, IngestRequest(base / "card", "Bench", "B1", timezone="+00:00"))
        report = run_workflow(ws, Workflow.from_dict(WORKFLOW), workflow_source="bench",
                              workers=args.workers)
        inp = export_input(ws.root / report.store)
        outs = {fmt: export_dataset(inp, base / fmt, format=fmt).out_dir
                for fmt in ("zarr", "webdataset", "numpy")}
        passes = {"torch": lambda: torch_pass(outs["zarr"], args.workers),
                  "webdataset": lambda: wds_pass(outs["webdataset"], args.workers, False),
                  "webdataset+flac": lambda: wds_pass(outs["webdataset"], args.workers, True),
                  "npy-mmap": lambda: npy_pass(outs["numpy"])}
        times: dict[str, list[float]] = {k: [] for k in passes}
        counts, firsts = {}, {}
        for _ in range(args.repeats):
            for name, run in passes.items():
                start = time.perf_counter()
                counts[name], firsts[name] = run()
                times[name].append(time.perf_counter() - start)
        for name, first in firsts.items():
            np.testing.assert_array_equal(first, firsts["npy-mmap"], err_msg=name)
        n_train = len(inp.split_index("train"))
        assert all(c == n_train for c in counts.values()), counts
        result = {
            "clips_train": n_train, "batch": BATCH, "workers": args.workers,
            "repeats": args.repeats, "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "mel_shape_per_clip": list(firsts["npy-mmap"].shape[1:]),
            "clips_per_s": {name: {"median": round(n_train / statistics.median(t), 1),
                                   "min": round(n_train / max(t), 1),
                                   "max": round(n_train / min(t), 1)}
                            for name, t in times.items()},
            "seconds": {name: [round(x, 3) for x in t] for name, t in times.items()},
        }
        text = json.dumps(result, indent=1)
        print(text)
        if args.json:
            args.json.write_text(text + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
