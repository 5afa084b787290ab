"""The store protocol on real Zarr stores: template, parallel region writes, resume, publish."""

from __future__ import annotations

import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from store_helpers import N_CLIPS, coords_for, region_arrays, small_layout, write_task

from fieldkit.errors import StoreError
from fieldkit.store.allocation import plan_regions
from fieldkit.store.layout import SCHEMA_VERSION
from fieldkit.store.regions import (
    completed_regions,
    padding_arrays,
    read_layout,
    region_is_complete,
    write_region,
)
from fieldkit.store.zarr_store import create_store, finalize_store, open_store, remove_partial_files

SHARD_REGIONS = [(0, 4), (4, 8), (8, 12), (12, 16), (16, 20), (20, 22)]


@pytest.fixture
def store(tmp_path, layout, attrs) -> Path:
    path = tmp_path / "run.zarr"
    create_store(path, layout, coords_for(layout.n_clips), attrs)
    return path


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def expected(layout, name: str) -> np.ndarray:
    return region_arrays(layout, 0, layout.n_clips)[name]


def test_the_template_holds_metadata_and_coordinates_but_no_data(store, layout):
    ds = open_store(store)
    assert set(ds.data_vars) == {spec.name for spec in layout.variables()}
    assert ds.sizes["clip"] == N_CLIPS
    assert np.isnan(ds["mel"].values).all()  # never written: the fill value
    assert not any("mel/c" in key for key in snapshot(store))
    assert completed_regions(store) == []


def test_regions_written_by_two_processes_give_the_expected_arrays(store, layout):
    spawn = multiprocessing.get_context("spawn")  # zarr runs an event-loop thread: no fork
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        written = list(pool.map(write_task, [str(store)] * 6, *zip(*SHARD_REGIONS)))
    assert written == SHARD_REGIONS
    ds = open_store(store).load()
    for spec in layout.variables():
        np.testing.assert_array_equal(ds[spec.name].values, expected(layout, spec.name))
    assert completed_regions(store) == [slice(0, N_CLIPS)]


@pytest.mark.reliability("E4")
def test_rewriting_a_region_is_byte_identical(store, layout):
    write_region(store, slice(4, 12), region_arrays(layout, 4, 12))
    first = snapshot(store)
    write_region(store, slice(4, 12), region_arrays(layout, 4, 12))
    assert snapshot(store) == first
    assert any(key.startswith("waveform/c.1.") for key in first)  # shards were really written


@pytest.mark.parametrize("region", [slice(2, 6), slice(4, 10), slice(1, 22), slice(20, 21)])
@pytest.mark.reliability("E3")
def test_a_misaligned_region_raises_before_writing(store, layout, region):
    before = snapshot(store)
    with pytest.raises(StoreError, match=r"not aligned to its 4-clip shards.*nothing was written"):
        write_region(store, region, region_arrays(layout, region.start, region.stop))
    assert snapshot(store) == before


@pytest.mark.parametrize(("region", "expected"), [
    (slice(0, 30), r"outside \[0, 22\)"), (slice(4, 4), "empty"), (slice(0, 8, 2), "step 1"),
])
def test_regions_outside_the_store_are_rejected(store, layout, region, expected):
    with pytest.raises(StoreError, match=expected):
        write_region(store, region, region_arrays(layout, 0, 8))


def test_arrays_must_match_the_layout(store, layout):
    arrays = region_arrays(layout, 0, 4)
    with pytest.raises(StoreError, match=r"missing \['rms'\]"):
        write_region(store, slice(0, 4), {k: v for k, v in arrays.items() if k != "rms"})
    with pytest.raises(StoreError, match=r"mel has shape \(3, 3, 5\); expected \(4, 3, 5\)"):
        write_region(store, slice(0, 4), {**arrays, "mel": arrays["mel"][:3]})
    with pytest.raises(StoreError, match="valid_samples has dtype float64; expected int32"):
        write_region(store, slice(0, 4), {**arrays, "valid_samples": np.zeros(4)})
    assert not region_is_complete(store, slice(0, 4))


@pytest.mark.parametrize("writer", ["direct", "zarr"])
def test_unwritten_and_interrupted_regions_are_incomplete(store, layout, monkeypatch, writer):
    from fieldkit.store import regions, shards

    if writer == "zarr":  # as for a remote store: every write goes through zarr
        monkeypatch.setattr(regions, "local_store_root", lambda path: None)
        monkeypatch.setattr(shards, "local_store_root", lambda path: None)
    write_region(store, slice(0, 8), region_arrays(layout, 0, 8))
    assert region_is_complete(store, slice(0, 8)) and region_is_complete(store, slice(4, 8))
    assert not region_is_complete(store, slice(8, 12))
    assert not region_is_complete(store, slice(4, 12))

    def crash_halfway(group, start, stop, arrays):
        group["waveform"][start:stop] = arrays["waveform"]
        raise KeyboardInterrupt("worker killed")

    def crash_halfway_direct(self, start, shard_range, arrays):
        self.arrays["waveform"].write(shard_range[0], arrays["waveform"][:self.shard])
        raise KeyboardInterrupt("worker killed")

    monkeypatch.setattr(regions, "_write_variables", crash_halfway)
    monkeypatch.setattr(shards.ShardWriter, "write_variables", crash_halfway_direct)
    for region in (slice(8, 12), slice(0, 4)):  # a new region, and a rewrite of a done one
        with pytest.raises(KeyboardInterrupt):
            write_region(store, region, region_arrays(layout, region.start, region.stop))
        assert not region_is_complete(store, region)
    assert completed_regions(store) == [slice(4, 8)]


def test_a_resumed_run_finishes_the_missing_regions(store, layout):
    for start, stop in SHARD_REGIONS[::2]:
        write_region(store, slice(start, stop), region_arrays(layout, start, stop))
    done = completed_regions(store)
    assert done == [slice(0, 4), slice(8, 12), slice(16, 20)]
    todo = [(a, b) for a, b in SHARD_REGIONS if not region_is_complete(store, slice(a, b))]
    assert todo == SHARD_REGIONS[1::2]
    for start, stop in todo:
        write_region(store, slice(start, stop), region_arrays(layout, start, stop))
    np.testing.assert_array_equal(open_store(store)["mel"].values, expected(layout, "mel"))


def test_coordinates_round_trip(store, layout):
    ds = open_store(store)
    coords = coords_for(layout.n_clips)
    assert ds["start_time"].dtype == np.dtype("datetime64[ns]")
    assert ds["start_time"].attrs["timezone"] == "UTC"
    np.testing.assert_array_equal(ds["start_time"].values, coords["start_time"])
    assert ds["recording_id"].dtype == np.int64 and ds["channel"].dtype == np.int16
    np.testing.assert_array_equal(ds["recording_id"].values, coords["recording_id"])
    np.testing.assert_array_equal(ds["offset_s"].values, coords["offset_s"])
    assert ds["site"].values.tolist() == coords["site"].tolist()  # numpy StringDType
    assert set(ds.coords) == {"recording_id", "start_time", "offset_s", "site", "deployment",
                              "channel"}


def test_coordinates_are_stored_in_few_chunks_and_read_whole(tmp_path, attrs):
    """Store creation writes coordinates through zarr at ~0.4 ms per inner chunk: chunks of one
    data shard made a month of 3 s clips cost ~1 min. Coordinates now take whole data shards of
    at least COORD_CHUNK_MIN_CLIPS clips; reading by shard chunks only the data variables."""
    import zarr

    from fieldkit.store.zarr_store import COORD_CHUNK_MIN_CLIPS

    layout = small_layout(n_clips=150_002, samples_per_clip=4, clips_per_chunk=16, clips_per_shard=32,
                          waveform=False)
    path = tmp_path / "big.zarr"
    create_store(path, layout, coords_for(layout.n_clips), attrs)
    group = zarr.open_group(str(path), mode="r", use_consolidated=False)
    for name in ("recording_id", "start_time", "site"):
        chunk = group[name].chunks[0]
        assert chunk >= COORD_CHUNK_MIN_CLIPS and chunk % layout.clips_per_shard == 0
        assert -(-layout.n_clips // chunk) == 3  # 150 002 clips: 3 inner chunks, not 4 688
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "chunks separate the stored chunks" warning
        ds = open_store(path)
    assert ds["mel"].chunks[0][:2] == (32, 32)
    assert ds["recording_id"].chunks is None  # not a dask array
    np.testing.assert_array_equal(ds["recording_id"].values, coords_for(layout.n_clips)["recording_id"])


def test_attributes_and_layout_round_trip(store, layout, attrs):
    ds = open_store(store)
    assert ds.attrs["parameters"] == attrs["parameters"]
    assert ds.attrs["versions"] == attrs["versions"]
    assert ds.attrs["schema_version"] == SCHEMA_VERSION == "2"
    assert read_layout(store) == layout


def test_bad_attributes_and_coordinates_are_rejected(tmp_path, layout, attrs):
    coords = coords_for(layout.n_clips)
    with pytest.raises(StoreError, match="JSON-serialisable"):
        create_store(tmp_path / "a.zarr", layout, coords, {"parameters": {"x": object()}})
    with pytest.raises(StoreError, match=r"\['schema_version'\] are set by fieldkit"):
        create_store(tmp_path / "b.zarr", layout, coords, {"schema_version": "0"})
    with pytest.raises(StoreError, match=r"missing \['channel'\]"):
        create_store(tmp_path / "c.zarr", layout, {k: v for k, v in coords.items()
                                                   if k != "channel"}, attrs)
    with pytest.raises(StoreError, match=r"'offset_s' has shape \(3,\); expected \(22,\)"):
        create_store(tmp_path / "d.zarr", layout, {**coords, "offset_s": np.zeros(3)}, attrs)


def test_an_existing_store_is_never_replaced_silently(store, layout, attrs):
    write_region(store, slice(0, 4), region_arrays(layout, 0, 4))
    with pytest.raises(StoreError, match="already exists"):
        create_store(store, layout, coords_for(layout.n_clips), attrs)
    assert region_is_complete(store, slice(0, 4))
    create_store(store, layout, coords_for(layout.n_clips), attrs, overwrite=True)
    assert completed_regions(store) == []


def test_a_missing_store_is_a_store_error(tmp_path, layout):
    with pytest.raises(StoreError, match="no fieldkit store"):
        write_region(tmp_path / "absent.zarr", slice(0, 4), region_arrays(layout, 0, 4))
    with pytest.raises(StoreError, match="no fieldkit store"):
        completed_regions(tmp_path / "absent.zarr")


def test_finalize_refuses_an_incomplete_store(store, layout):
    write_region(store, slice(0, 8), region_arrays(layout, 0, 8))
    with pytest.raises(StoreError, match=r"incomplete: clips \[8, 22\) were never written"):
        finalize_store(store)
    finalize_store(store, require_complete=False)


def test_finalize_consolidates_metadata_quietly(store, layout, attrs):
    for start, stop in SHARD_REGIONS:
        write_region(store, slice(start, stop), region_arrays(layout, start, stop))
    (store / "mel" / "c.0.0.0.1234abcd.partial").write_bytes(b"left by a killed writer")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        finalize_store(store)
    assert not list(store.rglob("*.partial"))
    ds = xr.open_zarr(store, consolidated=True)
    assert ds.attrs["parameters"] == attrs["parameters"]
    np.testing.assert_array_equal(ds["chroma"].values, expected(layout, "chroma"))
    assert remove_partial_files(store) == 0


def test_plan_padding_and_region_writes_end_to_end(tmp_path, attrs):
    counts = [5, 3, 9, 2]  # clips per recording
    plan = plan_regions(counts, 4, min_clips_per_task=4, max_clips_per_task=4)
    layout = small_layout(n_clips=plan.n_clips)
    ids = np.full(plan.n_clips, -1)
    for rec, clips in enumerate(plan.item_clips):
        ids[clips] = rec
    path = tmp_path / "planned.zarr"
    create_store(path, layout, coords_for(plan.n_clips, ids), attrs)
    for task in plan.tasks:
        real = [region_arrays(layout, plan.item_clips[i].start, plan.item_clips[i].stop)
                for i in task.items]
        used = sum(len(r["valid_samples"]) for r in real)
        parts = real + [padding_arrays(layout, task.clips.stop - task.clips.start - used)]
        write_region(path, task.clips, {k: np.concatenate([p[k] for p in parts])
                                        for k in parts[0]})
    ds = open_store(path).load()
    padding = ds["recording_id"].values == -1
    assert padding.sum() == plan.n_padding_clips > 0
    assert (ds["valid_samples"].values[padding] == 0).all()
    assert (ds["valid_samples"].values[~padding] == layout.samples_per_clip).all()
    assert np.isnat(ds["start_time"].values[padding]).all()
    finalize_store(path)
