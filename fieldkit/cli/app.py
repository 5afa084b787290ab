"""The root ``fieldkit`` command: global options, error translation, sub-command registration.

Exit codes (see README): 0 ok; 1 unexpected error; 2 usage; 3 finished but some files were
quarantined, truncated or failed; 65 invalid data; 66 missing input (workspace, file, id);
73 output cannot be created; 75 temporary (lock held, catalogue busy); 78 configuration.

Start-up cost: every command module is imported here (typer needs their signatures for
``--help``), so those modules import only typer, rich's console and :mod:`fieldkit.errors` at
the top, and each command imports the services it calls inside its body. That is the one lazy
mechanism in fieldkit: plain function-level imports at the edge, and package ``__init__`` files
that re-export nothing. We chose it over ``lazy_loader`` or module ``__getattr__`` because it
needs no stub files and no import hooks, linters and type checkers see ordinary imports, and a
missing module fails in the command that needs it (``tests/test_cli_startup.py`` checks what
``--help``, ``catalog recordings`` and ``init`` import).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Optional

import click
import typer
from typer.core import TyperGroup

from fieldkit import __version__
from fieldkit.cli.app_state import CliState
from fieldkit.cli.render import err
from fieldkit.errors import FieldkitError


class FieldkitGroup(TyperGroup):
    """Translates :class:`FieldkitError` into a one-line message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FieldkitError as exc:
            err.print(f"[bold red]error:[/bold red] {exc}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from exc


app = typer.Typer(
    name="fieldkit",
    cls=FieldkitGroup,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    help="From recorder SD cards to curated, ML-ready bioacoustic datasets.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fieldkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    workspace: Optional[str] = typer.Option(
        None, "--workspace", "-w", help="Workspace directory (default: $FIELDKIT_WORKSPACE, "
        "else the current directory or a parent holding fieldkit.toml).",
    ),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv: debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    from rich.logging import RichHandler

    level = logging.WARNING if quiet else (logging.INFO if verbose == 1 else logging.DEBUG if verbose > 1 else logging.WARNING)
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)], force=True)
    ctx.obj = CliState(workspace=workspace)


def _register() -> None:
    from fieldkit.cli import catalog, curate, db, ingest, listen, process, schema, workspace_cmds
    from fieldkit.cli.workflows_cmds import app as workflows_app

    workspace_cmds.register(app)
    ingest.register(app)
    process.register(app, catalog.app)
    curate.register(app, catalog.app)
    listen.register(app)
    app.add_typer(db.app, name="db")
    app.add_typer(catalog.app, name="catalog")
    app.add_typer(schema.app, name="schema")
    app.add_typer(workflows_app, name="workflows")


_register()


def main() -> None:
    """Console-script entry point."""
    sys.exit(app(standalone_mode=True))
