"""``fieldkit init`` makes the workspace it creates durable (docs/notes/durability.md).

The workspace is created on the write-back FUSE layer of :mod:`fieldkit.testing.faultfs`, which
keeps only what was fsynced (a file's bytes by an fsync of the file, a name by an fsync of its
folder); the power is cut right after ``init`` returns, with nothing else synced. What comes
back must be the whole workspace, opened by the next command as it was left.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fieldkit.workspace import init_workspace
from tests.conftest import fuse_mounted

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every folder (None) and file (its bytes) under ``root``, but SQLite's own files: the
    database is checked by opening it (its -wal and -shm are SQLite's to sync)."""
    return {p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes()
            for p in sorted(root.rglob("*")) if not p.name.startswith("catalogue.sqlite")}


@pytest.mark.slow
def test_a_power_cut_right_after_init_leaves_the_whole_workspace(tmp_path):
    with fuse_mounted(tmp_path / "disk", tmp_path / "mnt", write_back=True) as fs:
        ws_path = fs.mountpoint / "fieldwork" / "ws"  # two new folders: their names must survive too
        with init_workspace(ws_path):
            pass
        made = _tree(ws_path)
        syncs = fs.status()["durable_syncs"]
        fs.power_cut()  # nothing more is synced: only what init made durable is left
        fs.mount()
        survived = _tree(ws_path) if ws_path.is_dir() else {}
        done = subprocess.run([FIELDKIT, "-w", str(ws_path), "catalog", "recordings", "--json"],
                              capture_output=True, text=True, timeout=120, check=False)
    assert {"fieldkit.toml", "archive", "archive/.staging", "stores", "exports", "workflows"} <= made.keys()
    assert any(name.startswith("workflows/") and data for name, data in made.items())
    assert survived == made, sorted(set(made.items()) ^ set(survived.items()))[:5]
    assert syncs >= len(made)  # a file or folder each at least (and the folders above them)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr  # a catalogue at head, empty
