"""The storage adapter (fieldkit.io.storage) on a local folder and on a real S3 server process."""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fieldkit.config.settings import Settings, public_settings, redact_url
from fieldkit.errors import EXIT_CONFIG, EXIT_TEMPFAIL, ConfigError, ObjectExistsError, StorageUnavailableError
from fieldkit.io.storage import open_root


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        return open_root("archive", base=tmp_path)
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return open_root(f"{bucket}/archive", base=tmp_path, options=server.storage_options, block_bytes=256 * 1024)


def test_put_new_hashes_while_streaming_and_rereads_the_same(root) -> None:
    blocks = [bytes([i]) * 700_000 for i in range(9)]  # > 5 MB: a multipart upload on S3
    digest, size = root.put_new("card/A.WAV", blocks)
    expected = hashlib.sha256(b"".join(blocks)).hexdigest()
    assert (digest, size) == (expected, 6_300_000)
    assert root.sha256("card/A.WAV") == (expected, 6_300_000)
    assert root.exists("card/A.WAV") and root.size("card/A.WAV") == 6_300_000
    assert root.list("card") == ["card/A.WAV"]


@pytest.mark.parametrize("first", [[b"small"], [], [b"x" * (6 * 2**20)]], ids=["small", "empty", "multipart"])
def test_create_only_never_overwrites(root, first) -> None:
    root.put_new("n.bin", first)
    before = root.sha256("n.bin")
    with pytest.raises(ObjectExistsError) as caught:
        root.put_new("n.bin", [b"other content"])
    assert "never overwritten" in str(caught.value)
    assert root.sha256("n.bin") == before


def test_soundfile_reads_ranges_of_a_stored_wav(root) -> None:
    rate = 48_000
    samples = (np.sin(np.arange(rate * 20) / 7.0) * 20_000).astype(np.int16)
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    root.put_bytes("rec.wav", buffer.getvalue())
    with root.open_read("rec.wav") as handle, sf.SoundFile(handle) as wav:
        wav.seek(rate * 15)
        block = wav.read(1000, dtype="int16")
    np.testing.assert_array_equal(block, samples[rate * 15:rate * 15 + 1000])


def test_zarr_store_round_trip(root) -> None:
    import zarr

    group = zarr.open_group(root.zarr_store("stores/run.zarr"), mode="w")
    group.create_array("x", shape=(10,), chunks=(5,), dtype="f4")[:] = np.arange(10)
    again = zarr.open_group(root.zarr_store("stores/run.zarr", read_only=True), mode="r")
    np.testing.assert_array_equal(again["x"][:], np.arange(10, dtype="f4"))


def test_missing_bucket_is_a_configuration_error(s3_server, tmp_path: Path) -> None:
    root = open_root("s3://no-such-bucket-fk/archive", base=tmp_path, options=s3_server.storage_options)
    with pytest.raises(ConfigError) as caught:
        root.check_reachable()
    assert caught.value.exit_code == EXIT_CONFIG
    assert "s3://no-such-bucket-fk/archive" in str(caught.value) and "does not exist" in str(caught.value)


def test_unreachable_endpoint_is_temporary_and_names_the_url(tmp_path: Path) -> None:
    root = open_root("s3://bucket/archive", base=tmp_path, options={"endpoint_url": "http://127.0.0.1:9"})
    with pytest.raises(StorageUnavailableError) as caught:
        root.check_reachable()
    assert caught.value.exit_code == EXIT_TEMPFAIL
    assert "s3://bucket/archive" in str(caught.value) and "endpoint_url" in str(caught.value)


def test_a_missing_credential_variable_is_a_configuration_error(s3_server, s3_bucket, tmp_path: Path, monkeypatch) -> None:
    # a storage option naming an environment variable that this machine (or a worker) lacks
    root = open_root(f"{s3_bucket}/a", base=tmp_path,
                     options={**s3_server.storage_options, "key": "${FK_NO_SUCH_VAR}", "secret": "${FK_NO_SUCH_VAR}"})
    monkeypatch.delenv("FK_NO_SUCH_VAR", raising=False)
    with pytest.raises(ConfigError) as caught:
        root.exists("x")
    assert "FK_NO_SUCH_VAR" in str(caught.value) and caught.value.exit_code == EXIT_CONFIG


def test_env_references_resolve_on_use_and_never_travel(s3_server, s3_bucket, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FK_TEST_KEY", "fieldkit-test")
    monkeypatch.setenv("FK_TEST_SECRET", "s3cr3t-value")
    root = open_root(f"{s3_bucket}/a", base=tmp_path,
                     options={**s3_server.storage_options, "key": "${FK_TEST_KEY}", "secret": "${FK_TEST_SECRET}"})
    root.put_bytes("x", b"1")
    assert root.exists("x")
    assert b"s3cr3t-value" not in pickle.dumps(root)  # what a Dask task would carry
    assert "s3cr3t-value" not in repr(root)


def test_credentials_in_a_root_url_are_refused_and_redacted(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        open_root("s3://AKIA:topsecret@bucket/archive", base=tmp_path)
    assert "topsecret" not in str(caught.value)


def test_config_show_masks_secrets_in_storage_options_and_urls() -> None:
    settings = Settings(
        catalogue_url="postgresql+psycopg://team:pw123@db.example/fieldkit",
        storage={"options": {"endpoint_url": "https://s3.example", "secret": "literal-secret",
                             "key": "${AWS_ACCESS_KEY_ID}", "client_kwargs": {"aws_session_token": "tok"}}},
    )
    shown = str(public_settings(settings))
    for secret in ("pw123", "literal-secret", "'tok'"):
        assert secret not in shown
    assert "${AWS_ACCESS_KEY_ID}" in shown and "https://s3.example" in shown
    assert redact_url("https://h/o?X-Amz-Signature=abc&part=1") == "https://h/o?X-Amz-Signature=***&part=1"


def test_local_relative_and_file_urls(tmp_path: Path) -> None:
    assert open_root("archive", base=tmp_path).local_path == tmp_path / "archive"
    assert open_root(f"file://{tmp_path}/a", base=Path("/elsewhere")).local_path == tmp_path / "a"
    assert not open_root("s3://b/p", base=tmp_path).is_local
    assert open_root("s3://b/p/", base=tmp_path).uri("x/y.wav") == "s3://b/p/x/y.wav"
