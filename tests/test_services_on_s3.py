"""Every service beyond ingest and processing on a workspace whose archive, stores and exports are
on a real S3 server (moto, its own process): the same outputs as the same workspace on local disk.

The demo builds the local workspace once; :mod:`tests.s3roots` copies its archive and stores into
a bucket and points a copy of the workspace at it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from fieldkit.cli.demo import run_demo
from fieldkit.curate.handoff import export_catalogued_dataset
from fieldkit.testing.s3server import TEST_CREDENTIALS
from fieldkit.workspace import open_workspace
from tests.s3roots import object_bytes, s3_copy_of
from tests.test_cli_foundation import run

#: Files whose content holds the moment of the export (``created_utc``), or a hash of such a file.
TIMED = ("export.json", "croissant.json", "manifest.json")


@pytest.fixture(scope="module")
def local_ws(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("s3services")
    run_demo(base / "local", progress=False)
    return base / "local"


@pytest.fixture(scope="module")
def s3_ws(local_ws, s3_server, tmp_path_factory) -> tuple[Path, str]:
    bucket = s3_server.make_bucket()
    return s3_copy_of(local_ws, tmp_path_factory.mktemp("s3copy") / "ws", s3_server, bucket), bucket


def _untimed(name: str, data: bytes) -> object:
    """A file's content with the export's moment left out (for the files of :data:`TIMED`)."""
    if name not in TIMED:
        return data
    doc = json.loads(data)
    if name == "export.json":
        doc.pop("created_utc")
    if name == "croissant.json":
        doc["distribution"] = [d for d in doc["distribution"] if d.get("contentUrl") != "export.json"]
    if name == "manifest.json":
        doc["files"].pop("export.json")
        doc["files"].pop("croissant.json")
    return doc


@pytest.mark.parametrize("fmt", ["parquet", "webdataset", "lhotse"])
def test_an_export_to_an_s3_exports_root_equals_the_local_export(local_ws, s3_ws, s3_server, tmp_path, fmt) -> None:
    s3_root, bucket = s3_ws
    with open_workspace(local_ws) as ws:
        local = export_catalogued_dataset(ws, "demo", fmt=fmt, overwrite=True)  # beside the store, as on S3
    started = time.perf_counter()
    with open_workspace(s3_root) as ws:
        remote = export_catalogued_dataset(ws, "demo", fmt=fmt)
    elapsed = time.perf_counter() - started
    assert remote.out_dir == f"s3://{bucket}/exports/demo-1-{fmt}"
    assert remote.clips_per_split == local.clips_per_split and remote.n_clips > 0
    objects = object_bytes(s3_server.client(), bucket, f"exports/demo-1-{fmt}")
    local_files = {p.relative_to(local.out_dir).as_posix(): p.read_bytes()
                   for p in Path(local.out_dir).rglob("*") if p.is_file()}
    assert sorted(objects) == sorted(local_files)
    for name, data in local_files.items():  # byte for byte, but for the moment of the export
        assert _untimed(name, objects[name]) == _untimed(name, data), name
    manifest = json.loads(objects["manifest.json"])
    for name, entry in manifest["files"].items():  # the manifest lists every object with its sha256
        assert hashlib.sha256(objects[name]).hexdigest() == entry["sha256"] and len(objects[name]) == entry["size"]
    assert set(manifest["files"]) == set(objects) - {"manifest.json"}
    lineage = json.loads(objects["lineage.json"])
    assert lineage["store"] == json.loads(local_files["lineage.json"])["store"] == "../../stores/run-0001-demo.zarr"
    secret = TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"].encode()
    assert not any(secret in data for data in objects.values())
    print(f"\n{fmt}: {len(objects)} objects, {sum(map(len, objects.values()))} bytes exported to S3 in {elapsed:.2f} s")


def test_the_s3_parquet_export_reads_straight_from_s3_as_the_local_one(local_ws, s3_ws, s3_server, tmp_path) -> None:
    import s3fs

    s3_root, bucket = s3_ws
    with open_workspace(local_ws) as ws:
        local = export_catalogued_dataset(ws, "demo", fmt="parquet", out=tmp_path / "local", version=1)
    fs = s3fs.S3FileSystem(endpoint_url=s3_server.endpoint)
    prefix = f"{bucket}/exports/demo-1-parquet"
    if not fs.exists(prefix):
        with open_workspace(s3_root) as ws:
            export_catalogued_dataset(ws, "demo", fmt="parquet")
    for path in sorted(Path(local.out_dir).rglob("*.parquet")):
        rel = path.relative_to(local.out_dir).as_posix()
        remote = pq.read_table(f"{prefix}/{rel}", filesystem=fs)
        assert remote.equals(pq.read_table(path)), rel
    index = pq.read_table(f"{prefix}/index.parquet", filesystem=fs).to_pandas()
    data = next(p for p in fs.find(f"{prefix}/data") if p.endswith(".parquet"))
    audio = pq.read_table(data, filesystem=fs, columns=["audio"]).to_pylist()[0]["audio"]
    samples, rate = sf.read(io.BytesIO(audio["bytes"]))
    assert rate > 0 and np.asarray(samples).size > 0 and len(index) > 0


def test_an_s3_export_is_never_replaced(s3_ws, tmp_path) -> None:
    s3_root, bucket = s3_ws
    result = run("-w", str(s3_root), "export", "demo", "--format", "numpy", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["out_dir"] == f"s3://{bucket}/exports/demo-1-numpy"
    again = run("-w", str(s3_root), "export", "demo", "--format", "numpy", "--json")
    assert again.exit_code == 73, again.output
    error = json.loads(again.stdout)
    assert error["code"] == 73 and f"s3://{bucket}/exports/demo-1-numpy" in error["error"]
    assert "never replaced" in error["error"]
    overwrite = run("-w", str(s3_root), "export", "demo", "--format", "numpy", "--overwrite", "--json")
    assert overwrite.exit_code == 73 and "never replaced" in json.loads(overwrite.stdout)["error"]
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in result.output + again.output
