"""Per-clip pooled statistics of frame features, and bounded-memory reads of the store.

A clip's frame features (``mel``, ``mfcc``, ``chroma``, ``centroid``...) are pooled into the
mean and standard deviation over its *valid* frames: frames whose centre lies in the clip's
real audio (``valid_samples``), so the zero padding of a recording's last clip does not pull
the statistics towards silence. The kernels are pure (ndarrays in, ndarrays out); the same
kernels pool the Parquet export and the arrays of a Zarr or NumPy export
(:mod:`fieldkit.export.baseline`), so every format yields the same table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fieldkit.store.layout import FEATURE_VARIABLES, QC_VARIABLES
from fieldkit.store.zarr_store import open_store

__all__ = [
    "BLOCK_BYTES",
    "POOLED_FEATURES",
    "FrameTiming",
    "clip_blocks",
    "open_source",
    "pooled_columns",
    "valid_frame_counts",
]

#: Frame features that are pooled; ``stft`` is left out (hundreds of bins, mostly redundant
#: with ``mel``).
POOLED_FEATURES = tuple(name for name in FEATURE_VARIABLES if name != "stft")
#: Target size of one block of clips read from the store (bounded memory, whatever the run).
BLOCK_BYTES = 64 * 2**20


class FrameTiming:
    """How frames map to samples: ``hop_length`` samples apart, centred or not.

    Parameters
    ----------
    hop_length : int
        Samples between frame starts (>= 1).
    n_fft : int
        Frame length in samples (only used when ``center`` is false).
    center : bool
        librosa's convention: frame ``t`` is centred on sample ``t * hop_length``.
    """

    def __init__(self, hop_length: int, n_fft: int, center: bool = True) -> None:
        self.hop_length, self.n_fft, self.center = int(hop_length), int(n_fft), bool(center)

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> FrameTiming:
        """From a run's workflow parameters (the store's ``parameters`` attribute)."""
        features = parameters.get("features", {})
        return cls(features.get("hop_length", 256), features.get("n_fft", 2048),
                   features.get("center", True))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly values (saved in the export's ``export.json``)."""
        return {"hop_length": self.hop_length, "n_fft": self.n_fft, "center": self.center}


def valid_frame_counts(valid_samples: np.ndarray, n_frames: int,
                       timing: FrameTiming) -> np.ndarray:
    """Frames per clip that cover real audio, in ``[1, n_frames]`` (int64, one per clip)."""
    valid = np.asarray(valid_samples, dtype=np.int64)
    if timing.center:
        counts = -(-valid // timing.hop_length)  # frames whose centre t*hop < valid
    else:
        counts = 1 + (valid - timing.n_fft) // timing.hop_length
    return np.clip(counts, 1, max(n_frames, 1))


def _masked_mean_std(x: np.ndarray, n_valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over axis 1 (frames) of the first ``n_valid[i]`` frames of clip i."""
    mask = np.arange(x.shape[1])[None, :] < n_valid[:, None]
    if x.ndim == 3:
        mask = mask[:, :, None]
    x = x.astype(np.float64)
    count = mask.sum(axis=1)
    mean = np.where(mask, x, 0.0).sum(axis=1) / count
    centred = np.where(mask, x - np.expand_dims(mean, 1), 0.0)
    std = np.sqrt((centred**2).sum(axis=1) / count)
    return mean.astype(np.float32), std.astype(np.float32)


def pooled_columns(arrays: dict[str, np.ndarray], n_valid: np.ndarray) -> dict[str, np.ndarray]:
    """Pooled feature columns and QC columns of a block of clips.

    Parameters
    ----------
    arrays : dict of str to ndarray
        Store variables for the block: frame features ``(clip, frame[, band])`` and the QC
        variables ``(clip,)``; absent variables are skipped.
    n_valid : ndarray
        Valid frames per clip (:func:`valid_frame_counts`).

    Returns
    -------
    dict of str to ndarray
        float32 columns, in a fixed order: ``<feature>_mean_<band:02d>`` and
        ``<feature>_std_<band:02d>`` for band features, ``<feature>_mean`` and
        ``<feature>_std`` for per-frame scalars, then each QC variable unchanged.
    """
    out: dict[str, np.ndarray] = {}
    for name in POOLED_FEATURES:
        if name in arrays:
            mean, std = _masked_mean_std(arrays[name], n_valid)
            out.update(_named(name, "mean", mean))
            out.update(_named(name, "std", std))
    out.update({q: np.asarray(arrays[q], dtype=np.float32) for q in QC_VARIABLES if q in arrays})
    return out


def _named(name: str, stat: str, values: np.ndarray) -> dict[str, np.ndarray]:
    if values.ndim == 1:
        return {f"{name}_{stat}": values}
    return {f"{name}_{stat}_{band:02d}": values[:, band] for band in range(values.shape[1])}


def open_source(store_path: Path) -> xr.Dataset:
    """The run's store, lazily, without dask: a block read touches only its inner chunks."""
    return open_store(store_path, consolidated=True, chunks=None)


def clips_per_block(ds: xr.Dataset, variables: list[str]) -> int:
    """Clips per block so that one block of ``variables`` stays under :data:`BLOCK_BYTES`."""
    per_clip = sum(ds[v].dtype.itemsize * ds[v].size // max(ds.sizes["clip"], 1)
                   for v in variables)
    return max(1, BLOCK_BYTES // max(per_clip, 1))


def clip_blocks(ds: xr.Dataset, clip_ids: np.ndarray,
                variables: list[str]) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """Read ``variables`` for ``clip_ids`` block by block.

    Yields ``(rows, arrays)``: ``rows`` is the slice of ``clip_ids`` the block covers and
    ``arrays`` the loaded values, clip axis first, in the order of ``clip_ids``.
    """
    step = clips_per_block(ds, variables)
    for start in range(0, len(clip_ids), step):
        rows = slice(start, min(start + step, len(clip_ids)))
        block = ds[variables].isel(clip=np.asarray(clip_ids[rows], dtype=np.int64))
        yield rows, {v: np.asarray(block[v].values) for v in variables}
