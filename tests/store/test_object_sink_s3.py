"""The requests a store on a real S3 server (moto, its own process) costs: every S3 call the
client makes is counted by a botocore event hook on the filesystems fieldkit made, so that a
regression to zarr's probing (a HEAD and a LIST before each PUT, a HEAD before each GET) fails
here instead of only slowing a benchmark down (docs/scaling.md)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
from store_helpers import coords_for, region_arrays, small_layout

from fieldkit.io.storage import _filesystem, _freeze, open_root
from fieldkit.store.objects import ObjectShardSink
from fieldkit.store.regions import completed_regions, open_sink
from fieldkit.store.zarr_store import create_store, open_store


def _count_calls(fs, calls: Counter) -> None:
    """Count every S3 operation the client of ``fs`` (s3fs, sync or async) sends."""
    client = getattr(fs, "_s3", None)
    assert client is not None, "the filesystem made no client yet"
    client.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))


def test_an_archived_file_of_known_size_is_read_in_one_request(tmp_path, s3_server, s3_bucket) -> None:
    root = open_root(f"{s3_bucket}/archive", base=tmp_path, options=s3_server.storage_options,
                     block_bytes=8 << 20)
    data = os.urandom(3 * 2**20 + 7)
    root.put_bytes("a/x.wav", data)
    calls: Counter = Counter()
    _count_calls(root.fs, calls)
    with root.open_read("a/x.wav", size=len(data)) as handle:
        assert handle.read() == data
    assert calls == Counter({"GetObject": 1})  # no HeadObject: the catalogue knew the size
    calls.clear()
    with root.open_read("a/x.wav") as handle:  # unknown size: asked first
        assert handle.read() == data
    assert calls == Counter({"HeadObject": 1, "GetObject": 1})


def test_a_shard_costs_one_put_per_variable_on_s3(tmp_path: Path, s3_server, s3_bucket) -> None:
    layout = small_layout(12, clips_per_chunk=2, clips_per_shard=4)
    stores = open_root(f"{s3_bucket}/stores", base=tmp_path, options=s3_server.storage_options)
    store = stores.zarr_store("s.zarr")
    create_store(store, layout, coords_for(layout.n_clips), {})
    sink = open_sink(store)
    assert isinstance(sink, ObjectShardSink)
    calls: Counter = Counter()
    _count_calls(_filesystem("s3", _freeze(s3_server.storage_options), asynchronous=True), calls)
    n_variables = len(list(layout.variables()))

    assert not sink.is_complete(slice(0, 4))
    assert calls == Counter({"GetObject": 1})  # the done chunk (absent): no HEAD, no LIST
    calls.clear()
    sink.write(slice(0, 4), region_arrays(layout, 0, 4))
    # every variable's shard and the done chunk; no delete (the sink read the shard as not done)
    assert calls == Counter({"PutObject": n_variables + 1})
    calls.clear()
    sink.write(slice(0, 4), region_arrays(layout, 0, 4))  # a rewrite of a done shard clears it first
    assert calls == Counter({"PutObject": n_variables + 1, "DeleteObjects": 1})
    calls.clear()
    again = open_sink(store)  # a second task of this process: the group document only
    assert isinstance(again, ObjectShardSink) and calls == Counter({"GetObject": 1})
    again.write(slice(4, 8), region_arrays(layout, 4, 8))

    assert completed_regions(store) == [slice(0, 8)]
    ds = open_store(stores.zarr_location("s.zarr")).load()
    np.testing.assert_array_equal(ds["mel"].values[:8], region_arrays(layout, 0, 8)["mel"])
