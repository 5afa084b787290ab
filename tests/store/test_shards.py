"""The direct shard writer: whole objects replaced atomically, only layouts it knows.

That it writes the very bytes zarr writes is part of the store contract, tested against both
sinks in ``test_sinks.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from store_helpers import coords_for, random_region, small_layout

from fieldkit.store.regions import write_region
from fieldkit.store.shards import ShardWriter, Unsupported, local_store_root
from fieldkit.store.zarr_store import create_store, open_store


def test_a_rewrite_replaces_objects_and_leaves_no_temporaries(tmp_path):
    layout = small_layout()
    path = tmp_path / "s.zarr"
    create_store(path, layout, coords_for(layout.n_clips), {})
    rng = np.random.default_rng(1)
    first, second = (random_region(layout, 0, 4, rng) for _ in range(2))
    write_region(path, slice(0, 4), first)
    write_region(path, slice(0, 4), second)
    np.testing.assert_array_equal(open_store(path)["mel"].values[:4], second["mel"])
    assert list(path.rglob("*.partial")) == []


def test_only_local_directories_are_written_directly(tmp_path):
    layout = small_layout()
    path = tmp_path / "s.zarr"
    create_store(path, layout, coords_for(layout.n_clips), {})
    assert local_store_root(path) == path
    assert local_store_root(f"file://{path}") == path
    assert local_store_root("s3://bucket/s.zarr") is None
    assert local_store_root(tmp_path / "missing.zarr") is None
    meta = json.loads((path / "mel" / "zarr.json").read_text())
    meta["codecs"][0]["configuration"]["index_location"] = "start"
    (path / "mel" / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(Unsupported, match="sharding configuration"):
        ShardWriter(path, ["mel"], "progress", layout.clips_per_shard)
