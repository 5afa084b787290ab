"""Ingest of real WAV files on fake cards into a real workspace (SQLite file, archive on disk)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from fieldkit.errors import EXIT_PARTIAL
from fieldkit.testing.cards import BROKEN_EXPECTED, plain_wav, snapshot, write_file


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def workspace(backend_workspace):
    """Every test of this module on each catalogue backend (SQLite, and PostgreSQL when there is one)."""
    return backend_workspace


def query(workspace, sql: str) -> list[tuple]:
    """Rows of ``sql`` on the workspace's catalogue, whichever its backend."""
    engine = sa.create_engine(workspace.paths.catalogue_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def rows(workspace, table: str) -> int:
    return query(workspace, f"SELECT count(*) FROM {table}")[0][0]


def test_every_file_is_archived_byte_for_byte_and_the_card_is_untouched(card, cli, workspace):
    before = snapshot(card)
    code, report = cli.json("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    assert snapshot(card) == before
    assert code == EXIT_PARTIAL  # broken files present: the exit code says so
    assert report["state"] == "complete" and report["safe_to_erase"] is True
    archived = {f["path"]: f for f in report["files"] if f["state"] == "verified"}
    ignored = {f["path"]: f["reason"] for f in report["files"] if f["state"] == "ignored"}
    assert ignored == {"._20240501_220000.WAV": "appledouble", ".Spotlight-V100/store.db": "system_folder"}
    card_files = {p.relative_to(card).as_posix() for p in card.rglob("*") if p.is_file()}
    assert set(archived) == card_files - set(ignored)
    for name, entry in archived.items():
        copy = workspace.paths.archive / entry["archive_path"]
        assert sha(copy) == sha(card / name) == entry["sha256"]
        assert not os.access(copy, os.W_OK) or os.geteuid() == 0
        assert copy.stat().st_mode & 0o222 == 0  # archived files are read-only


@pytest.mark.reliability("A1", "A3", "A5")
def test_broken_files_get_status_reason_and_both_frame_counts(card, cli):
    cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    code, recs = cli.json("catalog", "recordings")
    by_name = {r["archive_path"].rsplit("/", 1)[-1]: r for r in recs}
    for name, (status, reason) in BROKEN_EXPECTED.items():
        assert (by_name[name]["status"], by_name[name]["reason"]) == (status, reason), name
    truncated = by_name["20240501_231000.WAV"]
    assert 0 < truncated["frames_present"] < truncated["frames_declared"] == 32000
    assert truncated["duration_s"] == pytest.approx(truncated["frames_present"] / 16000)
    assert by_name["CONFIG.TXT"]["status"] == "sidecar"
    assert by_name["CONFIG.TXT"]["metadata"]["config"]["Device ID"] == "24E144055E080032"


def test_catalog_recordings_json_has_the_promised_fields(card, cli):
    cli("ingest", str(card), "--site", "Wood", "--deployment", "N1", "--timezone", "+02:00")
    _, recs = cli.json("catalog", "recordings", "--status", "ok")
    assert len(recs) == 6
    first = recs[0]
    for key in ("id", "sha256", "archive_path", "source_paths", "status", "reason", "format", "sample_rate_hz",
                "channels", "bit_depth", "frames_declared", "frames_present", "duration_s", "start_time_utc",
                "time_source", "time_discrepancy_s", "site", "deployment", "device_make", "device_model",
                "device_serial", "peak_dbfs", "clipped_samples", "metadata"):
        assert key in first, key
    assert first["archive_path"].startswith("Wood/N1/") and not first["archive_path"].startswith("/")
    assert first["source_paths"] == [f"path:{Path(first['source_paths'][0].split(':', 1)[1])}"] or \
        first["source_paths"][0].endswith("20240501_220000.WAV")
    assert (first["format"], first["sample_rate_hz"], first["channels"], first["bit_depth"]) == ("wav", 16000, 1, 16)
    assert first["frames_declared"] == first["frames_present"] == 16000 and first["duration_s"] == 1.0
    # the comment says (UTC): the comment's own zone wins over the deployment's +02:00
    assert first["start_time_utc"] == "2024-05-01T22:00:00Z"
    assert first["device_serial"] == "24E144055E080032" and first["device_make"]
    assert first["peak_dbfs"] == pytest.approx(20 * __import__("math").log10(0.25), abs=0.01)
    assert first["clipped_samples"] == 0


@pytest.mark.reliability("F1")
def test_reingest_copies_nothing_and_records_a_sighting(card, cli, workspace):
    cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    counts = {t: rows(workspace, t) for t in ("recording", "source_file", "ingest_session", "manifest")}
    files = sorted(p for p in workspace.paths.archive.rglob("*") if p.is_file())
    code, report = cli.json("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    assert code == EXIT_PARTIAL  # same content, same truth: the card still holds broken files
    assert report["messages"][0].startswith("12 files already archived (identical hash), 0 new")
    # F1: no copy, no recording, no manifest; one provenance sighting (a session, a row per card file)
    assert {t: rows(workspace, t) for t in counts} == {**counts, "ingest_session": 2, "source_file": 2 * 14}
    now = sorted(p for p in workspace.paths.archive.rglob("*") if p.is_file())
    ledger = workspace.paths.manifests / "ledger"  # the sighting's ledger record is its one new file
    assert [p for p in now if p.parent != ledger] == [p for p in files if p.parent != ledger]
    assert len([p for p in now if p.parent == ledger]) == len([p for p in files if p.parent == ledger]) + 1
    assert (report["session_id"], report["repeat_of"], report["resumed_from"]) == (2, 1, 1)
    assert {f["state"] for f in report["files"]} == {"duplicate", "ignored"} and report["safe_to_erase"] is True


@pytest.mark.reliability("F2")
def test_same_content_on_a_second_card_adds_an_origin_not_a_copy(card, cli, workspace, tmp_path):
    cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    other = tmp_path / "card2"
    shutil.copy2(card / "20240501_220500.WAV", other / "COPY.WAV" if other.mkdir() is None else None)
    write_file(other / "new.wav", plain_wav(freq_hz=1234.0))
    n_files = sum(1 for p in workspace.paths.archive.rglob("*.WAV"))
    code, report = cli.json("ingest", str(other), "--site", "Wood", "--deployment", "N1")
    states = {f["path"]: f["state"] for f in report["files"]}
    assert states == {"COPY.WAV": "duplicate", "new.wav": "verified"}
    assert sum(1 for p in workspace.paths.archive.rglob("*.WAV")) == n_files
    _, recs = cli.json("catalog", "recordings")
    dup = next(r for r in recs if r["archive_path"].endswith("20240501_220500.WAV"))
    assert len(dup["source_paths"]) == 2 and dup["source_paths"][1].endswith(":COPY.WAV")


def test_dry_run_writes_nothing(card, cli, workspace):
    before = {t: rows(workspace, t) for t in ("ingest_session", "card", "site")}
    code, plan = cli.json("ingest", str(card), "--site", "Wood", "--deployment", "N1", "--dry-run")
    assert code == 0 and plan["to_copy"] == 12 and len(plan["ignored"]) == 2
    assert {t: rows(workspace, t) for t in before} == before
    assert not any(p.is_file() for p in workspace.paths.archive.rglob("*"))


@pytest.mark.reliability("C4")
def test_not_enough_space_refuses_before_copying(card, cli, workspace, monkeypatch):
    monkeypatch.setenv("FIELDKIT_INGEST__FREE_SPACE_MARGIN_BYTES", str(1 << 60))
    result = cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    assert result.exit_code == 73
    assert "not enough space" in result.stderr and "Nothing was copied" in result.stderr
    assert not any(p.is_file() for p in workspace.paths.archive.rglob("*.WAV"))


@pytest.mark.reliability("G3")
def test_unusual_names_are_copied_and_raw_bytes_kept(tmp_path, cli, workspace):
    root = tmp_path / "odd"
    names = [b"-leading dash.wav", b"caf\xe9 latin1.wav", b"CON.wav", b"trailing dot.wav.", b"A.WAV", b"a.wav",
             b"tab\there.wav", "café nfd.wav".encode().replace("é".encode(), "e\u0301".encode())]
    os.makedirs(root)
    for i, name in enumerate(names):
        with open(os.path.join(os.fsencode(root), name), "wb") as fh:
            fh.write(plain_wav(freq_hz=300.0 + 50 * i))
    code, report = cli.json("ingest", str(root), "--site", "S", "--deployment", "D")
    assert code == 0 and report["counts"]["verified"] == len(names)
    paths = [f["archive_path"] for f in report["files"]]
    assert len(set(p.lower() for p in paths)) == len(paths)  # unique even on case-insensitive disks
    for p in paths:
        name = p.rsplit("/", 1)[-1]
        assert not name.startswith("-") and not name.endswith(".") and "\t" not in name
        assert name.split(".")[0].upper() != "CON"
        name.encode("utf-8")
    raw = {bytes(r[0]) for r in query(workspace, "SELECT raw_path FROM source_file")}
    assert raw == set(names)


@pytest.mark.reliability("C6", "F3")
def test_different_content_under_the_same_name_from_two_cards_is_kept_twice(tmp_path, cli):
    for i, freq in enumerate((500.0, 900.0)):
        write_file(tmp_path / f"c{i}" / "20240501_220000.WAV", plain_wav(freq_hz=freq))
        code, report = cli.json("ingest", str(tmp_path / f"c{i}"), "--site", "S", "--deployment", "D")
        assert code == 0
    _, recs = cli.json("catalog", "recordings")
    assert len(recs) == 2 and len({r["archive_path"] for r in recs}) == 2
    assert len({r["sha256"] for r in recs}) == 2


def test_changing_a_deployments_timezone_is_refused(card, cli):
    cli("ingest", str(card), "--site", "Wood", "--deployment", "N1", "--timezone", "+02:00")
    result = cli("ingest", str(card), "--site", "Wood", "--deployment", "N1", "--timezone", "+03:00")
    assert result.exit_code != 0 and "+02:00" in result.stderr and "+03:00" in result.stderr


def test_missing_card_is_a_clear_error(tmp_path, cli):
    result = cli("ingest", str(tmp_path / "nope"), "--site", "S", "--deployment", "D")
    assert result.exit_code == 66 and "does not exist" in result.stderr and "mount point" in result.stderr


@pytest.mark.reliability("C5")
def test_verify_passes_after_ingest_and_finds_a_flipped_byte(card, cli, workspace):
    cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    code, report = cli.json("verify")
    assert code == 0 and report["passed"] and report["checked"] == 12 and report["uncatalogued"] == []
    victim = next(workspace.paths.archive.rglob("20240501_220000.WAV"))
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[200] ^= 0xFF
    victim.write_bytes(bytes(data))
    code, report = cli.json("verify")
    assert code == 65 and [m["archive_path"] for m in report["mismatched"]] == ["Wood/N1/20240501_220000.WAV"]
    assert victim.read_bytes() == bytes(data)  # verify reports; it never "repairs" the archive
    assert query(workspace, "SELECT failures FROM manifest WHERE kind='verify' ORDER BY sequence DESC")[0][0] == 1


@pytest.fixture
def read_only_card(card, tmp_path):
    """The card behind a read-only bind mount (a real EROFS for any write), when mounts are allowed."""
    import subprocess

    target = tmp_path / "ro-card"
    target.mkdir()
    ok = subprocess.run(["mount", "--bind", str(card), str(target)], capture_output=True).returncode == 0
    ok = ok and subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], capture_output=True).returncode == 0
    if not ok:
        subprocess.run(["umount", str(target)], capture_output=True)
        pytest.skip("cannot make a read-only bind mount here (needs root and mount)")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)


def test_ingest_from_a_read_only_card(read_only_card, cli, workspace):
    with pytest.raises(OSError):
        (read_only_card / "probe").write_bytes(b"x")  # the mount really is read-only
    before = snapshot(read_only_card)
    code, report = cli.json("ingest", str(read_only_card), "--site", "Wood", "--deployment", "N1")
    assert code == EXIT_PARTIAL and report["safe_to_erase"] and report["counts"]["verified"] == 12
    assert snapshot(read_only_card) == before
