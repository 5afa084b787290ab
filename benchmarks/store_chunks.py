"""Choose the store's clips_per_chunk / clips_per_shard / zstd level by measurement.

Writes and reads back 1 hour of 16 kHz audio as 3 s clips (1200 clips): waveform float32,
valid_samples, mel (64 bands, n_fft 1024, hop 320 -> 151 frames) and the 4 QC variables,
through fieldkit.store exactly as a run does (create_store, then one write_region per shard,
serially), for several settings, and prints a table (median of --repeats):

- write s: create_store + every region (+ done markers);
- read s: open_store + load every data variable;
- rand ms: mean time to read waveform + mel of one random clip (50 clips), as an ML loader does;
- MB: bytes on disk; objects: files in the store.

The signal is seeded field-like noise (pink noise at about -40 dBFS plus chirps), so the
compression ratios are realistic; mel comes from fieldkit.dsp.

    .venv/bin/python benchmarks/store_chunks.py [--repeats 3] [--out DIR] [--settings 8,128,1 ...]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from fieldkit.config.params import FeatureParams
from fieldkit.dsp.features import compute_features
from fieldkit.store.layout import StoreLayout
from fieldkit.store.regions import write_region
from fieldkit.store.zarr_store import create_store, open_store

RATE_HZ, CLIP_S, N_CLIPS = 16000, 3, 1200
PARAMS = FeatureParams(n_fft=1024, hop_length=320, n_mels=64, compute=("mel",))
#: (clips_per_chunk, clips_per_shard, zstd level)
SETTINGS = [(1, 32, 3), (1, 128, 3), (4, 128, 3), (8, 64, 3), (8, 128, 3), (8, 512, 3),
            (32, 128, 3), (32, 512, 3), (8, 128, 0), (8, 128, 1), (8, 128, 5), (16, 128, 1),
            (8, 256, 1)]


def field_audio(n_clips: int, seed: int = 0) -> np.ndarray:
    """(n_clips, samples) float32: pink-ish noise around -40 dBFS with sparse chirps."""
    rng = np.random.default_rng(seed)
    n = n_clips * RATE_HZ * CLIP_S
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    noise = np.fft.irfft(spectrum, n)
    noise *= 0.01 / noise.std()
    t = np.arange(RATE_HZ // 2) / RATE_HZ
    chirp = 0.2 * np.sin(2 * np.pi * (3000 + 4000 * t) * t) * np.hanning(t.size)
    for start in rng.integers(0, n - t.size, size=n_clips // 2):
        noise[start:start + t.size] += chirp
    return noise.astype(np.float32).reshape(n_clips, RATE_HZ * CLIP_S)


def arrays_for(waveform: np.ndarray) -> dict[str, np.ndarray]:
    n = waveform.shape[0]
    qc = {name: np.zeros(n, np.float32) for name in
          ("clipped_fraction", "peak_dbfs", "dc_offset", "silent_fraction")}
    qc["peak_dbfs"] = 20 * np.log10(np.abs(waveform).max(axis=1)).astype(np.float32)
    mel = compute_features(waveform, RATE_HZ, PARAMS)["mel"]
    return {"waveform": waveform, "valid_samples": np.full(n, waveform.shape[1], np.int32),
            "mel": mel, **qc}


def coords_for(n: int) -> dict[str, np.ndarray]:
    start = np.datetime64("2024-05-01T20:00:00", "ns")
    return {"recording_id": np.arange(n) // 20, "offset_s": (np.arange(n) % 20) * 3.0,
            "start_time": start + np.arange(n) * np.timedelta64(3, "s"),
            "site": np.full(n, "site-A", object), "deployment": np.full(n, "dep-1", object),
            "channel": np.zeros(n, np.int16)}


def write_once(path: Path, layout: StoreLayout, data: dict[str, np.ndarray]) -> float:
    t0 = time.perf_counter()
    create_store(path, layout, coords_for(layout.n_clips), {"parameters": {}}, overwrite=True)
    for start in range(0, layout.n_clips, layout.clips_per_shard):
        stop = min(start + layout.clips_per_shard, layout.n_clips)
        write_region(path, slice(start, stop), {k: v[start:stop] for k, v in data.items()})
    return time.perf_counter() - t0


def read_once(path: Path) -> tuple[float, float]:
    t0 = time.perf_counter()
    open_store(path).load()
    read_all = time.perf_counter() - t0
    ds = open_store(path, chunks=None)
    picks = np.random.default_rng(1).integers(0, N_CLIPS, size=50)
    t0 = time.perf_counter()
    for clip in picks:
        ds["waveform"][int(clip)].values, ds["mel"][int(clip)].values
    return read_all, (time.perf_counter() - t0) / picks.size * 1e3


def footprint(path: Path) -> tuple[float, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6, len(files)


def measure(setting: tuple[int, int, int], data: dict[str, np.ndarray], root: Path,
            repeats: int) -> dict[str, float]:
    chunk, shard, level = setting
    layout = StoreLayout.from_feature_params(N_CLIPS, RATE_HZ * CLIP_S, RATE_HZ, PARAMS,
                                             clips_per_chunk=chunk, clips_per_shard=shard,
                                             compression_level=level)
    writes, reads, rands = [], [], []
    for i in range(repeats):
        path = root / f"c{chunk}-s{shard}-l{level}-{i}.zarr"
        writes.append(write_once(path, layout, data))
        read_all, rand = read_once(path)
        reads.append(read_all)
        rands.append(rand)
    size_mb, objects = footprint(path)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    return {"write": statistics.median(writes), "read": statistics.median(reads),
            "rand": statistics.median(rands), "mb": size_mb, "objects": objects}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="scratch directory")
    parser.add_argument("--settings", nargs="*", default=None, metavar="CHUNK,SHARD,LEVEL",
                        help="only these settings, e.g. 8,128,1 (default: all of SETTINGS)")
    args = parser.parse_args()
    settings = [tuple(int(v) for v in s.split(",")) for s in args.settings] if args.settings \
        else SETTINGS
    data = arrays_for(field_audio(N_CLIPS))
    raw_mb = sum(v.nbytes for v in data.values()) / 1e6
    root = args.out or Path(tempfile.mkdtemp(prefix="fk-store-bench-"))
    print(f"1 h of {RATE_HZ} Hz audio, {N_CLIPS} clips of {CLIP_S} s, {raw_mb:.0f} MB raw")
    print("| chunk | shard | zstd | write s | read s | rand ms | MB | objects |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for setting in settings:
        r = measure(setting, data, root / "work", args.repeats)
        print(f"| {setting[0]} | {setting[1]} | {setting[2]} | {r['write']:.2f} | "
              f"{r['read']:.2f} | {r['rand']:.1f} | {r['mb']:.0f} | {r['objects']} |", flush=True)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
