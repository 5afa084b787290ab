"""The direct shard writer writes the very objects zarr writes, and zarr reads them back.

Each case writes the same regions twice, once through fieldkit.store.shards and once
through zarr (``regions.local_store_root`` patched to None, as for a remote store), and
compares every file of the two stores byte for byte: data with padding clips (NaN features,
zero waveform: chunks equal to the fill are left out), a partial last shard, int16
waveform, several chunk/shard/level settings.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from store_helpers import coords_for, small_layout

from fieldkit.store import regions
from fieldkit.store.regions import padding_arrays, region_is_complete, write_region
from fieldkit.store.zarr_store import create_store, open_store
from fieldkit.store.regions import RegionStore
from fieldkit.store.shards import ShardWriter, Unsupported, local_store_root


def _random_region(layout, start, stop, rng):
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


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("n_clips", "chunk", "shard", "level", "waveform_dtype"), [
    (22, 2, 4, 1, "float32"),   # partial last shard of 2 clips
    (7, 1, 2, 3, "int16"),      # 1-clip chunks, odd clip count
    (33, 4, 8, 0, "float32"),   # level 0, last shard with a partial inner chunk
    (5, 4, 8, 1, "float32"),    # one shard, shorter than the shard size
])
def test_objects_are_byte_identical_to_zarrs(tmp_path, monkeypatch, n_clips, chunk, shard, level,
                                             waveform_dtype):
    layout = small_layout(n_clips, clips_per_chunk=chunk, clips_per_shard=shard,
                          compression_level=level, waveform_dtype=waveform_dtype)
    direct, via_zarr = tmp_path / "direct.zarr", tmp_path / "zarr.zarr"
    for path in (direct, via_zarr):
        create_store(path, layout, coords_for(n_clips), {})
    assert RegionStore(direct)._writer() is not None
    rng = np.random.default_rng(n_clips)
    regions_ = [(a, min(a + shard, n_clips)) for a in range(0, n_clips, shard)]
    batches = [_random_region(layout, a, b, rng) for a, b in regions_]
    for (a, b), arrays in zip(regions_, batches, strict=True):
        write_region(direct, slice(a, b), arrays)
    with monkeypatch.context() as m:
        m.setattr(regions, "local_store_root", lambda path: None)
        assert RegionStore(via_zarr)._writer() is None
        for (a, b), arrays in zip(regions_, batches, strict=True):
            write_region(via_zarr, slice(a, b), arrays)
    ours, theirs = _files(direct), _files(via_zarr)
    assert sorted(ours) == sorted(theirs)
    assert [name for name in ours if ours[name] != theirs[name]] == []
    ds = open_store(direct)
    for (a, b), arrays in zip(regions_, batches, strict=True):
        for name, values in arrays.items():
            np.testing.assert_array_equal(ds[name].values[a:b], values)
    assert region_is_complete(direct, slice(0, n_clips))


def test_a_rewrite_replaces_objects_and_leaves_no_temporaries(tmp_path):
    layout = small_layout()
    path = tmp_path / "s.zarr"
    create_store(path, layout, coords_for(layout.n_clips), {})
    rng = np.random.default_rng(1)
    first, second = (_random_region(layout, 0, 4, rng) for _ in range(2))
    write_region(path, slice(0, 4), first)
    write_region(path, slice(0, 4), second)
    np.testing.assert_array_equal(open_store(path)["mel"].values[:4], second["mel"])
    assert list(path.rglob("*.partial")) == []


def test_stores_it_does_not_handle_fall_back_to_zarr(tmp_path):
    """A store whose done marker is compressed (as made before the direct writer) is written
    through zarr, with the same result."""
    layout = small_layout()
    path = tmp_path / "old.zarr"
    create_store(path, layout, coords_for(layout.n_clips), {})
    group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    del group["progress/done"]
    group["progress"].create_array("done", shape=(layout.n_clips,), dtype="uint8",
                                   chunks=(layout.clips_per_shard,), fill_value=0)
    with pytest.raises(Unsupported, match="done marker"):
        ShardWriter(path, [v.name for v in layout.variables()], "progress", layout.clips_per_shard)
    store = RegionStore(path)
    assert store._writer() is None
    arrays = _random_region(layout, 4, 8, np.random.default_rng(2))
    store.write(slice(4, 8), arrays)
    assert store.is_complete(slice(4, 8)) and not store.is_complete(slice(0, 4))
    np.testing.assert_array_equal(open_store(path)["mfcc"].values[4:8], arrays["mfcc"])


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
