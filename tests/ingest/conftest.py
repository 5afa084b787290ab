from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.testing.cards import add_broken_files, audiomoth_card


@pytest.fixture
def card(tmp_path: Path) -> Path:
    """An AudioMoth card: 6 good 1-s recordings, CONFIG.TXT, the five broken kinds, macOS junk."""
    root = tmp_path / "card"
    audiomoth_card(root, start=dt.datetime(2024, 5, 1, 22, 0), count=6)
    add_broken_files(root)
    (root / "._20240501_220000.WAV").write_bytes(b"\0\5\26\7" + b"\0" * 60)
    (root / ".Spotlight-V100").mkdir()
    (root / ".Spotlight-V100" / "store.db").write_bytes(b"junk")
    return root


def catalogue(ws: Path, sql: str) -> list[tuple]:
    """The rows ``sql`` selects from the SQLite catalogue of the workspace at ``ws``, read with
    sqlite3 itself rather than through fieldkit."""
    con = sqlite3.connect(ws / "catalogue.sqlite")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


class Cli:
    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.runner = CliRunner()

    def __call__(self, *args: str):
        return self.runner.invoke(app, ["-w", str(self.workspace), *args], catch_exceptions=False)

    def json(self, *args: str):
        result = self(*args, "--json")
        return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def cli(workspace) -> Cli:
    return Cli(workspace.root)
