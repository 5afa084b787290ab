"""``fieldkit workflows list|show``: the workflow files a bare name reaches."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from fieldkit.cli.app_state import state
from fieldkit.cli.render import FORMAT, TableFormat, emit_json, table
from fieldkit.errors import WorkspaceNotFoundError

app = typer.Typer(help="The workflow files shipped with fieldkit and those of the workspace.",
                  no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def _workspace_root(ctx: typer.Context) -> Path | None:
    """The workspace to search first; none is fine unless --workspace or $FIELDKIT_WORKSPACE names one."""
    from fieldkit.config.settings import WORKSPACE_ENV, find_workspace

    explicit = state(ctx).workspace
    try:
        return find_workspace(explicit)
    except WorkspaceNotFoundError:
        if explicit is not None or os.environ.get(WORKSPACE_ENV):
            raise  # a workspace the user named and that is missing is an error, not "none"
        return None


@app.command("list")
def list_(ctx: typer.Context, json_out: bool = JSON, fmt: TableFormat | None = FORMAT) -> None:
    """Name, source (workspace or bundled) and description of every workflow a name can reach."""
    from fieldkit.config.workflow_files import available_workflows

    found = available_workflows(_workspace_root(ctx))
    if json_out:
        emit_json([w.to_dict() for w in found])
    else:
        table("workflows", [{**w.to_dict(), "description": w.summary} for w in found],
              ["name", "source", "description"], fmt)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A workflow name (see 'fieldkit workflows list') or file."),
    json_out: bool = JSON,
) -> None:
    """Print a workflow file as it is (on stdout, to redirect into a file); --json: its parsed parameters."""
    from fieldkit.config.workflow import load_workflow
    from fieldkit.config.workflow_files import resolve_workflow

    path = resolve_workflow(name, _workspace_root(ctx))
    workflow = load_workflow(path)  # validates, so a broken file is reported, not printed
    if json_out:
        emit_json(workflow.to_dict())
    else:
        typer.echo(path.read_text(encoding="utf-8"), nl=False)
