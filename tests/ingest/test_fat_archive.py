"""An archive on a FAT32 file system and a card file it cannot hold (docs/reliability.md C4).

A recording of 4 GiB (an RF64 file of a long night) onto a FAT32 archive would fail with EFBIG at
the 4 GiB mark; the ingest refuses it before anything is copied. The card file is a real sparse
file of 2**32 bytes (one byte over the limit, no disk space used); the archive is on a real FAT32
volume (:func:`tests.helpers_fat.fat32_mounted`), nothing mocked.
"""

from __future__ import annotations

import datetime as dt

import pytest

from fieldkit.errors import EXIT_CANTCREAT
from fieldkit.io.destination import FAT_MAX_FILE_BYTES, mount_of
from fieldkit.testing.cards import audiomoth_card
from fieldkit.workspace import init_workspace
from tests.helpers_fat import fat32_mounted
from tests.ingest.conftest import Cli, catalogue

BIG = "20240502_010000.WAV"


@pytest.mark.reliability("C4")
def test_a_card_file_too_large_for_a_fat32_archive_is_refused_before_copying(tmp_path):
    card = tmp_path / "card"
    audiomoth_card(card, start=dt.datetime(2024, 5, 1, 22, 0), count=2)
    with (card / BIG).open("wb") as f:
        f.truncate(FAT_MAX_FILE_BYTES + 1)  # sparse: 4 GiB that take no space
    with fat32_mounted(tmp_path) as fat:
        with init_workspace(tmp_path / "ws", roots={"archive_root": str(fat / "archive")}) as ws:
            code, doc = Cli(ws.root).json("ingest", str(card), "--site", "Wood", "--deployment", "N1")
        archived = [p for p in (fat / "archive").rglob("*") if p.is_file() and p.name != ".ingest.lock"]
        fstype = mount_of(fat).fstype  # vfat, or fuse.fusefat where the kernel has no vfat
    assert code == EXIT_CANTCREAT, doc
    assert doc["error"] == (
        f"{BIG} is {FAT_MAX_FILE_BYTES + 1:,} bytes, but the archive {fat / 'archive'} is on {fat}, a "
        f"{fstype} (FAT) file system that holds files of at most "
        f"{FAT_MAX_FILE_BYTES:,} bytes (1 such file(s) on the card). Nothing was copied.")
    assert doc["path"] == str(card / BIG) and "exFAT, NTFS, ext4" in doc["hint"]
    assert archived == []  # not a byte of the card reached the FAT volume
    assert catalogue(ws.root, "SELECT count(*) FROM recording") == [(0,)]
