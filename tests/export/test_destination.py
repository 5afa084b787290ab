"""Export destinations that cannot take the export (docs/reliability.md C4), on real mounts.

A FAT32 volume (:func:`tests.helpers_fat.fat32_mounted`) holds files of at most 4 GiB - 1 bytes;
the limit is lowered through ``export_dataset(fat_max_file_bytes=...)`` so that a small export
meets it, on the real file system. A read-only destination is a real read-only tmpfs mount.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fieldkit.errors import EXIT_CANTCREAT, ExportError, OutputUnavailableError, translate
from fieldkit.export.exporter import export_dataset
from fieldkit.io.destination import FAT_MAX_FILE_BYTES, file_size_limit, mount_of
from tests.conftest import REPO, mounted
from tests.helpers_fat import fat32_mounted

pytestmark = pytest.mark.reliability("C4")


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def local_tmp(tmp_path, monkeypatch) -> Path:
    """The process's temporary folder, private to the test, to see what staging leaves there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_the_fat32_volume_is_recognised_and_a_local_disk_is_not(tmp_path):
    with fat32_mounted(tmp_path) as fat:
        mount = mount_of(fat / "not" / "made" / "yet")
        assert mount is not None and mount.is_fat and mount.mount_point == str(fat)
        assert file_size_limit(fat) == (FAT_MAX_FILE_BYTES, mount) and FAT_MAX_FILE_BYTES == 2**32 - 1
    assert file_size_limit(tmp_path) is None


def test_an_export_that_fits_is_written_whole_onto_fat32(tmp_path, export_input, local_tmp):
    reference = export_dataset(export_input, tmp_path / "local", format="webdataset")
    with fat32_mounted(tmp_path) as fat:
        result = export_dataset(export_input, fat / "wood-calls-1-webdataset", format="webdataset")
        on_fat = _tree(fat / "wood-calls-1-webdataset")
        left = sorted(p.name for p in fat.iterdir() if p.is_dir())
    shards = {name: sha for name, sha in result.files.items() if name.startswith("data/")}
    assert shards and shards == {n: s for n, s in reference.files.items() if n.startswith("data/")}  # as locally
    assert result.files.keys() == reference.files.keys()  # (export.json and lineage.json name their folder)
    assert {name: hashlib.sha256(data).hexdigest() for name, data in on_fat.items() if name in result.files} \
        == result.files
    assert "manifest.json" in on_fat and left == ["wood-calls-1-webdataset"]  # no .partial folder behind
    assert list(local_tmp.iterdir()) == []  # the local staging folder is gone


def test_a_file_over_the_fat32_limit_is_refused_and_nothing_reaches_the_volume(tmp_path, export_input, local_tmp):
    reference = export_dataset(export_input, tmp_path / "local", format="webdataset")
    shards = {name: (reference.out_dir / name).stat().st_size for name in reference.files if name.endswith(".tar")}
    largest = max(shards, key=shards.get)
    with fat32_mounted(tmp_path) as fat:
        before, fstype = (_tree(fat), sorted(p.name for p in fat.rglob("*"))), mount_of(fat).fstype
        with pytest.raises(ExportError) as err:
            export_dataset(export_input, fat / "out", format="webdataset", fat_max_file_bytes=shards[largest] - 1)
        after = _tree(fat), sorted(p.name for p in fat.rglob("*"))
    assert after == before  # not a byte written to the FAT volume
    assert list(local_tmp.iterdir()) == []
    error = err.value
    assert error.exit_code == EXIT_CANTCREAT
    assert error.path == str(fat / "out" / largest)
    assert f"would be {shards[largest]:,} bytes" in error.message
    assert f"{fat} is a {fstype} (FAT) file system that holds files of at most" in error.message
    assert f"{shards[largest] - 1:,} bytes" in error.message and "nothing was written" in error.message
    assert "--shard-size" in error.hint and f"now {export_input.shard_size} clips per shard" in error.hint
    assert json.loads(json.dumps(error.to_dict()))["code"] == EXIT_CANTCREAT


def test_a_read_only_destination_is_refused_before_writing(tmp_path, export_input, local_tmp):
    target = tmp_path / "ro"
    target.mkdir()
    with mounted(target, "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"):
        with pytest.raises(OutputUnavailableError) as err:
            export_dataset(export_input, target / "exports" / "out", format="numpy")
        assert list(target.iterdir()) == []
    assert err.value.exit_code == EXIT_CANTCREAT and err.value.path == str(target)
    assert err.value.message == (f"cannot write the export at {target / 'exports'}: {target} is on a read-only "
                                 "file system; nothing was written.")
    assert list(local_tmp.iterdir()) == []  # refused before any staging


def test_an_earlier_export_on_fat32_is_replaced_whole_with_overwrite(tmp_path, export_input, local_tmp):
    with fat32_mounted(tmp_path) as fat:
        empty = sorted(p.name for p in fat.iterdir())  # fusefat lists the volume label as an entry
        first = export_dataset(export_input, fat / "out", format="parquet")
        (fat / "out" / "stale.txt").write_text("left by hand")
        second = export_dataset(export_input, fat / "out", format="parquet", overwrite=True)
        on_fat = _tree(fat / "out")
        names = sorted(p.name for p in fat.iterdir())
    assert on_fat.keys() == second.files.keys() | {"manifest.json"} == first.files.keys() | {"manifest.json"}
    assert {name: hashlib.sha256(data).hexdigest() for name, data in on_fat.items()
            if name != "manifest.json"} == second.files  # and stale.txt went with the old export
    assert names == sorted([*empty, "out"])  # no folder moved aside is left


def test_a_folder_the_user_may_not_write_to_is_named(tmp_path):
    """As another user (root may write anywhere): the preflight itself, in a process of its own."""
    base = Path(tempfile.mkdtemp(prefix="fieldkit-perm-", dir="/tmp"))  # pytest's tmp_path is private to root
    try:
        base.chmod(0o755)
        locked = base / "locked"
        locked.mkdir(mode=0o555)
        code = ("from fieldkit.io.destination import check_writable\n"
                f"check_writable({str(locked / 'exports')!r}, 'the export')\n")
        if os.geteuid() == 0:
            python = "/usr/bin/python3.11"  # Debian's: the venv's may be private to root (.ci/run installs it)
            argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-S", "-c", code]
        else:
            argv = [sys.executable, "-c", code]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=base, check=False, timeout=60,
                              env={"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"]})
    finally:
        shutil.rmtree(base)
    assert done.returncode == 1 and "OutputUnavailableError: cannot write the export at " in done.stderr, done.stderr
    assert f"permission denied on {locked}" in done.stderr and "nothing was written" in done.stderr


def test_a_file_too_large_for_its_file_system_is_named_not_a_traceback():
    """EFBIG, as a FAT file system returns at 4 GiB (an output fieldkit did not size beforehand)."""
    error = translate(OSError(errno.EFBIG, "File too large", "/media/stick/run.zarr/mel/0.0"))
    assert isinstance(error, OutputUnavailableError) and error.exit_code == EXIT_CANTCREAT
    assert error.to_dict() == {
        "error": "cannot write /media/stick/run.zarr/mel/0.0: it would be larger than its file system holds "
                 "(File too large).",
        "code": EXIT_CANTCREAT, "hint": "Write to a file system without this limit (exFAT, NTFS, ext4), or in "
                                        "smaller files.", "path": "/media/stick/run.zarr/mel/0.0"}
