"""Helpers shared by the store tests (importable by spawned worker processes too)."""

from __future__ import annotations

import numpy as np

from fieldkit.store.layout import StoreLayout
from fieldkit.store.regions import padding_arrays, read_layout, write_region

N_CLIPS = 22  # 5 shards of 4 clips plus a partial one of 2


def small_layout(n_clips: int = N_CLIPS, **overrides) -> StoreLayout:
    values = {"n_clips": n_clips, "samples_per_clip": 32, "sample_rate_hz": 16000,
              "n_frames": 3, "features": ("mel", "mfcc", "centroid", "bandwidth", "chroma", "rms"),
              "bands": {"mel_band": 5, "mfcc_coef": 3, "chroma_bin": 4}, "clips_per_chunk": 2,
              "clips_per_shard": 4}
    return StoreLayout(**{**values, **overrides})


def coords_for(n_clips: int, recording_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
    ids = np.arange(n_clips) // 3 if recording_ids is None else recording_ids
    start = np.datetime64("2024-05-01T20:00:00", "ns") + np.arange(n_clips) * np.timedelta64(2, "s")
    start[ids < 0] = np.datetime64("NaT")
    return {"recording_id": ids.astype(np.int64), "start_time": start,
            "offset_s": (np.arange(n_clips) % 3) * 2.0,
            "site": np.array([f"site-{i % 2}-é" for i in range(n_clips)], dtype=object),
            "deployment": np.array(["dep-1"] * n_clips, dtype=object),
            "channel": np.zeros(n_clips, np.int16)}


def region_arrays(layout: StoreLayout, start: int, stop: int) -> dict[str, np.ndarray]:
    """Deterministic values for clips [start, stop): clip c holds c + small offsets."""
    out = {}
    for spec in layout.variables():
        clip = np.arange(start, stop, dtype=np.float64).reshape(-1, *([1] * (len(spec.shape) - 1)))
        rest = np.arange(int(np.prod(spec.shape[1:], dtype=np.int64))).reshape(spec.shape[1:])
        out[spec.name] = (clip * 1000 + rest / 7).astype(spec.dtype)
    out["valid_samples"] = np.full(stop - start, layout.samples_per_clip, np.int32)
    return out


def write_task(path: str, start: int, stop: int) -> tuple[int, int]:
    """What one Dask task does: compute its region and write it (runs in a worker process)."""
    layout = read_layout(path)
    write_region(path, slice(start, stop), region_arrays(layout, start, stop))
    return start, stop


def random_region(layout: StoreLayout, start: int, stop: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random values for clips [start, stop), the last few of them padding clips."""
    arrays = {}
    for spec in layout.variables():
        shape = (stop - start, *spec.shape[1:])
        if np.dtype(spec.dtype).kind == "f":
            arrays[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        else:
            arrays[spec.name] = rng.integers(-1000, 1000, shape).astype(spec.dtype)
    pad_from = int(rng.integers(0, stop - start + 1))  # the last clips are padding
    for name, values in padding_arrays(layout, stop - start).items():
        arrays[name][pad_from:] = values[pad_from:]
    return arrays
