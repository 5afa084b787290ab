"""Ingest and verify into an object-storage archive on a real S3 server process (moto standalone).

Every check reads what the server holds through its own client (boto3), never through fieldkit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.errors import EXIT_CONFIG, EXIT_OK, EXIT_PARTIAL, EXIT_TEMPFAIL, ConfigError
from fieldkit.io.storage import Root
from fieldkit.testing.cards import audiomoth_card, plain_wav, write_file
from fieldkit.testing.s3server import TRANSPORTS, start_s3_server
from fieldkit.workspace import init_workspace
from tests.ingest.conftest import catalogue

runner = CliRunner()
#: Fail fast when the server is away: one botocore attempt, one-second timeouts (s3fs's own
#: five tries of a timed-out request remain: about 7 s).
FAST = {"config_kwargs": {"connect_timeout": 1, "read_timeout": 1,
                                        "retries": {"max_attempts": 1, "mode": "standard"}}}


def run(ws: Path, *args: str):
    result = runner.invoke(app, ["-w", str(ws), *args, "--json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout), result


def s3_workspace(path: Path, server, bucket: str, **options) -> Path:
    with init_workspace(path, roots={"archive_root": f"{bucket}/archive"},
                        storage_options={**server.storage_options, **options}) as ws:
        return ws.root


def objects(server, bucket: str, prefix: str = "archive/") -> dict[str, bytes]:
    client = server.client()
    name = bucket.removeprefix("s3://")
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix)
            for o in page.get("Contents", [])]
    return {k[len(prefix):]: client.get_object(Bucket=name, Key=k)["Body"].read() for k in keys}


RECORDINGS = ("SELECT archive_path, sha256, size_bytes, status, reason, format, sample_rate_hz, frames_present, "
              "start_time_utc, peak_dbfs FROM recording ORDER BY archive_path")
FILES = "SELECT display_path, state, sha256 FROM source_file ORDER BY display_path, session_id"


def test_s3_ingest_is_the_local_ingest_with_every_object_read_back(card, s3_server, s3_bucket, tmp_path):
    ws = s3_workspace(tmp_path / "s3ws", s3_server, s3_bucket)
    with init_workspace(tmp_path / "localws") as local:
        local_code, _, _ = run(local.root, "ingest", str(card), "--site", "Wood", "--deployment", "N1")
    code, report, _ = run(ws, "ingest", str(card), "--site", "Wood", "--deployment", "N1")
    assert code == local_code == EXIT_PARTIAL  # the broken files of the card, as locally
    assert report["state"] == "complete" and report["safe_to_erase"] is True
    assert catalogue(ws, RECORDINGS) == catalogue(local.root, RECORDINGS) and len(catalogue(ws, RECORDINGS)) == 12
    assert catalogue(ws, FILES) == catalogue(local.root, FILES)
    stored = objects(s3_server, s3_bucket)
    for archive_path, sha256 in catalogue(ws, "SELECT archive_path, sha256 FROM recording"):
        assert hashlib.sha256(stored[archive_path]).hexdigest() == sha256
        assert stored[archive_path] == (local.root / "archive" / archive_path).read_bytes()
    manifests = sorted(k for k in stored if k.startswith("mhl/"))
    assert manifests[0].startswith("mhl/0001_archive_") and manifests[1] == "mhl/ascmhl_chain.xml"
    manifest = stored[manifests[0]].decode()
    for archive_path, sha256 in catalogue(ws, "SELECT archive_path, sha256 FROM recording"):
        assert "<path" in manifest and archive_path in manifest and sha256 in manifest
    assert report["manifest"] == f"{s3_bucket}/archive/{manifests[0]}"
    assert not (ws / "archive").exists() and not (ws / ".staging").exists()  # nothing archived locally
    assert set(stored) - {m for m in manifests} == {p for (p,) in catalogue(ws, "SELECT archive_path FROM recording")}

    code, verified, _ = run(ws, "verify")
    assert code == EXIT_OK and verified["passed"] and verified["ok"] == verified["checked"] == 12
    assert verified["manifest"].startswith(f"{s3_bucket}/archive/mhl/0002_archive_")
    assert verified["uncatalogued"] == [] and verified["chain_problems"] == []
    assert catalogue(ws, "SELECT kind, sequence, path FROM manifest ORDER BY sequence") == [
        ("ingest", 1, report["manifest"]), ("verify", 2, verified["manifest"])]


def test_verify_finds_a_replaced_object_and_an_uncatalogued_one(card, s3_server, s3_bucket, tmp_path):
    ws = s3_workspace(tmp_path / "ws", s3_server, s3_bucket)
    run(ws, "ingest", str(card), "--site", "Wood", "--deployment", "N1")
    client, bucket = s3_server.client(), s3_bucket.removeprefix("s3://")
    key = "archive/Wood/N1/20240501_220000.WAV"
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[-1] ^= 0xFF  # bit rot (or a hand-made overwrite): what verify exists to find
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    client.put_object(Bucket=bucket, Key="archive/Wood/N1/stray.wav", Body=b"not catalogued")
    code, report, _ = run(ws, "verify")
    assert code != EXIT_OK and not report["passed"]
    assert [m["archive_path"] for m in report["mismatched"]] == ["Wood/N1/20240501_220000.WAV"]
    assert report["mismatched"][0]["found"] == hashlib.sha256(bytes(body)).hexdigest()
    assert report["uncatalogued"] == ["Wood/N1/stray.wav"]
    generation = objects(s3_server, s3_bucket, "archive/mhl/")
    failed = [k for k in generation if k.startswith("0002_")]
    assert failed and 'action="failed"' in generation[failed[0]].decode()


def test_the_same_content_on_a_second_card_is_stored_once_with_both_origins(card, s3_server, s3_bucket, tmp_path):
    ws = s3_workspace(tmp_path / "ws", s3_server, s3_bucket)
    run(ws, "ingest", str(card), "--site", "Wood", "--deployment", "N1")
    second = tmp_path / "card2"
    second.mkdir()
    shutil.copy(card / "20240501_220000.WAV", second / "COPY.WAV")
    write_file(second / "new.wav", plain_wav(freq_hz=523.0))
    before = objects(s3_server, s3_bucket)
    code, report, _ = run(ws, "ingest", str(second), "--site", "Wood", "--deployment", "N2")
    assert code == EXIT_OK
    states = {f["path"]: (f["state"], f["archive_path"]) for f in report["files"]}
    assert states == {"COPY.WAV": ("duplicate", "Wood/N1/20240501_220000.WAV"), "new.wav": ("verified", "Wood/N2/new.wav")}
    after = objects(s3_server, s3_bucket)
    # the new file, the session's manifest generation and its ledger record (for 'catalog rebuild')
    assert set(after) - set(before) == {"Wood/N2/new.wav", *(k for k in after if k.startswith("mhl/0002_")),
                                        *(k for k in set(after) - set(before) if k.startswith("mhl/ledger/session-"))}
    assert sum(k.startswith("mhl/ledger/session-") for k in set(after) - set(before)) == 1
    origins = catalogue(ws, "SELECT s.display_path FROM source_file s JOIN recording r ON s.recording_id = r.id "
                            "WHERE r.archive_path = 'Wood/N1/20240501_220000.WAV' ORDER BY s.display_path")
    assert origins == [("20240501_220000.WAV",), ("COPY.WAV",)]


def test_a_taken_name_is_never_overwritten_and_an_identical_object_is_adopted(tmp_path, s3_server, s3_bucket):
    card = tmp_path / "card"
    audiomoth_card(card, start=dt.datetime(2024, 5, 1, 22, 0), count=2)
    ws = s3_workspace(tmp_path / "ws", s3_server, s3_bucket)
    client, bucket = s3_server.client(), s3_bucket.removeprefix("s3://")
    other = b"RIFF another recorder's file with the same name"
    client.put_object(Bucket=bucket, Key="archive/Wood/N1/20240501_220000.WAV", Body=other)
    # the object a killed run uploaded but never catalogued: the card file's very bytes
    orphan = (card / "20240501_220500.WAV").read_bytes()
    client.put_object(Bucket=bucket, Key="archive/Wood/N1/20240501_220500.WAV", Body=orphan)
    code, report, _ = run(ws, "ingest", str(card), "--site", "Wood", "--deployment", "N1")
    assert code == EXIT_OK
    first = hashlib.sha256((card / "20240501_220000.WAV").read_bytes()).hexdigest()
    placed = {f["path"]: f["archive_path"] for f in report["files"] if f["state"] == "verified"}
    assert placed == {"20240501_220000.WAV": f"Wood/N1/20240501_220000__{first[:12]}.WAV",
                      "20240501_220500.WAV": "Wood/N1/20240501_220500.WAV", "CONFIG.TXT": "Wood/N1/CONFIG.TXT"}
    stored = objects(s3_server, s3_bucket)
    assert stored["Wood/N1/20240501_220000.WAV"] == other  # untouched
    assert stored[placed["20240501_220000.WAV"]] == (card / "20240501_220000.WAV").read_bytes()
    assert stored["Wood/N1/20240501_220500.WAV"] == orphan  # adopted after a re-hash, not re-uploaded
    assert any("name collision" in m for m in report["messages"])


@pytest.mark.reliability("D1")
def test_an_outage_mid_ingest_stops_with_75_and_the_same_command_resumes(tmp_path, monkeypatch):
    card = tmp_path / "card"
    audiomoth_card(card, start=dt.datetime(2024, 5, 1, 0, 0), count=40, seconds=3.0)
    server = start_s3_server()  # a private server: pausing it must not stall other tests
    try:
        bucket = server.make_bucket()
        ws = s3_workspace(tmp_path / "ws", server, f"s3://{bucket}", **FAST)
        config = ws / "fieldkit.toml"
        config.write_text(config.read_text().replace("[ingest]\n", "[ingest]\nbatch_files = 4\n"))
        # The outage begins at a chosen moment: once the 6th object is stored, before it is read
        # back (batch 1 stored, batch 2's four uploads in flight). The server is really stopped (SIGSTOP).
        read_back, calls = Root.sha256, []

        def pause_on_sixth(self, rel, **kw):
            calls.append(rel)
            if len(calls) == 6:
                server.pause()
            return read_back(self, rel, **kw)

        monkeypatch.setattr(Root, "sha256", pause_on_sixth)
        try:
            code, error, result = run(ws, "ingest", str(card), "--site", "Wood", "--deployment", "N1")
        finally:
            server.resume()
            monkeypatch.undo()
        assert len(calls) >= 6
        assert code == EXIT_TEMPFAIL, result.output
        assert set(error) == {"error", "code", "hint", "path"} and error["code"] == EXIT_TEMPFAIL
        assert f"s3://{bucket}/archive" in error["error"] and "run the command again" in error["hint"]
        verified = catalogue(ws, "SELECT archive_path, sha256 FROM recording")
        assert len(verified) == 4  # the batch committed before the outage is kept
        uncounted = set(objects(server, f"s3://{bucket}")) - {p for p, _ in verified}
        assert 1 <= len(uncounted) <= 4  # stored during the outage's batch: in the bucket, not in the catalogue

        code, report, _ = run(ws, "ingest", str(card), "--site", "Wood", "--deployment", "N1")
        assert code == EXIT_OK and report["state"] == "complete" and report["counts"]["verified"] == 41  # 40 WAVs, CONFIG.TXT
        assert report["session_id"] == 1  # the same session, resumed
        assert uncounted <= {f["archive_path"] for f in report["files"] if f["state"] == "verified"}
        stored = objects(server, f"s3://{bucket}")
        rows = dict(catalogue(ws, "SELECT archive_path, sha256 FROM recording"))
        assert len(rows) == 41 and set(rows.items()) >= set(verified)
        for archive_path, sha256 in rows.items():
            assert hashlib.sha256(stored[archive_path]).hexdigest() == sha256
        # no orphan: every object is a catalogued recording (or a manifest), none counted twice
        assert {k for k in stored if not k.startswith("mhl/")} == set(rows)
        code, scrub, _ = run(ws, "verify")
        assert code == EXIT_OK and scrub["uncatalogued"] == [] and scrub["ok"] == 41
    finally:
        server.stop()


SECRET = "fk-sekrit-Zq93LmP0"


def _no_verified(ws: Path) -> None:
    assert catalogue(ws, "SELECT count(*) FROM recording") == [(0,)]
    assert catalogue(ws, "SELECT count(*) FROM source_file WHERE state = 'verified'") == [(0,)]


def _retarget(ws: Path, old: str, new: str) -> None:
    config = ws / "fieldkit.toml"
    config.write_text(config.read_text().replace(old, new))


def test_unreachable_endpoint_wrong_bucket_and_missing_credentials(card, s3_server, s3_bucket, tmp_path, monkeypatch):
    ws = s3_workspace(tmp_path / "ws", s3_server, s3_bucket, **FAST)
    ingest = ("ingest", str(card), "--site", "Wood", "--deployment", "N1")

    _retarget(ws, s3_server.endpoint, "http://127.0.0.1:9")  # nothing listens on the discard port
    code, error, _ = run(ws, *ingest)
    assert (code, error["code"]) == (EXIT_TEMPFAIL, EXIT_TEMPFAIL)
    assert error["path"] == f"{s3_bucket}/archive" and "endpoint" in error["hint"]
    _no_verified(ws)
    _retarget(ws, "http://127.0.0.1:9", s3_server.endpoint)

    _retarget(ws, s3_bucket, "s3://fk-no-such-bucket")
    code, error, _ = run(ws, *ingest)
    assert (code, error["code"]) == (EXIT_CONFIG, EXIT_CONFIG) and "fk-no-such-bucket" in error["error"]
    assert "does not exist" in error["error"]
    _no_verified(ws)
    _retarget(ws, "s3://fk-no-such-bucket", s3_bucket)

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    from fieldkit.io.storage_clients import _filesystem

    _filesystem.cache_clear()  # a filesystem made with the credentials would still hold them
    try:
        code, error, _ = run(ws, *ingest)
    finally:
        _filesystem.cache_clear()
    assert (code, error["code"]) == (EXIT_CONFIG, EXIT_CONFIG) and "no credentials" in error["error"]
    assert error["path"] == f"{s3_bucket}/archive" and "AWS_ACCESS_KEY_ID" in error["hint"]
    _no_verified(ws)


def test_credentials_never_reach_catalogue_manifests_logs_or_json(card, s3_server, s3_bucket, tmp_path, monkeypatch,
                                                                  caplog):
    monkeypatch.setenv("FK_TEST_KEY", "fieldkit-test")
    monkeypatch.setenv("FK_TEST_SECRET", SECRET)  # moto takes any secret: the point is where it goes
    ws = s3_workspace(tmp_path / "ws", s3_server, s3_bucket, key="${FK_TEST_KEY}", secret="${FK_TEST_SECRET}")
    caplog.set_level("DEBUG")
    outputs = []
    for args in (("ingest", str(card), "--site", "Wood", "--deployment", "N1"), ("verify",), ("config", "show")):
        result = runner.invoke(app, ["-w", str(ws), *args, "--json"], catch_exceptions=False)
        outputs.append(result.stdout + result.stderr)
    _retarget(ws, s3_server.endpoint, "http://127.0.0.1:9")
    code, error, result = run(ws, "ingest", str(card), "--site", "Wood", "--deployment", "N1")
    outputs.append(result.stdout + result.stderr)
    assert code == EXIT_TEMPFAIL and error["path"] == f"{s3_bucket}/archive"  # an error names the URL, no secret
    assert objects(s3_server, s3_bucket)  # the ingest did store through those credentials
    haystacks = {"outputs": "\n".join(outputs), "logs": caplog.text,
                 "fieldkit.toml": (ws / "fieldkit.toml").read_text()}
    haystacks |= {f"object {k}": v.decode("latin-1") for k, v in objects(s3_server, s3_bucket).items()
                  if k.startswith("mhl/")}
    haystacks |= {p.name: p.read_bytes().decode("latin-1") for p in ws.rglob("*") if p.is_file()}
    leaks = [where for where, text in haystacks.items() if SECRET in text]
    assert leaks == []
    assert "${FK_TEST_SECRET}" in haystacks["fieldkit.toml"]


def test_init_with_url_roots_and_storage_options(s3_server, s3_bucket, tmp_path):
    target = tmp_path / "team"
    result = runner.invoke(app, ["init", str(target), "--archive", f"{s3_bucket}/archive", "--stores",
                                 f"{s3_bucket}/stores", "--exports", f"{s3_bucket}/exports",
                                 "--storage-option", f"endpoint_url={s3_server.endpoint}",
                                 "--storage-option", "config_kwargs.read_timeout=20", "--json"])
    assert result.exit_code == EXIT_OK, result.output
    doc = json.loads(result.stdout)
    assert (doc["archive"], doc["stores"], doc["exports"]) == (f"{s3_bucket}/archive", f"{s3_bucket}/stores",
                                                               f"{s3_bucket}/exports")
    import tomllib

    settings = tomllib.loads((target / "fieldkit.toml").read_text())
    assert settings["archive_root"] == f"{s3_bucket}/archive"
    assert settings["storage"]["options"] == {"endpoint_url": s3_server.endpoint, "config_kwargs": {"read_timeout": 20}}
    assert not (target / "archive").exists()

    for argv, code in ((["--archive", "s3://fk-no-such-bucket/a", "--storage-option",
                         f"endpoint_url={s3_server.endpoint}"], EXIT_CONFIG),
                       (["--stores", f"{s3_bucket}/s", "--storage-option", "endpoint_url=http://127.0.0.1:9",
                         "--storage-option", "config_kwargs.connect_timeout=1",
                         "--storage-option", "config_kwargs.retries.max_attempts=1"], EXIT_TEMPFAIL)):
        failed = tmp_path / "failed" / "ws"
        result = runner.invoke(app, ["init", str(failed), *argv, "--json"])
        assert result.exit_code == code, result.output
        error = json.loads(result.stdout)
        assert set(error) == {"error", "code", "hint", "path"} and error["code"] == code
        assert not (tmp_path / "failed").exists()  # nothing half-made is left behind
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["init", str(existing), "--archive", "s3://fk-no-such-bucket/a",
                                 "--storage-option", f"endpoint_url={s3_server.endpoint}", "--json"])
    assert result.exit_code == EXIT_CONFIG
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]  # only what init made was removed


@pytest.mark.parametrize("stored", [1, 1000, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 3 * 256 * 1024])
def test_a_read_back_expecting_a_size_matches_only_the_exact_object(s3_server, s3_bucket, tmp_path, stored):
    """The upload's read-back skips the size look-up: a longer or shorter object must still differ."""
    from fieldkit.io.storage import open_root

    root = open_root(f"{s3_bucket}/a", base=tmp_path, options=s3_server.storage_options, block_bytes=256 * 1024)
    data = bytes(range(256)) * (stored // 256) + b"\x07" * (stored % 256)
    root.put_new("o", [data])
    digest = hashlib.sha256(data).hexdigest()
    assert root.sha256("o", expected_size=stored) == (digest, stored)
    for expected in {stored - 1, stored + 1, stored + 256 * 1024, stored - 256 * 1024} - {0}:
        if expected > 0:
            assert root.sha256("o", expected_size=expected)[1] != expected


def test_a_card_dump_is_ingested_into_s3_and_dry_run_needs_no_disk(card, s3_server, s3_bucket, tmp_path):
    ws = s3_workspace(tmp_path / "ws", s3_server, s3_bucket)
    dump = Path(shutil.make_archive(str(tmp_path / "card"), "zip", card))
    code, plan, _ = run(ws, "ingest", str(dump), "--site", "Wood", "--deployment", "N1", "--dry-run")
    assert code == EXIT_OK and plan["bytes_free"] is None and plan["enough_space"] is True
    assert objects(s3_server, s3_bucket) == {}  # a dry run writes nothing
    code, report, _ = run(ws, "ingest", str(dump), "--site", "Wood", "--deployment", "N1")
    assert code == EXIT_PARTIAL and report["state"] == "complete"  # the card's broken files, as from the folder
    stored = objects(s3_server, s3_bucket)
    rows = catalogue(ws, "SELECT archive_path, sha256 FROM recording")
    assert len(rows) == report["counts"]["verified"] >= 10
    assert all(hashlib.sha256(stored[p]).hexdigest() == h for p, h in rows)
    assert not (ws / ".staging" / "dumps").exists() or not any((ws / ".staging" / "dumps").iterdir())


@pytest.mark.parametrize("first_block", [1000, 6 * 2**20], ids=["single-put", "multipart"])
def test_a_source_failing_mid_stream_stores_nothing(s3_server, s3_bucket, tmp_path, first_block):
    """A card read error mid-upload: the upload is aborted, never committed as a truncated object."""
    from fieldkit.io.storage import open_root

    root = open_root(f"{s3_bucket}/a", base=tmp_path, options=s3_server.storage_options)

    def failing():
        yield b"\x01" * first_block
        raise OSError(5, "Input/output error")  # what a failing card read raises

    with pytest.raises(OSError, match="Input/output error"):
        root.put_new("half.wav", failing())
    assert objects(s3_server, s3_bucket, "a/") == {}
    root.put_new("half.wav", [b"whole"])  # the name was never taken
    assert objects(s3_server, s3_bucket, "a/") == {"half.wav": b"whole"}


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_a_service_without_conditional_writes_is_a_configuration_error(card, s3_server, s3_bucket, tmp_path,
                                                                      transport):
    """An S3 service that answers If-None-Match with 501 NotImplemented: fieldkit cannot promise never
    to overwrite the archive there, so nothing is written, the message says so, exit 78."""
    from fieldkit.io.storage import open_root
    from fieldkit.testing.s3proxy import RequestCounter

    with RequestCounter(s3_server.endpoint, refuse_conditional=True) as service:
        ws = s3_workspace(tmp_path / "ws", s3_server, s3_bucket, endpoint_url=service.endpoint,
                          **TRANSPORTS[transport])
        code, error, _ = run(ws, "ingest", str(card), "--site", "Wood", "--deployment", "N1")
        assert (code, error["code"]) == (EXIT_CONFIG, EXIT_CONFIG)
        assert "does not support conditional writes" in error["error"] and f"{s3_bucket}/archive" in error["error"]
        assert "conditional writes" in error["hint"]
        _no_verified(ws)
        assert objects(s3_server, s3_bucket) == {}
        # a multipart upload (the condition goes on its COMPLETE) is refused as well, and left uncommitted
        root = open_root(f"{s3_bucket}/archive", base=tmp_path, block_bytes=256 * 1024,
                         options={"endpoint_url": service.endpoint, **TRANSPORTS[transport]})
        with pytest.raises(ConfigError, match="does not support conditional writes"):
            root.put_new("big.wav", [b"\x02" * 700_000] * 9)
        assert service.operations()["CompleteMultipartUpload"] == 1
    assert objects(s3_server, s3_bucket) == {}
