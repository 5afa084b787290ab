"""``fieldkit schema``: the JSON Schemas of fieldkit's tables and files."""

from __future__ import annotations

from pathlib import Path

import typer

from fieldkit.cli.render import emit_json, err
from fieldkit.errors import EXIT_DATAERR

app = typer.Typer(help="JSON Schemas of the recordings, QC, annotation and export tables, and settings.",
                  no_args_is_help=True)


@app.command("export")
def export(
    out: Path = typer.Option(Path("schemas"), "--out", help="Directory to write *.schema.json into."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 65 if a file differs."),
    json_out: bool = typer.Option(False, "--json", help="Print the file list as JSON on stdout."),
) -> None:
    """Write (or with --check, compare) one JSON Schema file per table."""
    from fieldkit.model.tables import json_schemas, render, write_json_schemas

    if check:
        stale = [name for name, schema in json_schemas().items()
                 if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != render(schema)]
        emit_json({"stale": stale}) if json_out else err.print(
            "schemas up to date" if not stale else f"[red]out of date[/red]: {', '.join(stale)}")
        if stale:
            raise typer.Exit(EXIT_DATAERR)
        return
    written = write_json_schemas(out)
    emit_json([str(p) for p in written]) if json_out else err.print(
        f"wrote {len(written)} schemas to {out}")
