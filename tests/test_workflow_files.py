"""Shipped workflows: one home in the package, reached by a bare name, copied by init."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fieldkit.cli import app
from fieldkit.config.workflow import load_workflow
from fieldkit.config.workflow_files import (
    available_workflows,
    bundled_workflows_dir,
    copy_bundled_workflows,
    resolve_workflow,
)
from fieldkit.errors import EXIT_NOINPUT, NotFoundError, UnknownNameError, UnknownWorkflowError
from fieldkit.workspace import init_workspace

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ["bats-ultrasonic", "birds-16k", "demo", "soundscape"]
runner = CliRunner()


def run(*args: str, cwd: Path):
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def edited_copy(ws_root: Path, name: str = "birds-16k") -> Path:
    """The workspace's copy of a shipped workflow, with its description changed as a team would."""
    path = ws_root / "workflows" / f"{name}.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("description: >", "description: >\n  OUR COPY."),
                    encoding="utf-8")
    return path


def test_the_workflows_live_once_in_the_package():
    assert [p.stem for p in sorted(bundled_workflows_dir().glob("*.yaml"))] == SHIPPED
    assert bundled_workflows_dir().parent.name == "data"
    # the repository's workflows/ folder only points there: no second copy to keep in step
    assert sorted(p.name for p in (REPO / "workflows").iterdir()) == ["README.md"]
    assert not list((REPO / "fieldkit" / "data").glob("*.yaml"))


def test_a_bare_name_resolves_to_the_shipped_file(tmp_path):
    for arg in ("birds-16k", "birds-16k.yaml"):
        assert resolve_workflow(arg, None, cwd=tmp_path) == bundled_workflows_dir() / "birds-16k.yaml"


def test_the_workspace_copy_wins_over_the_shipped_one(tmp_path):
    with init_workspace(tmp_path / "ws") as ws:
        ours = edited_copy(ws.root)
        assert resolve_workflow("birds-16k", ws.root, cwd=tmp_path) == ours
        assert resolve_workflow("demo", ws.root, cwd=tmp_path) == ws.root / "workflows" / "demo.yaml"
        (ws.root / "workflows" / "demo.yaml").unlink()  # a name the workspace lacks falls back
        assert resolve_workflow("demo", ws.root, cwd=tmp_path) == bundled_workflows_dir() / "demo.yaml"


def test_a_path_or_a_file_in_the_current_directory_is_taken_as_given(tmp_path):
    (tmp_path / "birds-16k").write_text("name: mine\nclips:\n  length_s: 1\n", encoding="utf-8")
    assert resolve_workflow("birds-16k", None, cwd=tmp_path) == Path("birds-16k")
    assert resolve_workflow("sub/demo", None, cwd=tmp_path) == Path("sub/demo")
    assert resolve_workflow("./nothing.yaml", None, cwd=tmp_path) == Path("./nothing.yaml")


def test_an_unknown_name_lists_the_known_ones_and_is_missing_input(tmp_path):
    with pytest.raises(UnknownWorkflowError) as caught:
        resolve_workflow("birds-8k", None, cwd=tmp_path)
    assert str(caught.value) == "unknown workflow 'birds-8k'; known: bats-ultrasonic, birds-16k, demo, soundscape."
    assert caught.value.exit_code == EXIT_NOINPUT == 66
    assert isinstance(caught.value, NotFoundError) and isinstance(caught.value, UnknownNameError)
    assert isinstance(caught.value, KeyError)


def test_init_copies_the_shipped_workflows_byte_for_byte(tmp_path):
    with init_workspace(tmp_path / "ws") as ws:
        copies = sorted((ws.root / "workflows").iterdir())
    assert [p.stem for p in copies] == SHIPPED
    for copy in copies:
        assert copy.read_bytes() == (bundled_workflows_dir() / copy.name).read_bytes()


def test_copying_again_keeps_a_teams_edits(tmp_path):
    folder = tmp_path / "workflows"
    assert [p.name for p in copy_bundled_workflows(folder)] == [f"{n}.yaml" for n in SHIPPED]
    (folder / "demo.yaml").write_text("edited", encoding="utf-8")
    (folder / "birds-16k.yaml").unlink()
    assert copy_bundled_workflows(folder) == [folder / "birds-16k.yaml"]
    assert (folder / "demo.yaml").read_text(encoding="utf-8") == "edited"


def test_available_workflows_says_where_each_comes_from(tmp_path):
    with init_workspace(tmp_path / "ws") as ws:
        edited_copy(ws.root)
        (ws.root / "workflows" / "bats-ultrasonic.yaml").unlink()
        found = {w.name: w for w in available_workflows(ws.root)}
    assert list(found) == SHIPPED
    assert [found[n].source for n in SHIPPED] == ["bundled", "workspace", "workspace", "workspace"]
    assert found["birds-16k"].description.startswith("OUR COPY. Dawn and dusk choruses")
    assert "\n" not in found["bats-ultrasonic"].description
    assert found["demo"].summary == "Every recording, 16 kHz, 5 s clips, small features; fast enough for a laptop demo."
    assert found["birds-16k"].summary == "OUR COPY."


def test_cli_list_outside_a_workspace_shows_the_shipped_workflows(tmp_path):
    result = run("workflows", "list", "--json", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [(w["name"], w["source"]) for w in doc] == [(n, "bundled") for n in SHIPPED]
    assert doc[1]["path"] == str(bundled_workflows_dir() / "birds-16k.yaml")
    assert doc[2]["description"] == load_workflow(doc[2]["path"]).description.strip()
    human = run("workflows", "list", cwd=tmp_path)
    assert human.exit_code == 0 and all(n in human.stderr for n in SHIPPED) and human.stdout == ""


def test_cli_list_and_show_inside_a_workspace_see_its_copies(tmp_path):
    with init_workspace(tmp_path / "ws") as ws:
        ours = edited_copy(ws.root)
    listed = json.loads(run("workflows", "list", "--json", cwd=tmp_path / "ws").stdout)
    assert {w["name"]: w["source"] for w in listed} == dict.fromkeys(SHIPPED, "workspace")
    shown = run("-w", str(tmp_path / "ws"), "workflows", "show", "birds-16k", cwd=tmp_path)
    assert shown.exit_code == 0 and shown.stdout == ours.read_text(encoding="utf-8")


def test_cli_show_prints_the_file_or_its_parsed_parameters(tmp_path):
    shipped = bundled_workflows_dir() / "bats-ultrasonic.yaml"
    shown = run("workflows", "show", "bats-ultrasonic", cwd=tmp_path)
    assert shown.exit_code == 0 and shown.stdout == shipped.read_text(encoding="utf-8")
    parsed = run("workflows", "show", "bats-ultrasonic.yaml", "--json", cwd=tmp_path)
    assert parsed.exit_code == 0
    assert json.loads(parsed.stdout) == json.loads(json.dumps(load_workflow(shipped).to_dict()))


def test_cli_unknown_names_exit_66_listing_the_known_ones(tmp_path):
    init_workspace(tmp_path / "ws").close()
    for args in (("workflows", "show", "owls"), ("process", "owls")):
        result = run("-w", str(tmp_path / "ws"), *args, cwd=tmp_path)
        assert result.exit_code == EXIT_NOINPUT, result.output
        assert "unknown workflow 'owls'; known: bats-ultrasonic, birds-16k, demo, soundscape." in result.stderr


def test_cli_a_named_workspace_that_is_missing_is_an_error(tmp_path):
    result = run("-w", str(tmp_path / "nowhere"), "workflows", "list", cwd=tmp_path)
    assert result.exit_code == EXIT_NOINPUT and "no fieldkit workspace" in result.stderr
