"""One CLI contract, checked for every command: README exit codes, one JSON document, no traceback.

The first tests walk the typer app's command tree, so a new command is checked the day it is
added: each leaf runs on a missing input (no workspace, or a missing file or id) with and without
``--json``. The others drive a few commands into faults beyond missing input, on real files: a
file where the workspace needs a folder, a read-only mount, a damaged and a busy catalogue.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.errors import (
    EXIT_CANTCREAT,
    EXIT_DATAERR,
    EXIT_INTERRUPTED,
    EXIT_NOINPUT,
    EXIT_TEMPFAIL,
    EXIT_TERMINATED,
    EXIT_USAGE,
)
from fieldkit.workspace import init_workspace
from tests.conftest import mounted

REPO = Path(__file__).resolve().parents[1]
ERROR_KEYS = {"error", "code", "hint", "path"}
runner = CliRunner()


def readme_exit_codes() -> set[int]:
    """The codes of the README's exit-code table: the promise the CLI keeps."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    return {int(code) for code in re.findall(r"^\| (\d+) \|", section, flags=re.MULTILINE)}


def leaf_commands(command=None, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    """Every command a user can run, as (words, command), from the typer app's tree."""
    command = command or typer.main.get_command(app)
    if hasattr(command, "commands"):
        for name, sub in sorted(command.commands.items()):
            yield from leaf_commands(sub, (*path, name))
    else:
        yield path, command


LEAVES = dict(leaf_commands())

#: Argument values where a generic one would be a different fault (a malformed RUN:CLIP is 78).
ARGUMENTS = {("lineage",): ["999:0"]}


def _value(param, tmp_path: Path) -> str:
    annotation = str(param.type_descriptor.annotation)
    if "Path" in annotation:
        return str(tmp_path / f"missing-{param.name}")
    return "999" if "int" in annotation or "float" in annotation else "missing"


def missing_input_argv(words: tuple[str, ...], tmp_path: Path) -> tuple[list[str], int]:
    """A command line whose only fault is a missing input, and the code it must end with.

    Every argument (and required option) names a missing file or id, in a missing workspace.
    ``init``, ``demo`` and ``schema export`` read no input: they are given a destination below a
    file instead (output cannot be created).
    """
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder\n")
    if words in (("init",), ("demo",)):
        return [*words, str(in_the_way / "ws")], EXIT_CANTCREAT
    if words == ("schema", "export"):
        return [*words, "--out", str(in_the_way / "schemas")], EXIT_CANTCREAT
    argv = ["--workspace", str(tmp_path / "no-workspace"), *words]
    params = LEAVES[words].params
    argv += ARGUMENTS.get(words) or [_value(p, tmp_path) for p in params if p.param_type_name == "argument"]
    for p in params:
        if p.param_type_name == "option" and p.required:
            argv += [p.opts[0], _value(p, tmp_path)]
    return argv, EXIT_NOINPUT


def assert_json_error(result, code: int) -> dict:
    """Exit ``code``, exactly one JSON error document on stdout, one error line, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    doc = json.loads(result.stdout)  # exactly one document: trailing text is a JSONDecodeError
    assert set(doc) == ERROR_KEYS and doc["code"] == code and doc["error"], doc
    assert result.stderr.strip().startswith("error:")
    return doc


def test_the_walk_sees_every_command_and_each_has_json():
    assert len(LEAVES) >= 26 and ("catalog", "recordings") in LEAVES and ("baseline",) in LEAVES
    for words, command in LEAVES.items():
        assert any("--json" in p.opts for p in command.params), f"'fieldkit {' '.join(words)}' has no --json"


def test_readme_table_holds_every_code_the_contract_uses():
    assert {0, 1, 2, 3, EXIT_DATAERR, EXIT_NOINPUT, EXIT_CANTCREAT, EXIT_TEMPFAIL, 78,
            EXIT_INTERRUPTED, EXIT_TERMINATED} == readme_exit_codes()


@pytest.mark.parametrize("words", list(LEAVES), ids=" ".join)
def test_missing_input_with_json_is_one_error_document(words, tmp_path):
    argv, code = missing_input_argv(words, tmp_path)
    result = runner.invoke(app, [*argv, "--json"])
    assert code in readme_exit_codes()
    doc = assert_json_error(result, code)
    assert doc["path"] is not None and str(tmp_path) in doc["path"], doc


@pytest.mark.parametrize("words", list(LEAVES), ids=" ".join)
def test_missing_input_without_json_is_one_human_line(words, tmp_path):
    argv, code = missing_input_argv(words, tmp_path)
    result = runner.invoke(app, argv)
    assert result.exit_code == code and "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr


def test_a_usage_error_with_json_is_one_error_document(tmp_path):
    result = runner.invoke(app, ["catalog", "recordings", "--json", "--no-such-option"])
    doc = json.loads(result.stdout)
    assert result.exit_code == EXIT_USAGE and doc["code"] == EXIT_USAGE and set(doc) == ERROR_KEYS
    assert "--no-such-option" in doc["error"] and "Traceback" not in result.output


def test_an_unforeseen_exception_is_a_bug_with_its_traceback():
    from fieldkit.cli.app import FieldkitGroup

    buggy = typer.Typer(cls=FieldkitGroup)

    @buggy.command("broken")
    def broken(json_out: bool = typer.Option(False, "--json")) -> None:
        raise KeyError("a key nobody expected")

    @buggy.command("other")
    def other() -> None:  # a second command, so that typer keeps the group
        pass

    result = runner.invoke(buggy, ["broken", "--json"])
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)  # the traceback is kept
    doc = json.loads(result.stdout)
    assert doc["code"] == 1 and "KeyError" in doc["error"] and "a bug: please report it" in doc["hint"]
    assert "a bug: please report it" in result.stderr


def test_baseline_on_a_folder_that_is_not_an_export(tmp_path):
    (tmp_path / "not-an-export").mkdir()
    doc = assert_json_error(runner.invoke(app, ["baseline", str(tmp_path / "not-an-export"), "--json"]),
                            EXIT_NOINPUT)
    assert "no export.json" in doc["error"] and doc["path"] == str(tmp_path / "not-an-export")


# -- faults beyond missing input, on real files ------------------------------------------------


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    init_workspace(tmp_path / "ws").close()
    return tmp_path / "ws"


def test_a_file_where_the_workspace_needs_a_folder_is_output_that_cannot_be_created(ws):
    # Root ignores permission bits, so "read-only" is made real by a file in the way of exports/.
    shutil.rmtree(ws / "exports")
    (ws / "exports").write_text("a file where a folder belongs\n")
    doc = assert_json_error(runner.invoke(app, ["-w", str(ws), "report", "--json"]), EXIT_CANTCREAT)
    assert doc["path"].startswith(str(ws / "exports"))


@pytest.fixture
def read_only_exports(ws: Path, tmp_path: Path) -> Iterator[Path]:
    """``exports/`` as a read-only bind mount: EROFS even for root."""
    (tmp_path / "ro-source").mkdir()
    with mounted(ws / "exports", "--bind", "-o", "ro", str(tmp_path / "ro-source")):
        yield ws


@pytest.fixture
def full_volume(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: too small for a catalogue, so SQLite meets ENOSPC."""
    (tmp_path / "tiny").mkdir()
    with mounted(tmp_path / "tiny", "-t", "tmpfs", "-o", "size=64k", "tmpfs") as volume:
        yield volume


@pytest.mark.reliability("C4")
def test_a_full_destination_is_output_that_cannot_be_created(full_volume):
    doc = assert_json_error(runner.invoke(app, ["init", str(full_volume / "ws"), "--json"]), EXIT_CANTCREAT)
    assert "full" in doc["error"] and "Free space" in doc["hint"]


@pytest.mark.reliability("C4")
def test_a_read_only_destination_is_output_that_cannot_be_created(read_only_exports):
    ws = read_only_exports
    doc = assert_json_error(runner.invoke(app, ["-w", str(ws), "report", "--json"]), EXIT_CANTCREAT)
    assert "read-only" in doc["error"] and doc["path"].startswith(str(ws / "exports"))
    human = runner.invoke(app, ["-w", str(ws), "report"])
    assert human.exit_code == EXIT_CANTCREAT and "Traceback" not in human.output and human.stdout == ""


@pytest.fixture
def read_only_workspace(ws: Path) -> Iterator[Path]:
    """The whole workspace bind-mounted read-only over itself."""
    with mounted(ws, "--bind", "-o", "ro", str(ws)):
        yield ws


@pytest.mark.parametrize("words", [("catalog", "recordings"), ("db", "upgrade"), ("verify",)], ids=" ".join)
def test_a_read_only_workspace_is_output_that_cannot_be_created(read_only_workspace, words):
    # SQLite in WAL mode creates catalogue.sqlite-wal and -shm even to read: a reader needs them too.
    doc = assert_json_error(runner.invoke(app, ["-w", str(read_only_workspace), *words, "--json"]), EXIT_CANTCREAT)
    assert "catalogue" in doc["error"] and "read-only" in doc["hint"]


def damage(catalogue: Path) -> None:
    """Overwrite every page after the 100-byte header: the file still says it is SQLite."""
    con = sqlite3.connect(catalogue)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = catalogue.read_bytes()
    catalogue.write_bytes(data[:100] + bytes([0xDE, 0xAD, 0xBE, 0xEF]) * ((len(data) - 100) // 4))


#: Commands that never open the catalogue; every other one must meet a damaged catalogue cleanly.
NO_CATALOGUE = {("init",), ("demo",), ("schema", "export"), ("config", "show"), ("baseline",),
                ("workflows", "list"), ("workflows", "show"),
                ("catalog", "rebuild")}  # rebuilds from the archive: a damaged catalogue is why one runs it


@pytest.mark.parametrize("words", [w for w in LEAVES if w not in NO_CATALOGUE], ids=" ".join)
@pytest.mark.reliability("H2")
def test_a_damaged_catalogue_is_invalid_data_with_a_restore_hint(ws, words, tmp_path):
    damage(ws / "catalogue.sqlite")
    argv, _ = missing_input_argv(words, tmp_path)
    argv[argv.index("--workspace") + 1] = str(ws)  # the workspace is there; its catalogue is damaged
    doc = assert_json_error(runner.invoke(app, [*argv, "--json"]), EXIT_DATAERR)
    assert "damaged" in doc["error"] and "backup" in doc["hint"]
    human = runner.invoke(app, argv)
    assert human.exit_code == EXIT_DATAERR and "Traceback" not in human.output
    assert len(human.stderr.strip().splitlines()) == 1


@contextlib.contextmanager
def exclusive_lock(catalogue: Path) -> Iterator[None]:
    """Another connection holds ``BEGIN EXCLUSIVE`` on the catalogue."""
    holder = sqlite3.connect(catalogue, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.reliability("E2")
def test_a_busy_catalogue_is_a_temporary_failure(ws, tmp_path, monkeypatch):
    from fieldkit.catalogue import migrate, sqlite_reader
    from fieldkit.testing.cards import audiomoth_card

    monkeypatch.setattr(sqlite_reader, "BUSY_TIMEOUT_MS", 200)  # the lock is never released: do not wait 10 s
    audiomoth_card(tmp_path / "card", start=dt.datetime(2024, 5, 1, 22, 0), count=1)
    ingest = ["-w", str(ws), "ingest", str(tmp_path / "card"), "--site", "s", "--deployment", "d"]
    with exclusive_lock(ws / "catalogue.sqlite"):
        assert_json_error(runner.invoke(app, [*ingest, "--json"]), EXIT_TEMPFAIL)
        human = runner.invoke(app, ingest)
    assert human.exit_code == EXIT_TEMPFAIL and "Traceback" not in human.output and human.stdout == ""
    migrate.downgrade(f"sqlite:///{ws / 'catalogue.sqlite'}", "0002")  # so that 'db upgrade' has to write
    with exclusive_lock(ws / "catalogue.sqlite"):  # met by Alembic, outside fieldkit's sessions
        doc = assert_json_error(runner.invoke(app, ["-w", str(ws), "db", "upgrade", "--json"]), EXIT_TEMPFAIL)
    assert "busy" in doc["error"]


# -- the translation itself, on real exceptions ------------------------------------------------


def _raised(action) -> BaseException:
    try:
        action()
    except BaseException as exc:  # noqa: BLE001 - the test wants whatever the OS or SQLite raises
        return exc
    raise AssertionError("expected an exception")


def test_translate_names_what_it_can_and_nothing_else(tmp_path):
    from fieldkit.errors import translate

    (tmp_path / "a-file").write_text("x")
    (tmp_path / "not.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    cases = [
        ((tmp_path / "missing.txt").read_text, EXIT_NOINPUT, "missing.txt does not exist"),
        (lambda: (tmp_path / "a-file" / "x").mkdir(), EXIT_CANTCREAT, "cannot create"),
        (lambda: (tmp_path / "a-file").mkdir(), EXIT_CANTCREAT, "cannot create"),
        (lambda: sqlite3.connect(tmp_path / "not.sqlite").execute("SELECT * FROM sqlite_master").fetchall(),
         EXIT_DATAERR, "the catalogue is damaged"),
    ]
    for action, code, message in cases:
        exc = _raised(action)
        fault = translate(exc)
        assert fault is not None and fault.exit_code == code and message in str(fault), (exc, fault)
        assert fault.__cause__ is exc
    full = translate(OSError(28, "No space left on device", "/data/out.zarr"))
    assert full.exit_code == EXIT_CANTCREAT and full.to_dict() == {
        "error": "cannot write /data/out.zarr: No space left on device.", "code": EXIT_CANTCREAT,
        "hint": "Free space on that volume and run the command again.", "path": "/data/out.zarr"}
    assert translate(_raised(lambda: {}["key"])) is None  # a bug stays a bug
    assert translate(OSError(5, "Input/output error")) is None  # EIO: not named, so not guessed
