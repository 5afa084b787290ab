"""Truthful ingest (issue #13): no "safe to erase" for a card without recordings, and a re-ingest
that copies nothing says so in one line, records the sighting (docs/reliability.md F1) and prints
no "None". Real folders, the bundled sample card, a real workspace."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from fieldkit.errors import EXIT_NOINPUT, EXIT_OK, EXIT_PARTIAL, NotFoundError
from fieldkit.ingest.inventory import require_audio, take_inventory
from fieldkit.testing.cards import plain_wav, write_file

SAMPLE_CARD = Path(__file__).resolve().parents[2] / "fieldkit" / "data" / "sample_card"


def table_rows(workspace, table: str) -> int:
    con = sqlite3.connect(workspace.root / "catalogue.sqlite")
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def nothing_written(workspace) -> bool:
    tables = ("card", "site", "ingest_session", "source_file", "recording", "manifest")
    return (all(table_rows(workspace, t) == 0 for t in tables)
            and not any(p.is_file() for p in workspace.paths.archive.rglob("*")))


def _no_audio_card(root: Path) -> Path:
    write_file(root / "CONFIG.TXT", b"Device ID: 24E144055E080032\n")
    write_file(root / "._20240501_220000.WAV", b"\0\5\26\7" + b"\0" * 60)  # AppleDouble: ignored, not audio
    write_file(root / "notes" / "readme.md", b"field notes\n")
    return root


def test_an_empty_folder_is_refused_with_exit_66_and_nothing_written(tmp_path, cli, workspace):
    empty = tmp_path / "mnt" / "card"
    empty.mkdir(parents=True)
    result = cli("ingest", str(empty), "--site", "Wood", "--deployment", "N1")
    assert result.exit_code == EXIT_NOINPUT
    message = " ".join(result.stderr.split())  # rich wraps long lines
    assert f"no recordings in {empty}" in message and "it is empty" in message
    assert ".wav" in message and "mount point" in message
    assert "safe to erase" not in result.stderr and "None" not in result.stderr
    assert nothing_written(workspace)


def test_a_card_without_audio_is_refused_and_says_what_it_found(tmp_path, cli, workspace):
    card = _no_audio_card(tmp_path / "card")
    result = cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    assert result.exit_code == EXIT_NOINPUT
    message = " ".join(result.stderr.split())
    assert "it holds 3 files" in message and "none of them audio" in message and "1 ignored" in message
    assert "CONFIG.TXT" in message and "safe to erase" not in message
    assert nothing_written(workspace)


def test_json_and_dry_run_are_refused_the_same_way(tmp_path, cli, workspace):
    card = _no_audio_card(tmp_path / "card")
    for extra in (("--json",), ("--dry-run",), ("--dry-run", "--json")):
        result = cli("ingest", str(card), "--site", "Wood", "--deployment", "N1", *extra)
        assert result.exit_code == EXIT_NOINPUT, extra
        assert "safe_to_erase" not in result.stdout and "Traceback" not in result.output
    assert nothing_written(workspace)


def test_the_refusal_names_folder_expectation_finding_and_next_step(tmp_path):
    with pytest.raises(NotFoundError) as caught:
        require_audio(take_inventory(tmp_path))
    assert caught.value.exit_code == EXIT_NOINPUT
    text = str(caught.value)
    assert str(tmp_path.resolve()) in text and "expected recorder audio files" in text
    assert "it is empty (no file at all)" in text and "Nothing was written" in text
    assert caught.value.hint.startswith("Check that this is the card's mount point")


@pytest.mark.parametrize("name", ["20240501_220000.WAV", "x.flac", "deep/folder/a.Wav", "RENAMED.DAT"])
def test_one_recording_is_enough_by_name_or_by_content(tmp_path, name):
    card = _no_audio_card(tmp_path / "card")
    write_file(card / name, plain_wav(freq_hz=440.0))  # a real WAV: RENAMED.DAT counts by its RIFF header
    require_audio(take_inventory(card))


def test_a_text_file_named_like_something_else_does_not_count(tmp_path):
    card = _no_audio_card(tmp_path / "card")
    write_file(card / "DATA.BIN", b"not audio at all" * 4)
    with pytest.raises(NotFoundError, match="it holds 4 files"):
        require_audio(take_inventory(card))


@pytest.mark.reliability("F1")
def test_reingest_of_the_sample_card_is_one_line_with_no_none(tmp_path, cli, workspace):
    card = shutil.copytree(SAMPLE_CARD, tmp_path / "sample_card")
    first = cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    assert first.exit_code == EXIT_PARTIAL and "needs attention" in first.stderr
    for _ in range(2):  # a second re-ingest matches the first sighting and says the same
        again = cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
        assert again.exit_code == EXIT_PARTIAL  # the card still holds broken files
        assert "None" not in again.stderr
        text = " ".join(again.stderr.split())  # rich wraps long lines
        assert text.startswith("11 files already archived (identical hash), 0 new")
        assert "needs attention" not in text and "quarantined and 1 truncated" in text
        assert "✓ safe to erase this card" in text
    assert table_rows(workspace, "ingest_session") == 3 and table_rows(workspace, "manifest") == 1


def test_reingest_sightings_are_provenance_of_each_recording(tmp_path, cli, workspace):
    card = tmp_path / "card"
    write_file(card / "20240501_220000.WAV", plain_wav(freq_hz=440.0))
    cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    code, report = cli.json("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    assert code == EXIT_OK and report["repeat_of"] == 1 and report["session_id"] == 2
    con = sqlite3.connect(workspace.root / "catalogue.sqlite")
    try:
        sightings = con.execute("SELECT session_id, state, recording_id FROM source_file ORDER BY id").fetchall()
        session = con.execute("SELECT state, resumed_from_id, safe_to_erase, message FROM ingest_session "
                              "WHERE id = 2").fetchone()
    finally:
        con.close()
    assert sightings == [(1, "verified", 1), (2, "duplicate", 1)]
    assert session[:3] == ("complete", 1, 1)
    assert session[3].startswith("1 file already archived (identical hash), 0 new")


def test_reingest_never_says_safe_to_erase_when_an_archived_copy_is_gone(tmp_path, cli, workspace):
    card = tmp_path / "card"
    write_file(card / "20240501_220000.WAV", plain_wav(freq_hz=440.0))
    write_file(card / "20240501_220500.WAV", plain_wav(freq_hz=880.0))
    _, first = cli.json("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    (workspace.paths.archive / first["files"][0]["archive_path"]).unlink()
    result = cli("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    text = " ".join(result.stderr.split())
    assert result.exit_code == EXIT_PARTIAL
    assert "1 archived copy is missing or changed size" in text and "fieldkit verify" in text
    assert "safe to erase" not in text and "do NOT erase" in text and "None" not in text


def test_verify_names_a_changed_copy_without_python_reprs(tmp_path, cli, workspace):
    card = shutil.copytree(SAMPLE_CARD, tmp_path / "sample_card")
    _, report = cli.json("ingest", str(card), "--site", "Wood", "--deployment", "N1")
    entry = next(f for f in report["files"] if f["state"] == "verified" and f["size_bytes"] > 1000)
    copy = workspace.paths.archive / entry["archive_path"]
    copy.chmod(0o644)
    copy.write_bytes(b"X" + copy.read_bytes()[1:])
    result = cli("verify")
    text = " ".join(result.stderr.split())
    assert result.exit_code != EXIT_OK and "MISMATCH" in text and entry["archive_path"] in text
    assert f"expected {entry['sha256']} (catalogue)" in text
    assert "None" not in text and "{" not in text
