"""Array exports: one Zarr store per split, or one ``.npy`` file per variable and split.

Both keep the run's arrays as they are (no pooling), in export order: row ``i`` of split
``s`` is the ``i``-th row of ``index.parquet`` whose ``split`` is ``s``. Both read the run's
store in bounded blocks (dask chunks of one shard for Zarr, :func:`clip_blocks` for NumPy), so
memory stays flat whatever the dataset's size.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from fieldkit.export.pooling import POOLED_FEATURES, clip_blocks, open_source
from fieldkit.export.request import ExportInput, hash_files
from fieldkit.store.layout import QC_VARIABLES
from fieldkit.store.regions import read_layout
from fieldkit.store.zarr_store import open_store

__all__ = ["CF_ATTRIBUTES", "POOL_VARIABLES", "numpy_split", "write_numpy", "write_zarr", "zarr_split"]

#: CF-style ``units`` and ``long_name`` of each store variable, set on the Zarr export's
#: variables so that xarray users see Hz, dBFS and seconds (units "1": dimensionless).
CF_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "waveform": ("1", "audio samples, full scale = 1 (int16: 32768)"),
    "valid_samples": ("1", "samples of real audio in the clip (the rest is zero padding)"),
    "mel": ("1", "mel spectrogram (power, relative to full scale)"),
    "logmel": ("dB", "log mel spectrogram, dB relative to full-scale power"),
    "mfcc": ("1", "mel-frequency cepstral coefficients (DCT-II of logmel)"),
    "chroma": ("1", "chromagram, normalised per frame"),
    "stft": ("1", "STFT magnitude, relative to full scale"),
    "centroid": ("Hz", "spectral centroid"),
    "bandwidth": ("Hz", "spectral bandwidth"),
    "rms": ("1", "root-mean-square amplitude per frame, full scale = 1"),
    "clipped_fraction": ("1", "fraction of samples at or beyond full scale"),
    "peak_dbfs": ("dBFS", "peak sample level"),
    "dc_offset": ("1", "mean sample value (DC offset), full scale = 1"),
    "silent_fraction": ("1", "fraction of silent frames"),
    "nonfinite_count": ("1", "stored values that are NaN or infinite"),
    "offset_s": ("s", "clip start, seconds from the start of its recording"),
    "labels": ("1", "multi-hot labels over the label coordinate"),
}

#: Store variables the pooled table is computed from.
POOL_VARIABLES = (*POOLED_FEATURES, *QC_VARIABLES, "valid_samples")


def zarr_split(out_dir: Path, split: str) -> Path:
    """Where the Zarr export keeps one split."""
    return out_dir / "data" / f"{split}.zarr"


def numpy_split(out_dir: Path, split: str) -> Path:
    """Where the NumPy export keeps one split's ``.npy`` files."""
    return out_dir / "data" / split


def _split_dataset(ds: xr.Dataset, inp: ExportInput, split: str) -> xr.Dataset:
    """The store's clips of one split, with ``labels`` (multi-hot), ``clip_id`` and hashes."""
    rows = inp.split_index(split)
    sub = ds.isel(clip=rows["clip_id"].to_numpy(dtype=np.int64))
    sub = sub.assign(labels=(("clip", "label"), inp.multi_hot(split)))
    # object arrays are stored as variable-length UTF-8 strings, like the run's store does
    sub = sub.assign_coords(label=np.array(inp.label_names, dtype=object),
                            clip_id=("clip", rows["clip_id"].to_numpy(dtype=np.int64)),
                            recording_sha256=("clip", rows["recording_sha256"].to_numpy(object)))
    # the run's "layout" describes the run's store (its clip count, its shards), not this one
    kept = {k: v for k, v in ds.attrs.items() if k != "layout"}
    sample_rate = ds.attrs.get("layout", {}).get("sample_rate_hz")
    sub.attrs = {**kept, "sample_rate_hz": sample_rate, "split": split, "dataset": inp.name,
                 "dataset_version": inp.version, "label_names": list(inp.label_names)}
    for name, (units, long_name) in CF_ATTRIBUTES.items():
        if name in sub.variables:
            sub[name].attrs.update(units=units, long_name=long_name)
    return sub


def _zarr_encoding(sub: xr.Dataset, chunk: int, shard: int) -> dict[str, dict[str, Any]]:
    """Inner chunks of ``chunk`` clips in shards of ``shard`` clips, for every clip variable."""
    enc = {}
    for name, var in sub.variables.items():
        var.encoding = {}
        if var.dims and var.dims[0] == "clip" and name not in sub.coords:
            rest = tuple(var.shape[1:])
            enc[name] = {"chunks": (chunk, *rest), "shards": (shard, *rest)}
    return enc


def _write_zarr_split(ds: xr.Dataset, inp: ExportInput, split: str, path: Path) -> None:
    layout = read_layout(inp.store)
    sub = _split_dataset(ds, inp, split)
    n = sub.sizes["clip"]
    chunk = min(layout.clips_per_chunk, n)
    shard = chunk * -(-min(layout.clips_per_shard, n) // chunk)
    encoding = _zarr_encoding(sub, chunk, shard)
    with warnings.catch_warnings():
        # Consolidated metadata is not in the v3 spec yet; xarray and zarr-python read it.
        warnings.filterwarnings("ignore", message="Consolidated metadata",
                                category=zarr.errors.ZarrUserWarning)
        chunked = sub.chunk({"clip": shard})
        # coordinates are one value per clip: small, and strings must be concrete to encode
        chunked = chunked.assign_coords({c: sub[c].compute() for c in sub.coords})
        chunked.to_zarr(str(path), mode="w-", consolidated=True,
                                           zarr_format=3, encoding=encoding)


def write_zarr(inp: ExportInput, out_dir: Path) -> dict[str, str]:
    """Write ``data/<split>.zarr`` per split; returns ``relative file -> sha256``.

    Each store is the run's store restricted to the split's clips (every variable and
    coordinate), plus ``labels`` (clip, label) uint8 multi-hot with the ``label`` coordinate,
    ``clip_id`` and ``recording_sha256`` coordinates, and a ``split`` attribute; consolidated.
    """
    ds = open_store(inp.store, consolidated=True)
    for split in inp.splits:
        _write_zarr_split(ds, inp, split, zarr_split(out_dir, split))
    return hash_files(out_dir, "data")


def _memmaps(ds: xr.Dataset, folder: Path, n: int) -> dict[str, np.ndarray]:
    return {v: np.lib.format.open_memmap(folder / f"{v}.npy", mode="w+", dtype=ds[v].dtype,
                                         shape=(n, *ds[v].shape[1:]))
            for v in ds.data_vars}


def _write_numpy_split(ds: xr.Dataset, inp: ExportInput, split: str, folder: Path) -> None:
    folder.mkdir(parents=True)
    rows = inp.split_index(split)
    clip_ids = rows["clip_id"].to_numpy(dtype=np.int64)
    targets = _memmaps(ds, folder, len(clip_ids))
    for block_rows, arrays in clip_blocks(ds, clip_ids, list(targets)):
        for name, values in arrays.items():
            targets[name][block_rows] = values
    for array in targets.values():
        array.flush()
    np.save(folder / "labels.npy", inp.multi_hot(split))
    np.save(folder / "clip_id.npy", clip_ids)


def write_numpy(inp: ExportInput, out_dir: Path) -> dict[str, str]:
    """Write ``data/<split>/<variable>.npy`` per split; returns ``relative file -> sha256``.

    Every data variable of the store (waveform, ``valid_samples``, features, QC) is written
    with :func:`numpy.lib.format.open_memmap` one block of clips at a time, so memory stays
    bounded; ``labels.npy`` (uint8 multi-hot, columns in ``label_names`` order) and
    ``clip_id.npy`` (int64) complete each split. Load with ``np.load(path, mmap_mode="r")``.
    """
    ds = open_source(inp.store)
    for split in inp.splits:
        _write_numpy_split(ds, inp, split, numpy_split(out_dir, split))
    return hash_files(out_dir, "data")


def read_zarr_split(out_dir: Path, split: str) -> xr.Dataset:
    """One split of a Zarr export, lazily and without dask."""
    return xr.open_zarr(str(zarr_split(out_dir, split)), consolidated=True, chunks=None)


def read_numpy_split(out_dir: Path, split: str) -> xr.Dataset:
    """One split of a NumPy export as a Dataset over memory-mapped arrays (clip axis first)."""
    folder = numpy_split(out_dir, split)
    names = [p.stem for p in sorted(folder.glob("*.npy"))]
    arrays = {n: np.load(folder / f"{n}.npy", mmap_mode="r") for n in names}
    return xr.Dataset({n: (["clip", *[f"{n}_{i}" for i in range(1, a.ndim)]], a)
                       for n, a in arrays.items()})
