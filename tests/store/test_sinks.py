"""The store contract, run against every sink (zarr-python's conformance-suite style: one test
class, parametrised over the implementations), and the one place that chooses a sink.

The sinks are the direct shard writer and zarr on a local store, and zarr on an in-memory
fsspec store (``memory://``, as for a remote URL). Failures mid-write are real: a chunk key
taken by a directory makes the write fail after the first variables were written.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest
import zarr
from store_helpers import coords_for, random_region, region_arrays, small_layout

from fieldkit.errors import StoreError
from fieldkit.store.objects import ObjectShardSink
from fieldkit.store.regions import (
    ZarrShardSink,
    completed_regions,
    open_sink,
    padding_arrays,
    read_layout,
    region_is_complete,
    write_region,
)
from fieldkit.store.shards import DirectShardSink, Unsupported
from fieldkit.store.sinks import ShardSink
from fieldkit.store.zarr_store import create_store, open_store

SINKS = {"direct": (DirectShardSink, "local"), "zarr": (ZarrShardSink, "local"),
         "zarr-memory": (ZarrShardSink, "memory"), "objects-memory": (ObjectShardSink, "memory")}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class TestShardSink:
    """What every sink promises: checked regions, the done marker last, resumable writes."""

    @pytest.fixture(params=sorted(SINKS))
    def sink(self, request, tmp_path, layout) -> ShardSink:
        cls, where = SINKS[request.param]
        path = str(tmp_path / "s.zarr") if where == "local" else f"memory://{uuid.uuid4().hex}.zarr"
        create_store(path, layout, coords_for(layout.n_clips), {})
        yield cls(path, read_layout(path))
        if where == "memory":
            fsspec.filesystem("memory").rm(path.removeprefix("memory://"), recursive=True)

    @pytest.fixture(params=[name for name, (_, where) in sorted(SINKS.items()) if where == "local"])
    def local_sink(self, request, tmp_path, layout) -> ShardSink:
        """The sinks of a local store, where a test can make a key fail with a directory."""
        path = tmp_path / "s.zarr"
        create_store(path, layout, coords_for(layout.n_clips), {})
        return SINKS[request.param][0](path, layout)

    def test_capabilities_say_which_sink_it_is(self, sink):
        name = {DirectShardSink: "direct", ZarrShardSink: "zarr", ObjectShardSink: "objects"}[type(sink)]
        assert sink.capabilities.name == name
        assert sink.capabilities.remote is (name != "direct")
        assert sink.capabilities.other_encodings is (name == "zarr")

    def test_a_written_region_reads_back_and_is_complete(self, sink, layout):
        assert not sink.is_complete(slice(0, layout.n_clips))
        sink.write(slice(4, 12), region_arrays(layout, 4, 12))
        assert sink.is_complete(slice(4, 12)) and sink.is_complete(slice(8, 12))
        assert not sink.is_complete(slice(0, 8)) and not sink.is_complete(slice(8, 16))
        ds = open_store(sink.path).load()
        for spec in layout.variables():
            np.testing.assert_array_equal(ds[spec.name].values[4:12], region_arrays(layout, 4, 12)[spec.name])
        assert np.isnan(ds["mel"].values[:4]).all()  # never written: the fill value

    def test_the_last_partial_shard_and_padding_clips(self, sink, layout):
        arrays = region_arrays(layout, 20, 22)
        arrays = {k: np.concatenate([v[:1], padding_arrays(layout, 1)[k]]) for k, v in arrays.items()}
        sink.write(slice(20, 22), arrays)
        assert sink.is_complete(slice(20, 22))
        ds = open_store(sink.path).load()
        assert ds["valid_samples"].values[21] == 0 and np.isnan(ds["mfcc"].values[21]).all()

    @pytest.mark.parametrize(("region", "message"), [
        (slice(2, 6), r"not aligned to its 4-clip shards.*nothing was written"),
        (slice(20, 21), "not aligned"), (slice(0, 30), r"outside \[0, 22\)"),
        (slice(4, 4), "empty"), (slice(0, 8, 2), "step 1"),
    ])
    def test_bad_regions_raise_before_anything_is_written(self, sink, layout, region, message):
        stop = min(region.stop, layout.n_clips)
        with pytest.raises(StoreError, match=message):
            sink.write(region, region_arrays(layout, region.start, max(stop, region.start + 1)))
        assert completed_regions(sink.path) == []
        assert np.isnan(open_store(sink.path)["mel"].values).all()

    def test_arrays_must_match_the_layout(self, sink, layout):
        arrays = region_arrays(layout, 0, 4)
        with pytest.raises(StoreError, match=r"missing \['rms'\]"):
            sink.write(slice(0, 4), {k: v for k, v in arrays.items() if k != "rms"})
        with pytest.raises(StoreError, match="valid_samples has dtype float64; expected int32"):
            sink.write(slice(0, 4), {**arrays, "valid_samples": np.zeros(4)})
        assert not sink.is_complete(slice(0, 4))

    def test_a_write_that_fails_halfway_leaves_its_region_incomplete(self, local_sink, layout):
        sink = local_sink
        sink.write(slice(4, 8), region_arrays(layout, 4, 8))
        last = list(layout.variables())[-1]
        for region in (slice(8, 12), slice(4, 8)):  # a new region, and a rewrite of a done one
            shard = region.start // layout.clips_per_shard
            blocker = Path(sink.path) / last.name / ".".join(["c", str(shard), *["0"] * (len(last.shape) - 1)])
            blocker.unlink(missing_ok=True)
            blocker.mkdir()
            (blocker / "taken").write_bytes(b"")  # a non-empty directory: no object can replace it
            with pytest.raises(OSError):
                sink.write(region, region_arrays(layout, region.start, region.stop))
            assert not sink.is_complete(region)
        assert completed_regions(sink.path) == []
        written_first = open_store(sink.path)["waveform"].values[8:12]  # the failure came later
        np.testing.assert_array_equal(written_first, region_arrays(layout, 8, 12)["waveform"])

    def test_resume_writes_only_what_is_incomplete(self, sink, layout):
        shards = [(a, min(a + 4, layout.n_clips)) for a in range(0, layout.n_clips, 4)]
        for a, b in shards[::2]:
            sink.write(slice(a, b), region_arrays(layout, a, b))
        todo = [(a, b) for a, b in shards if not sink.is_complete(slice(a, b))]
        assert todo == shards[1::2]
        for a, b in todo:
            sink.write(slice(a, b), region_arrays(layout, a, b))
        assert completed_regions(sink.path) == [slice(0, layout.n_clips)]
        ds = open_store(sink.path).load()
        np.testing.assert_array_equal(ds["chroma"].values, region_arrays(layout, 0, layout.n_clips)["chroma"])

    def test_a_rewrite_gives_the_same_values_and_stays_complete(self, sink, layout):
        rng = np.random.default_rng(3)
        first, second = (random_region(layout, 0, 4, rng) for _ in range(2))
        sink.write(slice(0, 4), first)
        sink.write(slice(0, 4), second)
        assert sink.is_complete(slice(0, 4))
        np.testing.assert_array_equal(open_store(sink.path)["mel"].values[:4], second["mel"])


@pytest.mark.parametrize(("n_clips", "chunk", "shard", "level", "waveform_dtype"), [
    (22, 2, 4, 1, "float32"),   # partial last shard of 2 clips
    (7, 1, 2, 3, "int16"),      # 1-clip chunks, odd clip count
    (33, 4, 8, 0, "float32"),   # level 0, last shard with a partial inner chunk
    (5, 4, 8, 1, "float32"),    # one shard, shorter than the shard size
])
def test_both_sinks_store_the_same_bytes(tmp_path, n_clips, chunk, shard, level, waveform_dtype):
    """The same regions through the direct writer, through zarr and through the object-store
    sink (on an in-memory fsspec store): every object byte for byte, padding clips included
    (chunks equal to the fill value are left out by all three)."""
    layout = small_layout(n_clips, clips_per_chunk=chunk, clips_per_shard=shard,
                          compression_level=level, waveform_dtype=waveform_dtype)
    paths = {cls: tmp_path / f"{cls.capabilities.name}.zarr" for cls in (DirectShardSink, ZarrShardSink)}
    for path in paths.values():
        create_store(path, layout, coords_for(n_clips), {})
    rng = np.random.default_rng(n_clips)
    regions = [(a, min(a + shard, n_clips)) for a in range(0, n_clips, shard)]
    batches = [random_region(layout, a, b, rng) for a, b in regions]
    for cls, path in paths.items():
        sink = cls(path, layout)
        for (a, b), arrays in zip(regions, batches, strict=True):
            sink.write(slice(a, b), arrays)
    ours, theirs = _files(paths[DirectShardSink]), _files(paths[ZarrShardSink])
    assert sorted(ours) == sorted(theirs)
    assert [name for name in ours if ours[name] != theirs[name]] == []
    url = f"memory://{uuid.uuid4().hex}.zarr"
    create_store(url, layout, coords_for(n_clips), {})
    try:
        sink = ObjectShardSink(url, layout)
        for (a, b), arrays in zip(regions, batches, strict=True):
            sink.write(slice(a, b), arrays)
        memory = fsspec.filesystem("memory")
        prefix = url.removeprefix("memory://")
        objects = {name: memory.cat_file(f"{prefix}/{name}") for name in ours}
        assert sorted(memory.find(prefix)) == sorted(f"/{prefix}/{name}" for name in ours)
        assert [name for name in ours if objects[name] != ours[name]] == []
    finally:
        fsspec.filesystem("memory").rm(url.removeprefix("memory://"), recursive=True)
    ds = open_store(paths[DirectShardSink])
    for (a, b), arrays in zip(regions, batches, strict=True):
        for name, values in arrays.items():
            np.testing.assert_array_equal(ds[name].values[a:b], values)
    assert region_is_complete(paths[DirectShardSink], slice(0, n_clips))


def test_a_local_store_gets_the_direct_sink_silently(tmp_path, layout, caplog):
    path = tmp_path / "s.zarr"
    create_store(path, layout, coords_for(layout.n_clips), {})
    with caplog.at_level(logging.INFO, logger="fieldkit.store"):
        assert isinstance(open_sink(path), DirectShardSink)
        assert isinstance(open_sink(f"file://{path}"), DirectShardSink)
    assert caplog.records == []


def test_a_url_gets_the_object_store_sink_silently(layout, caplog):
    path = f"memory://{uuid.uuid4().hex}.zarr"
    create_store(path, layout, coords_for(layout.n_clips), {})
    try:
        with caplog.at_level(logging.INFO, logger="fieldkit.store"):
            sink = open_sink(path)
        assert isinstance(sink, ObjectShardSink)
        assert caplog.records == []
        write_region(path, slice(0, 4), region_arrays(layout, 0, 4))
        assert region_is_complete(path, slice(0, 4)) and not region_is_complete(path, slice(4, 8))
    finally:
        fsspec.filesystem("memory").rm(path.removeprefix("memory://"), recursive=True)


def test_a_store_laid_out_otherwise_gets_zarr_with_the_same_result(tmp_path, layout, caplog):
    """A store whose done marker is compressed (as made before the direct writer) is written
    through zarr, and the log names the array and what the direct writer did not accept."""
    path = tmp_path / "old.zarr"
    create_store(path, layout, coords_for(layout.n_clips), {})
    group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    del group["progress/done"]
    group["progress"].create_array("done", shape=(layout.n_clips,), dtype="uint8",
                                   chunks=(layout.clips_per_shard,), fill_value=0)
    with pytest.raises(Unsupported, match="done marker"):
        DirectShardSink(path, layout)
    with caplog.at_level(logging.INFO, logger="fieldkit.store"):
        sink = open_sink(path)
    assert isinstance(sink, ZarrShardSink)
    assert f"store {path} is written through zarr" in caplog.text
    assert f"{path / 'progress' / 'done'}: done marker" in caplog.text
    arrays = random_region(layout, 4, 8, np.random.default_rng(2))
    sink.write(slice(4, 8), arrays)
    assert sink.is_complete(slice(4, 8)) and not sink.is_complete(slice(0, 4))
    np.testing.assert_array_equal(open_store(path)["mfcc"].values[4:8], arrays["mfcc"])


def test_the_object_sink_rereads_documents_of_a_store_made_again(layout):
    """A process keeps the array documents per store and group document: a store made again at
    the same URL with another layout is written with its own documents, not the first ones."""
    path = f"memory://{uuid.uuid4().hex}.zarr"
    memory = fsspec.filesystem("memory")
    try:
        create_store(path, layout, coords_for(layout.n_clips), {})
        write_region(path, slice(0, 4), region_arrays(layout, 0, 4))
        assert isinstance(open_sink(path), ObjectShardSink)
        memory.rm(path.removeprefix("memory://"), recursive=True)
        other = small_layout(layout.n_clips, clips_per_chunk=1, clips_per_shard=2)
        create_store(path, other, coords_for(other.n_clips), {})
        sink = open_sink(path)
        assert isinstance(sink, ObjectShardSink) and sink.arrays["mel"].shard[0] == 2
        arrays = region_arrays(other, 2, 4)
        sink.write(slice(2, 4), arrays)
        assert completed_regions(path) == [slice(2, 4)]
        np.testing.assert_array_equal(open_store(path)["mel"].values[2:4], arrays["mel"])
    finally:
        memory.rm(path.removeprefix("memory://"), recursive=True)
