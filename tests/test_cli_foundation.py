"""The foundation commands, driven through the real CLI (in-process and as a console script)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.errors import EXIT_CANTCREAT, EXIT_NOINPUT

runner = CliRunner()


def run(*args: str, cwd: Path | None = None, env: dict | None = None):
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)
    finally:
        os.chdir(old)


def test_init_then_db_check_exits_zero(tmp_path):
    ws = tmp_path / "ws"
    assert run("init", str(ws)).exit_code == 0
    result = run("--workspace", str(ws), "db", "check", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"current": "0004", "head": "0004", "pending": False,
                                         "drift": [], "ok": True}
    for sub in ("archive", "archive/.staging", "archive/mhl", "stores", "exports"):
        assert (ws / sub).is_dir()
    con = sqlite3.connect(ws / "catalogue.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_db_check_reports_a_pending_migration(tmp_path):
    ws = tmp_path / "ws"
    run("init", str(ws))
    from fieldkit.catalogue import migrate

    migrate.downgrade(f"sqlite:///{ws / 'catalogue.sqlite'}", "0001")
    result = run("-w", str(ws), "db", "check")
    assert result.exit_code == 78
    assert "migration pending" in result.stderr and "fieldkit db upgrade" in result.stderr
    refused = run("-w", str(ws), "catalog", "recordings", "--json")
    assert refused.exit_code == 78 and json.loads(refused.stdout)["code"] == 78
    upgraded = run("-w", str(ws), "db", "upgrade", "--json")
    doc = json.loads(upgraded.stdout)
    assert doc["from"] == "0001" and doc["to"] == "0004" and Path(doc["backup"]).is_file()
    assert run("-w", str(ws), "db", "check").exit_code == 0


def test_catalog_recordings_on_empty_workspace_prints_empty_array(tmp_path):
    run("init", str(tmp_path / "ws"))
    for args in (("-w", str(tmp_path / "ws")), ()):
        result = run(*args, "catalog", "recordings", "--json", cwd=tmp_path / "ws" if not args else None)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == []
    for command in ("sites", "deployments", "sessions"):
        assert json.loads(run("-w", str(tmp_path / "ws"), "catalog", command, "--json").stdout) == []


def test_workspace_found_by_searching_upward_and_from_env(tmp_path):
    run("init", str(tmp_path / "ws"))
    deep = tmp_path / "ws" / "archive" / "x"
    deep.mkdir(parents=True)
    assert run("catalog", "sites", "--json", cwd=deep).exit_code == 0
    result = run("catalog", "sites", "--json", cwd=tmp_path, env={"FIELDKIT_WORKSPACE": str(tmp_path / "ws")})
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_outside_a_workspace_is_a_one_line_error_naming_init(tmp_path):
    result = run("catalog", "recordings", "--json", cwd=tmp_path)
    assert result.exit_code == EXIT_NOINPUT
    assert json.loads(result.stdout) == {"error": f"no fieldkit workspace in {tmp_path.resolve()} or any parent "
                                         "directory (fieldkit.toml not found).", "code": EXIT_NOINPUT,
                                         "hint": "Create one with 'fieldkit init DIR', or pass --workspace DIR.",
                                         "path": str(tmp_path.resolve())}
    message = result.stderr.strip()
    assert "\n" not in message
    assert str(tmp_path) in message and "fieldkit.toml" in message and "fieldkit init" in message


def test_wrong_workspace_flag_names_the_directory(tmp_path):
    result = run("-w", str(tmp_path / "nope"), "catalog", "sites")
    assert result.exit_code == EXIT_NOINPUT
    assert str(tmp_path / "nope") in result.stderr and "fieldkit init" in result.stderr


def test_init_refuses_an_existing_workspace_and_changes_nothing(tmp_path):
    run("init", str(tmp_path / "ws"))
    before = (tmp_path / "ws" / "fieldkit.toml").read_bytes()
    result = run("init", str(tmp_path / "ws"))
    assert result.exit_code == EXIT_CANTCREAT and "already a fieldkit workspace" in result.stderr
    assert (tmp_path / "ws" / "fieldkit.toml").read_bytes() == before


def test_config_show_json_reports_merged_values_and_sources(tmp_path):
    ws = tmp_path / "ws"
    run("init", str(ws))
    with (ws / "fieldkit.toml").open("a") as fh:
        fh.write('\n# appended by the test\n')
    result = run("-w", str(ws), "config", "show", "--json",
                 env={"FIELDKIT_DASK__N_WORKERS": "7", "FIELDKIT_LOG_LEVEL": "DEBUG"})
    doc = json.loads(result.stdout)
    assert doc["settings"]["dask"]["n_workers"] == 7
    assert doc["sources"]["dask.n_workers"] == "env"
    assert doc["sources"]["log_level"] == "env"
    assert doc["sources"]["archive_root"] == "file"
    assert doc["sources"]["ingest.fsync"] == "default"


def test_config_show_never_prints_a_secret(tmp_path):
    ws = tmp_path / "ws"
    run("init", str(ws))
    env = {"FIELDKIT_SERVE__TOKEN": "tok-s3cr3t-value",
           "FIELDKIT_CATALOGUE_URL": "postgresql+psycopg://alice:pw-s3cr3t@db.example:5432/fk"}
    as_json = run("-w", str(ws), "config", "show", "--json", env=env)
    as_table = run("-w", str(ws), "config", "show", "--format", "tsv", env=env)
    for result in (as_json, as_table):
        assert result.exit_code == 0, result.output
        assert "s3cr3t" not in result.stdout + result.stderr
    doc = json.loads(as_json.stdout)
    assert doc["settings"]["serve"]["token"] == "**********"
    assert doc["settings"]["catalogue_url"] == "postgresql+psycopg://alice:***@db.example:5432/fk"
    assert "alice:***@db.example" in as_table.stderr + as_table.stdout


def test_invalid_setting_names_key_and_value(tmp_path):
    ws = tmp_path / "ws"
    run("init", str(ws))
    result = run("-w", str(ws), "config", "show", env={"FIELDKIT_DASK__N_WORKERS": "0"})
    assert result.exit_code == 78
    assert "dask.n_workers" in result.stderr and "0" in result.stderr


def test_process_with_a_missing_workflow_file_is_missing_input(tmp_path):
    ws = tmp_path / "ws"
    run("init", str(ws))
    result = run("-w", str(ws), "process", str(tmp_path / "no-such-workflow.yaml"))
    assert result.exit_code == EXIT_NOINPUT
    assert "no-such-workflow.yaml does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_demo_creates_workspace_and_prints_where(tmp_path):
    result = run("demo", str(tmp_path / "demo"), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["workspace"] == str((tmp_path / "demo").resolve())
    ingest = next(s for s in doc["stages"] if s["name"] == "ingest")
    assert ingest["counts"]["verified"] == 11 and ingest["counts"]["ignored"] == 2
    assert ingest["counts"]["quarantined"] == 4 and ingest["counts"]["truncated"] == 1
    process = next(s for s in doc["stages"] if s["name"] == "process")
    assert process["state"] == "complete" and process["n_clips"] == 12
    assert (tmp_path / "demo" / process["store"] / "zarr.json").is_file()
    export = next(s for s in doc["stages"] if s["name"] == "export")
    for name in ("README.md", "croissant.json", "lineage.json", "index.parquet"):
        assert (tmp_path / "demo" / export["out_dir"] / name).is_file(), name
    assert (tmp_path / "demo" / "fieldkit.toml").is_file()
    baseline = next(s for s in doc["stages"] if s["name"] == "baseline")  # 12 clips: nothing to measure (#15)
    assert baseline["metrics"]["evaluable"] is False and "splits" not in baseline["metrics"]
    assert baseline["summary"] == baseline["metrics"]["message"] and "too few clips per class" in baseline["summary"]
    assert doc["serve"] == f"fieldkit -w {(tmp_path / 'demo').resolve()} serve"
    again = run("demo", str(tmp_path / "demo"))  # a previous demo workspace is rebuilt
    assert again.exit_code == 0 and "demo workspace" in again.stderr
    assert again.stderr.strip().splitlines()[-1].endswith(doc["serve"])  # it ends with how to browse it
    text = " ".join(again.stderr.split())  # rich wraps long lines
    assert "split by recording (train " in text and "{'" not in text  # words, not a dict's repr (#13)
    assert "not evaluated: too few clips per class" in text and "test accuracy" not in text


def test_demo_never_touches_a_directory_it_did_not_create(tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    result = run("demo", str(tmp_path / "precious"))
    assert result.exit_code == EXIT_CANTCREAT
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"


def test_console_script_end_to_end(tmp_path):
    exe = Path(sys.executable).with_name("fieldkit")
    subprocess.run([str(exe), "init", str(tmp_path / "ws")], check=True, capture_output=True)
    done = subprocess.run([str(exe), "-w", str(tmp_path / "ws"), "catalog", "recordings", "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and json.loads(done.stdout) == []
    outside = subprocess.run([str(exe), "catalog", "recordings", "--json"], cwd=tmp_path,
                             capture_output=True, text=True, env={**os.environ, "FIELDKIT_WORKSPACE": ""})
    assert outside.returncode == EXIT_NOINPUT and json.loads(outside.stdout)["code"] == EXIT_NOINPUT
    assert "fieldkit init" in outside.stderr and len(outside.stderr.strip().splitlines()) == 1
