"""A command imports only what it runs: ``fieldkit --help`` must not pay for the export stack.

Each command runs in a fresh interpreter (``python -c``) on a real workspace; at exit the probe
writes the names in ``sys.modules`` to a file, and the test checks which heavy libraries are
absent. ``benchmarks/cli_startup.py`` measures the time this saves.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fieldkit
from fieldkit.cli import app
from fieldkit.testing.cards import audiomoth_card
from fieldkit.workspace import init_workspace

#: Run ``fieldkit.cli.main`` with ``sys.argv[2:]``; at exit write ``sys.modules`` to ``sys.argv[1]``.
PROBE = """
import atexit, sys
out = sys.argv.pop(1)
def dump():
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("\\n".join(sorted(sys.modules)))
atexit.register(dump)
sys.argv[0] = "fieldkit"
from fieldkit.cli import main
main()
"""

#: Never at start-up: the processing and export stacks (the issue's 3 s).
PROCESSING = ("sklearn", "matplotlib", "dask", "distributed", "xarray", "zarr")
#: Not for these commands either: the scientific stack and table validation.
SCIENTIFIC = ("numpy", "pandas", "scipy", "librosa", "soundfile", "pandera")
#: A command that only reads the catalogue has no workflow file to parse.
WORKFLOWS = ("yaml", "fieldkit.config.workflow", "fieldkit.config.params", "fieldkit.config.workflow_files")


def imported_by(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``fieldkit *args`` in a fresh interpreter; its result and the top-level modules it imported."""
    listing = tmp_path / f"modules-{len(list(tmp_path.glob('modules-*')))}.txt"
    result = subprocess.run([sys.executable, "-c", PROBE, str(listing), *args], check=False, cwd=tmp_path,
                            env=dict(os.environ), capture_output=True, text=True, timeout=120)
    names = listing.read_text(encoding="utf-8").split()
    return result, {name.split(".")[0] for name in names} | set(names)


@pytest.fixture
def workspace_with_recordings(tmp_path: Path) -> Path:
    """An initialised workspace whose catalogue holds two ingested AudioMoth recordings."""
    from fieldkit.ingest.service import IngestRequest, ingest_card

    card = tmp_path / "card"
    audiomoth_card(card, start=dt.datetime(2024, 5, 1, 22, 0), count=2)
    with init_workspace(tmp_path / "ws") as ws:
        ingest_card(ws, IngestRequest(card, "site", "night"))
    return tmp_path / "ws"


def _absent(modules: set[str], heavy: tuple[str, ...]) -> list[str]:
    return [name for name in heavy if name in modules]


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_import_no_library_of_the_work(tmp_path, args):
    result, modules = imported_by(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    heavy = (*PROCESSING, *SCIENTIFIC, "pydantic", "sqlalchemy", "alembic", "click")
    assert _absent(modules, heavy) == []


def test_catalog_recordings_imports_the_catalogue_only(tmp_path, workspace_with_recordings):
    result, modules = imported_by(tmp_path, "-w", str(workspace_with_recordings), "catalog", "recordings")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(".WAV") == 2  # the table lists both recordings
    # On SQLite the revision check and the listing go through sqlite3 (fieldkit.catalogue.
    # sqlite_reader): no SQLAlchemy, no ORM, no Alembic. pydantic comes with typer's parameter
    # coercion and the settings; pydantic-settings and a second copy of click are not needed.
    assert {"sqlite3", "pydantic", "fieldkit.catalogue.sqlite_reader"} <= modules
    assert _absent(modules, (*PROCESSING, *SCIENTIFIC, *WORKFLOWS, "alembic", "sqlalchemy",
                             "pydantic_settings", "click")) == []


def test_init_imports_the_catalogue_and_migrations_only(tmp_path):
    result, modules = imported_by(tmp_path, "init", str(tmp_path / "ws"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ws" / "fieldkit.toml").is_file() and (tmp_path / "ws" / "catalogue.sqlite").is_file()
    assert "alembic" in modules
    assert _absent(modules, (*PROCESSING, *SCIENTIFIC)) == []


def test_the_probe_sees_what_a_command_imports(tmp_path):
    """Control: a command that needs pandas and pandera shows them, so an empty list above means absent."""
    result, modules = imported_by(tmp_path, "schema", "export", "--check", "--out", str(tmp_path / "none"))
    assert result.returncode == 65, result.stderr
    assert {"pandas", "pandera"} <= modules


def test_version_prints_one_plain_line_and_exits_zero():
    result = CliRunner().invoke(app, ["--version"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout == f"fieldkit {fieldkit.__version__}\n"
    assert result.stderr == ""


def test_version_comes_before_the_workspace_is_looked_for(tmp_path):
    result = CliRunner().invoke(app, ["-w", str(tmp_path / "missing"), "--version", "catalog", "sites"])
    assert result.exit_code == 0 and result.stdout == f"fieldkit {fieldkit.__version__}\n"


def test_the_help_texts_name_the_services_choices():
    """The CLI writes out two tuples of choices so that ``--help`` stays cheap; they must not drift."""
    from fieldkit.cli import curate as curate_cli
    from fieldkit.cli import listen as listen_cli
    from fieldkit.curate.datasets import SPLIT_KEYS
    from fieldkit.listen.preview import MODES

    assert curate_cli.SPLIT_KEYS == SPLIT_KEYS
    assert listen_cli.MODES == MODES
