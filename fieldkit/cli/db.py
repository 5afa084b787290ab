"""``fieldkit db``: migrate and check the catalogue schema."""

from __future__ import annotations

import typer

from fieldkit.cli.app_state import state
from fieldkit.cli.render import emit_json, err
from fieldkit.errors import EXIT_CONFIG

app = typer.Typer(help="Catalogue schema: upgrade and check.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """Migrate the catalogue to the newest schema (SQLite files are backed up first)."""
    from fieldkit.catalogue import migrate

    ws = state(ctx).open(check_schema=False)
    before = migrate.status(ws.paths.catalogue_url).current
    backup = migrate.upgrade(ws.paths.catalogue_url)
    after = migrate.status(ws.paths.catalogue_url)
    doc = {"from": before, "to": after.current, "backup": str(backup) if backup else None}
    if json_out:
        emit_json(doc)
    else:
        err.print(f"catalogue at revision {after.current} (was {before or 'empty'})"
                  + (f"; backup {backup}" if backup else ""))


@app.command("check")
def check(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """Exit 0 when no migration is pending and the schema matches the models; 78 otherwise."""
    from fieldkit.catalogue import migrate

    ws = state(ctx).open(check_schema=False)
    st = migrate.status(ws.paths.catalogue_url)
    doc = {"current": st.current, "head": st.head, "pending": st.pending, "drift": st.drift, "ok": st.ok}
    if json_out:
        emit_json(doc)
    elif st.ok:
        err.print(f"catalogue schema is current (revision {st.current}) and matches the models")
    else:
        if st.pending:
            err.print(f"[red]migration pending[/red]: at {st.current or '(empty)'}, head is {st.head}; "
                      "run 'fieldkit db upgrade'")
        for line in st.drift:
            err.print(f"[red]drift[/red]: {line}")
    if not st.ok:
        raise typer.Exit(EXIT_CONFIG)
