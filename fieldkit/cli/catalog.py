"""``fieldkit catalog``: what is in the catalogue, as tables (stderr) or JSON (stdout)."""

from __future__ import annotations

import datetime as dt
from typing import Optional

import typer

from fieldkit.cli.app_state import state
from fieldkit.cli.render import FORMAT, TableFormat, emit_json, table
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
