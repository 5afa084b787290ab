"""Tables that read well anywhere (issue #13): TSV when stderr is not a terminal or with
``--format tsv``, rich tables on a terminal that never wrap a path, numbers rounded for humans with
units in the headers, no Python reprs in human lines, and ``--json`` at full precision. Real
workspaces holding the bundled sample card, driven through the real CLI."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from fieldkit.cli import app, progress, render
from fieldkit.cli.render import header, human, human_counts

SAMPLE_CARD = Path(__file__).resolve().parents[1] / "fieldkit" / "data" / "sample_card"
RECORDING_HEADERS = ["id", "archive path", "status", "reason", "sample rate Hz", "duration s", "start time UTC",
                     "deployment", "device serial"]
runner = CliRunner()


def run(ws: Path, *args: str, columns: int = 40):
    """The CLI in a narrow "terminal" width: a table that wrapped would show it."""
    return runner.invoke(app, ["-w", str(ws), *args], env={"COLUMNS": str(columns)}, catch_exceptions=False)


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tables") / "ws"
    assert runner.invoke(app, ["init", str(root)]).exit_code == 0
    ingest = run(root, "ingest", str(SAMPLE_CARD), "--site", "Wood", "--deployment", "N1")
    assert ingest.exit_code == 3, ingest.stderr  # the card holds broken files on purpose
    return root


@pytest.fixture
def terminal(monkeypatch) -> io.StringIO:
    """A real rich console that is a terminal, 100 columns wide, in place of stderr's."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None, highlight=False)
    monkeypatch.setattr(render, "err", console)
    monkeypatch.setattr(progress, "err", console)
    return out


def _expected_row(rec: dict) -> list[str]:
    start = rec["start_time_utc"]
    return [str(rec["id"]), rec["archive_path"], rec["status"], rec["reason"] or "", str(rec["sample_rate_hz"] or ""),
            "" if rec["duration_s"] is None else f"{rec['duration_s']:.1f}",
            "" if start is None else re.sub(r"\.\d+Z$", "Z", start), rec["deployment"], rec["device_serial"] or ""]


def test_recordings_off_a_terminal_are_tab_separated_whole_and_rounded(ws):
    records = json.loads(run(ws, "catalog", "recordings", "--json").stdout)
    for args in ((), ("--format", "tsv"), ("--format", "TSV")):  # redirected stderr and the option agree
        result = run(ws, "catalog", "recordings", *args)
        assert result.exit_code == 0 and result.stdout == ""  # tables stay on stderr, like every human line
        lines = result.stderr.splitlines()
        assert lines[0] == "# recordings"
        assert lines[1].split("\t") == RECORDING_HEADERS
        assert [line.split("\t") for line in lines[2:]] == [_expected_row(r) for r in records]
    assert len(records) == 11 and not any("│" in line or "\x1b" in line for line in lines)
    assert max(len(line) for line in lines) > 40  # nothing was wrapped to COLUMNS=40


def test_json_keeps_full_precision_while_the_table_rounds(ws):
    records = {r["archive_path"]: r for r in json.loads(run(ws, "catalog", "recordings", "--json").stdout)}
    truncated = records["Wood/N1/20200404_103500.WAV"]
    assert truncated["duration_s"] == 163818 / 32000  # 5.1193125 s: the frames present, unrounded
    assert truncated["status"] == "truncated"
    rows = {line.split("\t")[1]: line.split("\t") for line in run(ws, "catalog", "recordings").stderr.splitlines()[2:]}
    assert rows["Wood/N1/20200404_103500.WAV"][5] == "5.1"
    sessions = json.loads(run(ws, "catalog", "sessions", "--json").stdout)
    assert re.search(r"\.\d{6}Z$", sessions[0]["started_at"])  # microseconds in JSON
    tsv = run(ws, "catalog", "sessions").stderr.splitlines()
    assert tsv[1].split("\t") == ["id", "card", "deployment", "state", "files total", "safe to erase", "started at"]
    assert tsv[2].split("\t") == ["1", sessions[0]["card"], "N1", "complete", "13", "yes",
                                  re.sub(r"\.\d+Z$", "Z", sessions[0]["started_at"])]


def test_an_empty_table_in_tsv_still_has_its_header(ws):
    result = run(ws, "catalog", "runs")
    assert result.stderr.splitlines() == ["# processing runs: none", "id\tname\tstate\tn clips\tstore path\tstarted at"]


def test_on_a_terminal_a_rich_table_that_never_wraps_a_path(ws, terminal):
    records = json.loads(run(ws, "catalog", "recordings", "--json").stdout)
    assert run(ws, "catalog", "recordings").exit_code == 0
    text = terminal.getvalue()
    assert "┃ id" in text and "archive path" in text  # rich's box, not TSV
    body = [line for line in text.splitlines() if line.startswith("│")]
    assert len(body) == len(records)  # one line per recording: no cell wrapped onto a second line
    for line, rec in zip(body, records):
        cell = line.split("│")[2].strip()
        assert cell == rec["archive_path"] or (cell.startswith("…") and rec["archive_path"].endswith(cell[1:]))
    assert any(rec["archive_path"] in text for rec in records)
    terminal.truncate(0)
    terminal.seek(0)
    assert run(ws, "catalog", "recordings", "--format", "tsv").exit_code == 0  # --format tsv wins on a terminal
    assert terminal.getvalue().splitlines()[1].split("\t") == RECORDING_HEADERS


def test_long_free_text_folds_on_a_terminal_but_paths_do_not(terminal, tmp_path):
    root = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(root)]).exit_code == 0
    card = shutil.copytree(SAMPLE_CARD, tmp_path / "card")
    assert run(root, "ingest", str(card), "--site", "Wood", "--deployment", "N2").exit_code == 3
    text = terminal.getvalue()
    assert "needs attention" in text
    for name in ("20200404_103000.WAV", "20200404_104000.WAV", "20200404_105000.WAV"):
        assert f"│ {name} │" in text  # the file cell whole, on one line
    message = next(line for line in text.splitlines() if "│ 20200404_105000.WAV │" in line)
    assert "not a known" in message and "see what it holds" not in message  # the message folds onto more lines
    assert "see what it holds" in text
    files = [line for line in text.splitlines() if "copy files" in line][-1]
    assert "11/11" in files and "/s" not in files  # the files bar counts files, not bytes/s


def test_verify_counts_files_as_files_and_bytes_as_bytes(ws, terminal):
    assert run(ws, "verify").exit_code == 0
    lines = terminal.getvalue().splitlines()
    files = [line for line in lines if "verify files" in line][-1]
    weight = [line for line in lines if "verify bytes" in line][-1]
    assert "11/11" in files and "B" not in files.replace("verify files", "")  # no bytes, no bytes/s
    assert re.search(r"MB .*/s", weight)


def test_no_python_reprs_in_human_output(ws, tmp_path):
    assert runner.invoke(app, ["init", str(tmp_path / "other")]).exit_code == 0
    commands = [("catalog", "sites"), ("catalog", "deployments"), ("catalog", "recordings"), ("catalog", "sessions"),
                ("catalog", "runs"), ("catalog", "annotations"), ("dataset", "list"), ("verify",),
                ("config", "show"), ("workflows", "list")]
    for args in commands:
        result = run(ws, *args, columns=200)
        assert result.exit_code == 0, (args, result.stderr)
        assert not re.search(r"[{\[]['\"]", result.stderr), (args, result.stderr)
    again = run(ws, "ingest", str(SAMPLE_CARD), "--site", "Wood", "--deployment", "N1")
    assert not re.search(r"[{\[]['\"]", again.stderr)


def test_headers_carry_units():
    assert header("duration_s") == "duration s"
    assert header("sample_rate_hz") == "sample rate Hz"
    assert header("size_bytes") == "size MB"
    assert header("start_time_utc") == "start time UTC"
    assert header("n_clips") == "n clips"


def test_numbers_are_rounded_for_humans():
    assert human(19.541927437641725, "duration_s") == "19.5"
    assert human(60, "duration_s") == "60"
    assert human(3_840_320, "size_bytes") == "3.8"
    assert human(0.123456, "accuracy") == "0.123"
    assert human(1234.5678, "rate") == "1235"  # never an exponent, never fewer integer digits
    assert human(-33.868812345, "latitude") == "-33.86881"
    assert human(True) == "yes" and human(None) == ""
    assert human(dt.datetime(2024, 5, 1, 22, 0, 0, 123456, tzinfo=dt.timezone.utc)) == "2024-05-01T22:00:00Z"
    assert human("2024-05-01T22:00:00.5+10:00", "started_at") == "2024-05-01T22:00:00+10:00"
    assert human(float("nan")) == "nan"
    assert human(np.float64(0.000123456)) == "0.000123" and human(np.bool_(False)) == "no"


def test_mappings_and_lists_read_as_words():
    assert human_counts({"train": 7, "validation": 2, "test": 3}) == "train 7, validation 2, test 3"
    assert human_counts({}) == "none"
    assert human({"train": 7}) == "train 7" and human(["a.wav", "b.wav"]) == "a.wav, b.wav"


def test_the_format_option_is_one_shared_definition():
    """Every command that prints a table takes the same --format, from render.FORMAT."""
    import typer.main

    group = typer.main.get_command(app)
    tables = [("catalog", "sites"), ("catalog", "deployments"), ("catalog", "recordings"), ("catalog", "sessions"),
              ("catalog", "runs"), ("catalog", "run"), ("catalog", "annotations"), ("dataset", "list"),
              ("dataset", "create"), ("ingest",), ("baseline",), ("config", "show"), ("workflows", "list")]
    for path in tables:
        cmd = group
        for name in path:
            cmd = cmd.commands[name]
        option = next(p for p in cmd.params if "--format" in p.opts)
        assert option.help == render.FORMAT.help, path
    refused = runner.invoke(app, ["catalog", "sites", "--format", "csv"])
    assert refused.exit_code == 2 and "'table'" in refused.output and "'tsv'" in refused.output


def test_sizes_read_in_megabytes_and_gigabytes(tmp_path):
    from fieldkit.cli.render import human_size

    assert human_size(3_537_152) == "3.5 MB" and human_size(2_345_678_901) == "2.35 GB"
    root = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(root)]).exit_code == 0
    plan = json.loads(run(root, "ingest", str(SAMPLE_CARD), "--site", "W", "--deployment", "D", "--dry-run",
                          "--json").stdout)
    line = " ".join(run(root, "ingest", str(SAMPLE_CARD), "--site", "W", "--deployment", "D", "--dry-run",
                        columns=300).stderr.split())
    assert line.startswith(f"would ingest {plan['to_copy']} files ({human_size(plan['bytes_to_copy'])}) from ")
    assert line.endswith("; enough space: yes") and isinstance(plan["bytes_to_copy"], int)
