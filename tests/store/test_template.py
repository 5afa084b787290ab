"""create_store writes its template with zarr alone, byte for byte what xarray's
``to_zarr(compute=False)`` of the same dataset writes (xarray is the reference: it is what reads
the store back), so that ``fieldkit process`` does not import xarray, dask.array and pandas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fieldkit.store import zarr_store
from fieldkit.store.zarr_store import COORD_CHUNK_MIN_CLIPS, create_store, open_store
from tests.store.store_helpers import coords_for, small_layout

LAYOUTS = {
    "default": {},
    "no waveform, level 0": {"waveform": False, "compression_level": 0},
    "int16 waveform, float16 features": {"waveform_dtype": "int16", "feature_dtype": "float16"},
    "features only centroid": {"features": ("centroid",), "bands": {}},
    "coordinates in several chunks": {"n_clips": 2 * COORD_CHUNK_MIN_CLIPS + 40, "clips_per_shard": 8,
                                      "clips_per_chunk": 8, "samples_per_clip": 4},
}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("overrides", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_the_template_is_what_xarray_writes(tmp_path, overrides):
    layout = small_layout(**overrides)
    coords = coords_for(layout.n_clips, np.where(np.arange(layout.n_clips) % 7 == 6, -1,
                                                 np.arange(layout.n_clips) // 3))
    attrs = {"parameters": {"name": "x", "n": [1, 2]}, "run_id": 3}
    reference = tmp_path / "xarray.zarr"
    zarr_store._template(layout, zarr_store._checked_coords(layout, coords),
                         zarr_store._checked_attrs(attrs, layout)).to_zarr(
        str(reference), mode="w-", compute=False, zarr_format=3, consolidated=False,
        encoding=zarr_store._encoding(layout))
    create_store(tmp_path / "fieldkit.zarr", layout, coords, attrs)
    ours = _files(tmp_path / "fieldkit.zarr")
    assert {k for k in ours if not k.startswith("progress")} == set(_files(reference))
    assert {k: v for k, v in ours.items() if not k.startswith("progress")} == _files(reference)
    ds = open_store(tmp_path / "fieldkit.zarr")
    assert np.isnat(ds["start_time"].values[layout.n_clips - 1 if (layout.n_clips - 1) % 7 == 6 else 6])
    np.testing.assert_array_equal(ds["site"].values, coords["site"])
    ds.close()


def test_process_creates_its_store_without_xarray():
    """What the driver imports to plan, create the store and run tasks in process."""
    code = ("import sys, fieldkit.pipeline.driver, fieldkit.pipeline.tasks; "
            "print(sorted(m for m in ('xarray', 'pandas', 'dask.array', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
