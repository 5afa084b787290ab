"""The requests a store on a real S3 server (moto, its own process) costs: every request the
client sends is counted on the wire by a relay in front of the server
(:class:`fieldkit.testing.s3proxy.RequestCounter`), for both transports of the storage adapter
(obstore, and s3fs for options only botocore understands), so that a regression to zarr's probing
(a HEAD and a LIST before each PUT, a HEAD before each GET) fails here instead of only slowing a
benchmark down (docs/scaling.md)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from store_helpers import coords_for, region_arrays, small_layout

from fieldkit.io.storage import open_root
from fieldkit.store.objects import ObjectShardSink
from fieldkit.store.regions import completed_regions, open_sink
from fieldkit.store.zarr_store import create_store, open_store
from fieldkit.testing.s3proxy import RequestCounter
from fieldkit.testing.s3server import TRANSPORTS


@pytest.fixture(params=sorted(TRANSPORTS))
def counted(request, s3_server):
    """(storage options through a counting relay, the relay) for one transport."""
    with RequestCounter(s3_server.endpoint) as counter:
        yield {"endpoint_url": counter.endpoint, **TRANSPORTS[request.param]}, counter, request.param


def test_the_transport_is_the_one_asked_for(tmp_path, counted, s3_bucket) -> None:
    options, _, transport = counted
    root = open_root(f"{s3_bucket}/archive", base=tmp_path, options=options)
    assert (root._direct is not None) == (transport == "obstore")


def test_an_archived_file_of_known_size_is_read_in_one_request(tmp_path, counted, s3_bucket) -> None:
    options, counter, _ = counted
    root = open_root(f"{s3_bucket}/archive", base=tmp_path, options=options, block_bytes=8 << 20)
    data = os.urandom(3 * 2**20 + 7)
    root.put_bytes("a/x.wav", data)
    counter.clear()
    with root.open_read("a/x.wav", size=len(data)) as handle:
        assert handle.read() == data
    assert counter.operations() == Counter({"GetObject": 1})  # no HeadObject: the catalogue knew the size
    counter.clear()
    with root.open_read("a/x.wav") as handle:  # unknown size: asked first
        assert handle.read() == data
    assert counter.operations() == Counter({"HeadObject": 1, "GetObject": 1})


def test_a_shard_costs_one_put_per_variable_on_s3(tmp_path: Path, counted, s3_bucket) -> None:
    options, counter, _ = counted
    layout = small_layout(12, clips_per_chunk=2, clips_per_shard=4)
    stores = open_root(f"{s3_bucket}/stores", base=tmp_path, options=options)
    store = stores.zarr_store("s.zarr")
    create_store(store, layout, coords_for(layout.n_clips), {})
    sink = open_sink(store)
    assert isinstance(sink, ObjectShardSink)
    counter.clear()
    n_variables = len(list(layout.variables()))

    assert not sink.is_complete(slice(0, 4))
    assert counter.operations() == Counter({"GetObject": 1})  # the done chunk (absent): no HEAD, no LIST
    counter.clear()
    sink.write(slice(0, 4), region_arrays(layout, 0, 4))
    # every variable's shard and the done chunk; no delete (the sink read the shard as not done)
    assert counter.operations() == Counter({"PutObject": n_variables + 1})
    counter.clear()
    sink.write(slice(0, 4), region_arrays(layout, 0, 4))  # a rewrite of a done shard clears it first
    assert counter.operations() == Counter({"PutObject": n_variables + 1, "DeleteObjects": 1})
    counter.clear()
    again = open_sink(store)  # a second task of this process: the group document only
    assert isinstance(again, ObjectShardSink) and counter.operations() == Counter({"GetObject": 1})
    again.write(slice(4, 8), region_arrays(layout, 4, 8))

    assert completed_regions(store) == [slice(0, 8)]
    ds = open_store(stores.zarr_location("s.zarr")).load()
    np.testing.assert_array_equal(ds["mel"].values[:8], region_arrays(layout, 0, 8)["mel"])
