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

import typer
from typer.core import TyperGroup

from fieldkit import __version__
from fieldkit.cli.app_state import CliState
from fieldkit.cli.render import emit_error, emit_json, err
from fieldkit.errors import EXIT_ERROR, EXIT_INTERRUPTED, translate


class FieldkitGroup(TyperGroup):
    """The CLI contract at one edge: every fault ends as one error line and its exit code.

    A :class:`FieldkitError`, or an OS or SQLite fault that :func:`fieldkit.errors.translate`
    can name (missing input, read-only or full destination, busy or damaged catalogue), prints
    one line on stderr and exits with the README's code; with ``--json`` the same error is also
    one JSON document on stdout (``{"error", "code", "hint", "path"}``), as are usage errors.
    Anything else is a bug: it says so, keeps its traceback and exits 1.
    """

    def invoke(self, ctx: typer.Context) -> Any:
        json_out = _wants_json(ctx.args)
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):  # a command's own exit code, or Ctrl-C at a prompt
            raise
        except typer.TyperException as exc:  # Click's usage errors: Click prints them itself
            if json_out:
                emit_json({"error": exc.format_message(), "code": exc.exit_code, "hint": None, "path": None})
            raise
        except KeyboardInterrupt:  # Ctrl-C outside a prompt: the shell's convention, no traceback
            emit_error("interrupted by the user.", EXIT_INTERRUPTED, json_out=json_out)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            fault = translate(exc)
            if fault is None:
                emit_error(f"unexpected {type(exc).__name__}: {exc}", EXIT_ERROR, json_out=json_out,
                           hint="This is a bug: please report it with the traceback below.")
                raise
            emit_error(**fault.to_dict(), json_out=json_out)
            raise typer.Exit(fault.exit_code) from exc


def _wants_json(args: list[str]) -> bool:
    """Whether the sub-command was given ``--json`` (the root sees its arguments before they are parsed)."""
    return "--json" in (args[:args.index("--")] if "--" in args else args)


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
    from fieldkit.cli import catalog, curate, db, ingest, listen, picture, process, schema, serve, workspace_cmds
    from fieldkit.cli.workflows_cmds import app as workflows_app

    workspace_cmds.register(app)
    ingest.register(app)
    process.register(app, catalog.app)
    curate.register(app, catalog.app)
    listen.register(app)
    serve.register(app)
    app.add_typer(db.app, name="db")
    app.add_typer(catalog.app, name="catalog")
    app.add_typer(schema.app, name="schema")
    app.add_typer(workflows_app, name="workflows")
    app.add_typer(picture.app, name="picture")


_register()


def main() -> None:
    """Console-script entry point."""
    sys.exit(app(standalone_mode=True))
