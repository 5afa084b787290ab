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


def test_audio_original_is_read_from_the_s3_archive_as_from_disk(local_ws, s3_ws, s3_server, tmp_path) -> None:
    s3_root, bucket = s3_ws
    with open_workspace(local_ws) as ws:
        local = export_catalogued_dataset(ws, "demo", fmt="numpy", out=tmp_path / "local", audio="original")
    with open_workspace(s3_root) as ws:
        remote = export_catalogued_dataset(ws, "demo", fmt="numpy", out=tmp_path / "from-s3", audio="original")
    flac = sorted(p.relative_to(local.out_dir).as_posix() for p in Path(local.out_dir).rglob("*.flac"))
    assert flac and flac == sorted(p.relative_to(remote.out_dir).as_posix()
                                   for p in Path(remote.out_dir).rglob("*.flac"))
    for name in flac:  # the archive's excerpts, read by ranges from the bucket: the same FLAC bytes
        assert (Path(remote.out_dir) / name).read_bytes() == (Path(local.out_dir) / name).read_bytes(), name


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


def test_the_s3_zarr_export_opens_with_xarray_from_the_bucket(local_ws, s3_ws, s3_server) -> None:
    import xarray as xr

    s3_root, bucket = s3_ws
    with open_workspace(s3_root) as ws:
        remote = export_catalogued_dataset(ws, "demo", fmt="zarr")
    local = local_ws / "exports" / "demo-1-zarr"  # the demo's own export of the same dataset version
    for split in remote.clips_per_split:
        with xr.open_zarr(f"{remote.out_dir}/data/{split}.zarr",
                          storage_options={"endpoint_url": s3_server.endpoint}) as ds, \
                xr.open_zarr(local / "data" / f"{split}.zarr") as expected:
            xr.testing.assert_identical(ds.load(), expected.load())


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
    from fieldkit.catalogue import browse

    with open_workspace(s3_root) as ws, ws.catalogue.read() as s:  # the catalogue names the export by its URL
        assert f"s3://{bucket}/exports/demo-1-numpy" in [e.path for e in browse.list_exports(s) if e.format == "numpy"]


# -- every other service on URL roots ------------------------------------------------------------

def _both(local_ws: Path, s3_root: Path, service) -> tuple[object, object]:
    """``service(ws)`` on the local workspace and on its S3 copy."""
    with open_workspace(local_ws) as ws:
        local = service(ws)
    with open_workspace(s3_root) as ws:
        remote = service(ws)
    return local, remote


def test_annotations_import_and_export_on_s3_roots(local_ws, s3_ws, tmp_path) -> None:
    from fieldkit.cli.demo import _PACKAGE_DATA
    from fieldkit.curate.annotation_out import export_annotations
    from fieldkit.curate.annotations import import_annotations

    files = sorted((_PACKAGE_DATA / "sample_annotations").iterdir())
    local, remote = _both(local_ws, s3_ws[0], lambda ws: import_annotations(ws, files).to_dict())
    assert local == remote and local["imported"] >= 0
    out = {}
    for name, root in (("local", local_ws), ("s3", s3_ws[0])):
        with open_workspace(root) as ws:
            export_annotations(ws, "raven", tmp_path / name)
        out[name] = {p.name: p.read_bytes() for p in (tmp_path / name).iterdir()}
    assert out["local"] == out["s3"] and out["local"]


def test_dataset_build_and_lineage_read_the_store_on_s3(local_ws, s3_ws) -> None:
    from fieldkit.curate.datasets import DatasetRequest, create_dataset
    from fieldkit.curate.lineage import clips_lineage

    request = DatasetRequest("again", 1, background="background", split_by="recording", ratios=(0.5, 0.25, 0.25),
                             single_label=True)
    local, remote = _both(local_ws, s3_ws[0], lambda ws: create_dataset(ws, request))
    assert {k: v for k, v in local.items() if k != "id"} == {k: v for k, v in remote.items() if k != "id"}
    assert remote["clips"] > 0
    local, remote = _both(local_ws, s3_ws[0], lambda ws: clips_lineage(ws, 1, [0, 1, 2]))
    assert local == remote and remote[0]["processing"]["store"] == "stores/run-0001-demo.zarr"


def test_a_preview_reads_its_excerpt_from_the_s3_archive_by_ranges(local_ws, s3_ws, s3_server) -> None:
    from fieldkit.catalogue import queries
    from fieldkit.listen.preview import preview_recording

    s3_root, bucket = s3_ws
    with open_workspace(local_ws) as ws, ws.catalogue.read() as s:
        rec = next(r for r in queries.list_recordings(s) if r.status == "ok")
    local, remote = _both(local_ws, s3_root, lambda ws: preview_recording(ws, rec.id, start_s=1.0, duration_s=3.0))
    assert remote["wav"] == f"s3://{bucket}/exports/previews/rec{rec.id}-excerpt.wav"
    client = s3_server.client()
    wav = client.get_object(Bucket=bucket, Key=f"exports/previews/rec{rec.id}-excerpt.wav")["Body"].read()
    assert wav == Path(local["wav"]).read_bytes()  # the same samples, the same file
    png = client.get_object(Bucket=bucket, Key=f"exports/previews/rec{rec.id}-excerpt.png")["Body"].read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert {k: v for k, v in local.items() if k not in ("wav", "png")} == \
        {k: v for k, v in remote.items() if k not in ("wav", "png")}
    again = _both(local_ws, s3_root, lambda ws: preview_recording(ws, rec.id, start_s=1.0, duration_s=3.0))[1]
    assert again["wav"] == remote["wav"]  # a preview is made again in place, as on a local disk


def test_sonify_report_and_pictures_on_s3_roots(local_ws, s3_ws, s3_server) -> None:
    from fieldkit.cli.demo import DEMO_DEPLOYMENT
    from fieldkit.listen.night import ClockMap, sonify_deployment
    from fieldkit.listen.report import build_report
    from fieldkit.listen.sonify import sonify_run

    s3_root, bucket = s3_ws
    client = s3_server.client()
    local, remote = _both(local_ws, s3_root, lambda ws: sonify_run(ws, 1))
    assert remote["wav"] == f"s3://{bucket}/exports/sonify/run1.wav"
    assert client.get_object(Bucket=bucket, Key="exports/sonify/run1.wav")["Body"].read() == \
        Path(local["wav"]).read_bytes()
    assert remote["notes"] == local["notes"]
    local, remote = _both(local_ws, s3_root, lambda ws: sonify_deployment(ws, DEMO_DEPLOYMENT,
                                                                         clock=ClockMap(max_gap_h=2.0)))
    key = remote["wav"].split(f"s3://{bucket}/", 1)[1]
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == Path(local["wav"]).read_bytes()
    local, remote = _both(local_ws, s3_root, lambda ws: build_report(ws))
    assert remote["html"] == f"s3://{bucket}/exports/report/index.html"
    counts = ("recordings", "deployments", "problems", "clipped", "runs", "datasets", "previews")
    assert {k: local[k] for k in counts} == {k: remote[k] for k in counts} and remote["previews"] > 0
    html = client.get_object(Bucket=bucket, Key="exports/report/index.html")["Body"].read()
    assert len(html) == remote["bytes"] and b"data:audio/wav;base64," in html


def test_a_missing_archive_object_is_named_by_its_url(local_ws, s3_ws, tmp_path) -> None:
    from fieldkit.catalogue import queries

    s3_root, bucket = s3_ws
    broken = tmp_path / "broken"
    import shutil
    shutil.copytree(s3_root, broken)
    toml = broken / "fieldkit.toml"
    toml.write_text(toml.read_text().replace(f"s3://{bucket}/archive", f"s3://{bucket}/gone"))
    with open_workspace(broken) as ws, ws.catalogue.read() as s:
        rec = next(r for r in queries.list_recordings(s) if r.status == "ok")
    result = run("-w", str(broken), "preview", str(rec.id), "--json")
    assert result.exit_code == 66, result.output
    error = json.loads(result.stdout)
    assert f"s3://{bucket}/gone/{rec.archive_path}" in error["error"] and error["path"].startswith("s3://")
    assert "Traceback" not in result.output


def test_serve_plays_and_draws_recordings_from_the_s3_archive(local_ws, s3_ws, tmp_path) -> None:
    import urllib.request

    from fieldkit.catalogue import queries
    from fieldkit.testing.serving import running_server

    s3_root, _ = s3_ws
    with open_workspace(s3_root) as ws, ws.catalogue.read() as s:
        rec = next(r for r in queries.list_recordings(s) if r.status == "ok")
    got = {}
    for name, root in (("local", local_ws), ("s3", s3_root)):
        with running_server(root, log_dir=tmp_path) as server:
            for route in (f"audio/{rec.id}?start=1&duration=3", f"spectrogram/{rec.id}?start=1&duration=3",
                          "datasets"):
                with urllib.request.urlopen(server.base + route, timeout=60) as response:
                    got[name, route.split("/")[0]] = (response.status, response.read())
    assert got["s3", "audio"] == got["local", "audio"] and got["s3", "audio"][1][:4] == b"RIFF"
    assert got["s3", "spectrogram"][0] == 200 and got["s3", "spectrogram"][1][:4] == b"\x89PNG"
    assert got["s3", "spectrogram"][1] == got["local", "spectrogram"][1]
    assert got["s3", "datasets"][0] == 200 and b"demo" in got["s3", "datasets"][1]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_put_tree_uploads_every_file_create_only_with_its_hash(where, tmp_path, request) -> None:
    from fieldkit.errors import ObjectExistsError
    from fieldkit.io.storage import open_root

    folder = tmp_path / "made"
    files = {"manifest.json": b"{}", "a.bin": os.urandom(3000), "deep/er/b.flac": b"", "z/c.txt": b"c" * 10}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    if where == "local":
        root = open_root("exports", base=tmp_path)
    else:
        server = request.getfixturevalue("s3_server")
        root = open_root(f"{request.getfixturevalue('s3_bucket')}/exports", base=tmp_path,
                         options=server.storage_options)
    sent = root.put_tree("x-1-zarr", folder)
    assert sent == {name: (hashlib.sha256(data).hexdigest(), len(data)) for name, data in files.items()}
    assert root.list("x-1-zarr", recursive=True) == sorted(f"x-1-zarr/{n}" for n in files)
    assert {n: root.read_bytes(f"x-1-zarr/{n}") for n in files} == files
    with pytest.raises(ObjectExistsError):
        root.put_tree("x-1-zarr", folder)
    assert root.read_bytes("x-1-zarr/a.bin") == files["a.bin"]


def test_an_unreachable_endpoint_or_a_missing_bucket_is_named_with_its_exit_code(s3_ws, tmp_path) -> None:
    import shutil

    from fieldkit.testing.serving import free_port

    s3_root, bucket = s3_ws
    dead, nobucket = tmp_path / "dead", tmp_path / "nobucket"
    for target in (dead, nobucket):
        shutil.copytree(s3_root, target)
    toml = (dead / "fieldkit.toml").read_text()
    endpoint = toml.split('endpoint_url = "', 1)[1].split('"', 1)[0]
    (dead / "fieldkit.toml").write_text(toml.replace(endpoint, f"http://127.0.0.1:{free_port()}"))
    for args in (("lineage", "1:0"), ("preview", "1")):
        result = run("-w", str(dead), *args, "--json")
        error = json.loads(result.stdout)
        assert result.exit_code == 75 == error["code"], result.output
        assert error["path"].startswith(f"s3://{bucket}/") and "cannot reach" in error["error"]
    (nobucket / "fieldkit.toml").write_text(toml.replace(f"s3://{bucket}/exports", "s3://no-such-bucket/exports"))
    result = run("-w", str(nobucket), "export", "demo", "--format", "numpy", "--json")
    error = json.loads(result.stdout)
    assert result.exit_code == 78 == error["code"] and "no-such-bucket" in error["error"], result.output
    assert TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in result.output


def test_the_s3_workspace_never_made_a_local_archive_stores_or_exports_folder(s3_ws) -> None:
    """Run last in this module: every service above read and wrote its roots in the bucket only."""
    s3_root, _ = s3_ws
    assert sorted(p.name for p in s3_root.iterdir() if p.name in ("archive", "stores", "exports")) == []
