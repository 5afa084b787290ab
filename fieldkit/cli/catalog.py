"""``fieldkit catalog``: what is in the catalogue, as tables (stderr) or JSON (stdout)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

from fieldkit.cli.app_state import state
from fieldkit.cli.render import FORMAT, TableFormat, emit_json, err, table
from fieldkit.errors import ConfigError

app = typer.Typer(help="List sites, deployments, recordings and ingest sessions.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print one JSON array on stdout.")


def _date(value: Optional[str], option: str) -> Optional[dt.datetime]:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{option} {value!r} is not an ISO 8601 date or time (e.g. 2024-05-01 or "
                          "2024-05-01T22:00:00Z).") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@app.command("sites")
def sites(ctx: typer.Context, json_out: bool = JSON, fmt: Optional[TableFormat] = FORMAT) -> None:
    """Sites and how many deployments each has."""
    from fieldkit.catalogue import queries

    with state(ctx).open() as ws, ws.catalogue.read() as s:
        rows = [r.to_dict() for r in queries.list_sites(s)]
    emit_json(rows) if json_out else table("sites", rows, ["id", "name", "deployments", "latitude", "longitude"], fmt)


@app.command("deployments")
def deployments(ctx: typer.Context, site: Optional[str] = typer.Option(None, help="Only this site."),
                json_out: bool = JSON, fmt: Optional[TableFormat] = FORMAT) -> None:
    """Deployments with their site, time zone and recording counts."""
    from fieldkit.catalogue import queries

    with state(ctx).open() as ws, ws.catalogue.read() as s:
        rows = [r.to_dict() for r in queries.list_deployments(s, site=site)]
    if json_out:
        emit_json(rows)
        return
    for row in rows:  # A10: the table shows counts; --json lists the recordings concerned
        row["overlaps"], row["gaps"] = (None if row[k] is None else len(row[k]) for k in ("overlaps", "gaps"))
    table("deployments", rows, ["id", "site", "name", "timezone", "recordings", "overlaps", "gaps"], fmt)


@app.command("recordings")
def recordings(
    ctx: typer.Context,
    site: Optional[str] = typer.Option(None, help="Only this site."),
    deployment: Optional[str] = typer.Option(None, help="Only this deployment."),
    status: Optional[str] = typer.Option(None, help="ok, truncated or quarantined."),
    since: Optional[str] = typer.Option(None, help="Start time at or after (ISO 8601, UTC if no zone)."),
    until: Optional[str] = typer.Option(None, help="Start time before (ISO 8601)."),
    json_out: bool = JSON,
    fmt: Optional[TableFormat] = FORMAT,
) -> None:
    """Archived recordings with their facts, times, QC and origins."""
    from fieldkit.catalogue.listing import RecordingFilter, list_recordings

    filters = RecordingFilter(site=site, deployment=deployment, status=status,
                              start=_date(since, "--since"), end=_date(until, "--until"))
    with state(ctx).open() as ws, ws.reader() as run:
        rows = [r.to_dict() for r in list_recordings(run, filters)]
    if json_out:
        emit_json(rows)
        return
    table("recordings", rows, ["id", "archive_path", "status", "reason", "sample_rate_hz", "duration_s",
                               "start_time_utc", "deployment", "device_serial"], fmt)


@app.command("sessions")
def sessions(ctx: typer.Context, deployment: Optional[str] = typer.Option(None, help="Only this deployment."),
             json_out: bool = JSON, fmt: Optional[TableFormat] = FORMAT) -> None:
    """Ingest sessions: card, state, counts, and whether the card is safe to erase."""
    from fieldkit.catalogue import queries

    with state(ctx).open() as ws, ws.catalogue.read() as s:
        rows = [r.to_dict() for r in queries.list_sessions(s, deployment=deployment)]
    emit_json(rows) if json_out else table(
        "ingest sessions", rows, ["id", "card", "deployment", "state", "files_total", "safe_to_erase", "started_at"], fmt)


@app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    out: Optional[Path] = typer.Option(None, "--out", help="A new SQLite file to write (must not exist)."),
    url: Optional[str] = typer.Option(None, "--url", help="An empty database instead, e.g. postgresql+psycopg://..."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Rebuild the catalogue from the archive, its MHL manifests and ledger into a NEW catalogue.

    The current catalogue is never opened. Every archived file is re-hashed and re-probed.
    """
    from fieldkit.cli.progress import FileProgress
    from fieldkit.ingest.rebuild import rebuild_catalogue

    ws = state(ctx).open(check_schema=False)  # a damaged catalogue is why one rebuilds: never open it
    if (out is None) == (url is None):
        raise typer.BadParameter("give exactly one: --out NEW.sqlite (a new SQLite file) or --url DATABASE_URL "
                                 "(an empty database).", param_hint="'--out' / '--url'")
    target = url or f"sqlite:///{out.expanduser().resolve()}"
    report = rebuild_catalogue(ws, target, progress=FileProgress("rebuild", enabled=not json_out))
    if json_out:
        emit_json(report.to_dict())
    else:
        err.print(f"rebuilt {report.target}: {report.recordings} recordings, {report.sessions} ingest sessions, "
                  f"{report.source_files} card files, {report.manifests} manifest generations")
        for m in report.hash_mismatches:
            err.print(f"[red]HASH MISMATCH[/red] {m['archive_path']}: found {m['found']}, manifest says "
                      f"{m['manifest']} (catalogued quarantined/hash_mismatch)")
        for p in report.missing:
            err.print(f"[red]MISSING[/red] {p}: listed in a manifest, not in the archive (not catalogued)")
        for p in report.unlisted:
            err.print(f"[yellow]in no manifest[/yellow] {p}: not catalogued (ingest it again from its card)")
        for p in report.without_session:
            err.print(f"[yellow]no session record[/yellow] {p}: catalogued without its card and deployment")
        for p in report.ledger_problems:
            err.print(f"[yellow]ledger[/yellow] {p}")
        for tables, why in report.not_rebuilt.items():
            err.print(f"not rebuilt: {tables}: {why}")
        err.print("Check it, then make it the workspace's catalogue: move the old one aside and this one in its "
                  "place (docs/reliability.md, 'Restoring the catalogue').")
    raise typer.Exit(report.exit_code)
