"""Which S3 transport a root's options choose (fieldkit.io.s3direct), and the ranged reader
obstore's reads go through, on the real S3 test server."""

from __future__ import annotations

import os
import random
from datetime import timedelta

import pytest

from fieldkit.io.s3direct import RangeReader, direct_config
from fieldkit.io.storage import open_root

KEYS = {"AWS_ACCESS_KEY_ID": "AKIA-TEST", "AWS_SECRET_ACCESS_KEY": "s3cr3t"}


@pytest.fixture
def env(monkeypatch):
    """A clean AWS environment holding static keys and a region."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in {**KEYS, "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_plain_options_and_static_keys_go_through_obstore(env) -> None:
    kwargs = direct_config({"endpoint_url": "http://127.0.0.1:9000",
                            "config_kwargs": {"connect_timeout": 2, "read_timeout": 5,
                                              "retries": {"max_attempts": 4, "mode": "standard"}}})
    assert kwargs is not None
    assert kwargs["config"] == {"endpoint": "http://127.0.0.1:9000", "region": "eu-west-1",
                                "access_key_id": "AKIA-TEST", "secret_access_key": "s3cr3t"}
    assert kwargs["client_options"]["allow_http"] is True
    assert kwargs["client_options"]["connect_timeout"] == timedelta(seconds=2)
    assert kwargs["client_options"]["read_timeout"] == timedelta(seconds=5)
    assert kwargs["retry_config"]["max_retries"] == 3
    # keys in the options win over the environment's, with their session token
    kwargs = direct_config({"key": "K", "secret": "S", "token": "T", "region_name": "us-west-2"})
    assert kwargs is not None and kwargs["config"] == {"region": "us-west-2", "access_key_id": "K",
                                                       "secret_access_key": "S", "token": "T"}
    assert "allow_http" not in kwargs["client_options"]  # https unless the endpoint says http
    assert direct_config({"anon": True})["config"] == {"region": "eu-west-1", "skip_signature": True}


@pytest.mark.parametrize(("options", "env_change"), [
    ({"profile": "lab"}, {}),                                         # a profile: botocore's files
    ({}, {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}),   # no keys: roles, web identity
    ({}, {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_PROFILE": "lab"}),
    ({"key": "K"}, {}),                                               # half a key pair: botocore's message
    ({"config_kwargs": {"user_agent_extra": "x"}}, {}),               # an option only botocore knows
    ({"client_kwargs": {"verify": False}}, {}),
    ({"requester_pays": True}, {}),
    ({"config_kwargs": {"s3": {"addressing_style": "virtual"}}}, {}),
    ({}, {"AWS_DEFAULT_REGION": None}),                               # an AWS bucket whose region botocore finds
    ({}, {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000"}),          # botocore's endpoint variable
], ids=["profile", "no-keys", "AWS_PROFILE", "half-key", "botocore-config", "client-kwargs", "requester-pays",
        "virtual-hosted", "no-region", "endpoint-variable"])
def test_anything_beyond_goes_through_s3fs(env, options, env_change) -> None:
    for name, value in env_change.items():
        if value is None:
            env.delenv(name, raising=False)
        else:
            env.setenv(name, value)
    assert direct_config(options) is None


@pytest.fixture
def stored(tmp_path, s3_server, s3_bucket):
    """(obstore store, key, the object's bytes) of a 1 MB object on the test server."""
    root = open_root(f"{s3_bucket}/r", base=tmp_path, options=s3_server.storage_options)
    data = random.Random(7).randbytes(1_000_003)
    root.put_bytes("obj.bin", data)
    direct = root._direct
    return direct.store, direct.key("obj.bin"), data


def test_a_range_reader_reads_what_a_file_would_through_seeks_and_block_edges(stored) -> None:
    store, key, data = stored
    rng = random.Random(11)
    with RangeReader(store, key, len(data), block=65_536) as reader:
        assert reader.read(10) == data[:10] and reader.tell() == 10
        for _ in range(200):
            where = rng.randrange(0, len(data) + 10)
            n = rng.choice([0, 1, 7, 4096, 65_535, 65_536, 70_000, 300_000])
            reader.seek(where)
            assert reader.read(n) == data[where:where + n], (where, n)
            assert reader.tell() == (min(len(data), where + n) if where < len(data) else where)
        reader.seek(-5, 2)
        assert reader.read() == data[-5:] and reader.read(3) == b""
        reader.seek(100)
        buffer = bytearray(50)
        assert reader.readinto(buffer) == 50 and bytes(buffer) == data[100:150]
    with pytest.raises(ValueError):
        reader.read(1)  # closed


def test_a_range_reader_never_reads_short_silently(stored) -> None:
    store, key, data = stored
    with RangeReader(store, key, len(data) + 100, block=1 << 20) as reader, \
            pytest.raises(OSError, match="answered"):
        reader.read()  # the catalogue said more bytes than the object holds: an error, never a short read
