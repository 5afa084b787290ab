"""G1: card dumps (.zip, .tar, .tar.gz) ingested as the card, hostile entries rejected by name.

Real hostile archives are built with :mod:`zipfile` and :mod:`tarfile`; the ingest runs through
the real CLI into a real workspace. Nothing may be written outside the workspace, the dump is
never changed, and every archived copy hashes as the entry did.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from fieldkit.errors import EXIT_OK
from fieldkit.ingest.dumps import DumpLimits, DumpRefusedError, extract_dump
from fieldkit.testing.cards import audiomoth_card

pytestmark = pytest.mark.reliability("G1")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def recordings(tmp_path: Path) -> dict[str, bytes]:
    """Three real AudioMoth recordings plus CONFIG.TXT, by card-relative name."""
    root = tmp_path / "src"
    audiomoth_card(root, start=dt.datetime(2024, 5, 1, 22, 0), count=3)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes = b"", **kind) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data) if not kind else 0
    for key, value in kind.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if not kind else None)


def hostile_tar(path: Path, files: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            _tar_add(tar, f"DCIM/{name}" if name == "CONFIG.TXT" else name, data)
        _tar_add(tar, "../escaped.WAV", b"RIFF evil")
        _tar_add(tar, "/tmp/absolute.WAV", b"RIFF evil")
        _tar_add(tar, "a/../../up.WAV", b"RIFF evil")
        _tar_add(tar, "passwd-link", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        _tar_add(tar, "up-link", type=tarfile.SYMTYPE, linkname="../../outside")
        _tar_add(tar, "hard-link", type=tarfile.LNKTYPE, linkname="/etc/shadow")
        _tar_add(tar, "null-device", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        _tar_add(tar, "fifo", type=tarfile.FIFOTYPE)
        first = next(iter(files))
        _tar_add(tar, first, b"RIFF a different file under the same name")
    return path


def hostile_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("../escaped.WAV", b"RIFF evil")
        zf.writestr("/abs/olute.WAV", b"RIFF evil")
        zf.writestr("..\\windows.WAV", b"RIFF evil")
        link = zipfile.ZipInfo("link-out")
        link.external_attr = (0o120777 << 16)  # a symbolic link, as Info-ZIP stores one
        zf.writestr(link, "../../etc/passwd")
        dev = zipfile.ZipInfo("char-device")
        dev.external_attr = (0o020644 << 16)
        zf.writestr(dev, b"")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr(next(iter(files)), b"RIFF not the recording")
    return path


def _everything_below(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_a_dump_is_ingested_like_the_card_and_hostile_entries_are_rejected_by_name(
        kind, recordings, cli, workspace, tmp_path):
    dump = tmp_path / f"card.{kind}"
    if kind == "zip":
        hostile_zip(dump, recordings)
    else:
        hostile_tar(dump, recordings, "w:gz" if kind == "tar.gz" else "w")
    dump_before = sha(dump.read_bytes())
    outside_before = _everything_below(tmp_path) - _everything_below(workspace.root)

    code, report = cli.json("ingest", str(dump), "--site", "Wood", "--deployment", "N1")

    assert sha(dump.read_bytes()) == dump_before  # the card is never written
    assert _everything_below(tmp_path) - _everything_below(workspace.root) == outside_before
    assert not (tmp_path / "escaped.WAV").exists() and not Path("/tmp/absolute.WAV").exists()
    assert code == EXIT_OK, report
    assert report["state"] == "complete" and report["safe_to_erase"] is True
    assert report["card_root"] == str(dump.resolve())
    archived = {f["path"]: f for f in report["files"] if f["state"] == "verified"}
    wanted = {f"DCIM/{n}" if (n == "CONFIG.TXT" and kind != "zip") else n for n in recordings}
    assert set(archived) == wanted
    for name, data in recordings.items():
        entry = archived[f"DCIM/{name}" if (name == "CONFIG.TXT" and kind != "zip") else name]
        assert entry["sha256"] == sha(data)
        assert (workspace.paths.archive / entry["archive_path"]).read_bytes() == data
    text = "\n".join(report["messages"])
    expected = {"zip": ["'../escaped.WAV' rejected (traversal)", "'/abs/olute.WAV' rejected (absolute)",
                        "'..\\\\windows.WAV' rejected (traversal)", "'link-out' rejected (link_outside)",
                        "'char-device' rejected (device)", "rejected (duplicate)"],
                "tar": ["'../escaped.WAV' rejected (traversal)", "rejected (absolute)",
                        "'a/../../up.WAV' rejected (traversal)", "'passwd-link' rejected (link_outside)",
                        "'up-link' rejected (link_outside)", "'hard-link' rejected (link_outside)",
                        "'null-device' rejected (device)", "'fifo' rejected (device)",
                        "rejected (duplicate)"]}["zip" if kind == "zip" else "tar"]
    for fragment in expected:
        assert fragment in text, (fragment, text)
    # the extraction folder is fieldkit's own and is gone
    assert not any((workspace.paths.staging / "dumps").glob("*/*"))


def test_a_zip_bomb_is_refused_before_anything_is_written(cli, workspace, tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("20240501_220000.WAV", b"\0" * (8 << 20))  # 8 MiB of zeros: ~1000x
    code, doc = cli.json("ingest", str(bomb), "--site", "Wood", "--deployment", "N1")
    # the entry is rejected by name (ratio); with nothing else in the dump, there is no audio
    assert code != EXIT_OK
    assert doc["error"].startswith("bomb.zip: no entry of the dump could be ingested"), doc
    assert "'20240501_220000.WAV': ratio" in doc["error"]
    assert not any(workspace.paths.archive.rglob("*.WAV"))


def test_entry_count_and_total_size_limits_refuse_the_whole_dump(tmp_path):
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(12):
            zf.writestr(f"f{i}.WAV", b"RIFF")
    with pytest.raises(DumpRefusedError, match="dump_max_entries = 10"):
        extract_dump(many, tmp_path / "x1", DumpLimits(10, 1 << 30, 200))
    assert not (tmp_path / "x1").exists()
    with pytest.raises(DumpRefusedError, match="dump_max_bytes = 40"):
        extract_dump(many, tmp_path / "x2", DumpLimits(100, 40, 200))
    # a tar.gz whose stream expands past the ratio is stopped while streaming
    gz = tmp_path / "zeros.tar.gz"
    with tarfile.open(gz, "w:gz") as tar:
        _tar_add(tar, "a.WAV", b"\0" * (4 << 20))
    with pytest.raises(DumpRefusedError, match="dump_max_ratio"):
        extract_dump(gz, tmp_path / "x3", DumpLimits(100, 1 << 40, 50))
    assert not (tmp_path / "x3").exists()


def test_a_lying_zip_entry_is_cut_at_its_declared_size(tmp_path):
    dump = tmp_path / "liar.zip"
    with zipfile.ZipFile(dump, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.WAV", b"x" * 1000)
    raw = bytearray(dump.read_bytes())
    # shrink the declared uncompressed size in the central directory to 10 bytes
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    dump.write_bytes(bytes(raw))
    extracted, rejected = extract_dump(dump, tmp_path / "out", DumpLimits(10, 1 << 30, 200))
    # zipfile itself notices (the CRC of the bytes read no longer matches): rejected by name
    assert extracted == [] and [(r.name, r.reason) for r in rejected] == [("a.WAV", "corrupt")]
    assert not (tmp_path / "out" / "a.WAV").exists()


def test_a_file_that_is_no_archive_is_a_clear_error(cli, tmp_path):
    fake = tmp_path / "card.zip"
    fake.write_bytes(b"this is not a zip")
    result = cli("ingest", str(fake), "--site", "Wood", "--deployment", "N1", "--json")
    assert result.exit_code != EXIT_OK
    assert "not a readable zip or tar archive" in result.stdout
    assert "Traceback" not in result.stdout + (result.stderr or "")


def test_dry_run_of_a_dump_lists_what_would_be_ingested_and_rejected(recordings, cli, workspace,
                                                                     tmp_path):
    dump = hostile_tar(tmp_path / "card.tar", recordings)
    code, plan = cli.json("ingest", str(dump), "--site", "Wood", "--deployment", "N1", "--dry-run")
    assert code == EXIT_OK
    assert plan["to_copy"] == len(recordings)
    assert {r["reason"] for r in plan["rejected"]} == {"traversal", "absolute", "link_outside",
                                                       "device", "duplicate"}
    assert not any(workspace.paths.archive.rglob("*.WAV"))
