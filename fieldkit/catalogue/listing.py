"""The recordings listing as SQL text: one definition, run through SQLAlchemy or plain ``sqlite3``.

``fieldkit catalog recordings`` is the command a user types most, and on a laptop the catalogue is
an SQLite file. Importing SQLAlchemy, its ORM and the models costs ~0.25 s, most of the command's
start (docs/notes/startup.md). So this listing is written once, as portable SQL over the
migrated schema, with a decoder to :class:`~fieldkit.catalogue.records.RecordingRow` that needs
only the standard library:

- :func:`fieldkit.catalogue.queries.list_recordings` runs it through a SQLAlchemy session (any
  backend: SQLite or PostgreSQL);
- the CLI runs it through :mod:`fieldkit.catalogue.sqlite_reader` on an SQLite catalogue, without
  importing SQLAlchemy.

Both paths hand the same SQL and parameters to their driver and decode the rows the same way;
the tests run the listing on SQLite and PostgreSQL and through both paths.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fieldkit.catalogue.records import RecordingRow, iso_utc

__all__ = ["RecordingFilter", "Runner", "list_recordings", "as_utc"]

#: Runs one SQL statement with ``:name`` parameters and returns its rows as mappings.
Runner = Callable[[str, Mapping[str, Any]], list[Mapping[str, Any]]]


@dataclass(frozen=True)
class RecordingFilter:
    """Filters for :func:`list_recordings`; None means no filter."""

    site: str | None = None
    deployment: str | None = None
    status: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    ids: tuple[int, ...] | None = None


_RECORDING_COLUMNS = (
    "id", "sha256", "size_bytes", "archive_path", "status", "reason", "status_message", "format",
    "declared_extension", "sample_rate_hz", "channels", "bit_depth", "subtype", "frames_declared",
    "frames_present", "duration_s", "start_time_utc", "time_source", "time_discrepancy_s",
    "peak_dbfs", "clipped_samples", "dc_offset", "silent_fraction", "times", "metadata",
)

_FROM = """
FROM recording AS r
LEFT OUTER JOIN deployment AS d ON r.deployment_id = d.id
LEFT OUTER JOIN site AS s ON d.site_id = s.id
LEFT OUTER JOIN device AS dev ON r.device_id = dev.id"""


def _where(filters: RecordingFilter) -> tuple[str, dict[str, Any]]:
    conditions: list[str] = []
    params: dict[str, Any] = {}
    for column, name, value in (("s.name", "site", filters.site), ("d.name", "deployment", filters.deployment),
                                ("r.status", "status", filters.status)):
        if value is not None:
            conditions.append(f"{column} = :{name}")
            params[name] = value
    if filters.start is not None:
        conditions.append("r.start_time_utc >= :start")
        params["start"] = as_utc(filters.start)
    if filters.end is not None:
        conditions.append("r.start_time_utc < :end")
        params["end"] = as_utc(filters.end)
    if filters.ids is not None:
        if not filters.ids:
            conditions.append("1 = 0")
        for i, rec_id in enumerate(filters.ids):
            params[f"id{i}"] = int(rec_id)
        if filters.ids:
            conditions.append("r.id IN (" + ", ".join(f":id{i}" for i in range(len(filters.ids))) + ")")
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), params


def list_recordings(run: Runner, filters: RecordingFilter = RecordingFilter()) -> list[RecordingRow]:
    """Recordings with their deployment, site, device and every card path they were seen at.

    Ordered by start time (recordings without one last), then id.
    """
    where, params = _where(filters)
    columns = ", ".join(f"r.{c}" for c in _RECORDING_COLUMNS)
    rows = run(
        f"SELECT {columns}, d.name AS deployment, s.name AS site, dev.make AS device_make, "
        f"dev.model AS device_model, dev.serial AS device_serial{_FROM}{where} "
        "ORDER BY r.start_time_utc IS NULL, r.start_time_utc, r.id",
        params,
    )
    origins = _source_paths(run, where, params) if rows else {}
    return [_recording_row(row, origins.get(row["id"], ())) for row in rows]


def _source_paths(run: Runner, where: str, params: Mapping[str, Any]) -> dict[int, tuple[str, ...]]:
    """``card:path`` of every sighting of the selected recordings, first seen first, once each."""
    # The selection again as a subquery, rather than a list of ids: no limit on bound parameters.
    rows = run(
        "SELECT sf.recording_id AS recording_id, c.identity AS card, sf.display_path AS path "
        "FROM source_file AS sf JOIN ingest_session AS i ON sf.session_id = i.id "
        "JOIN card AS c ON i.card_id = c.id "
        f"WHERE sf.recording_id IN (SELECT r.id{_FROM}{where}) ORDER BY sf.id",
        params,
    )
    paths: dict[int, list[str]] = {}
    for row in rows:
        entry = f"{row['card']}:{row['path']}"
        seen = paths.setdefault(row["recording_id"], [])
        if entry not in seen:
            seen.append(entry)
    return {rec_id: tuple(found) for rec_id, found in paths.items()}


def _recording_row(row: Mapping[str, Any], source_paths: tuple[str, ...]) -> RecordingRow:
    values = {c: row[c] for c in _RECORDING_COLUMNS}
    values["start_time_utc"] = iso_utc(_datetime(values["start_time_utc"]))
    values["times"] = _json(values["times"])
    values["metadata"] = _json(values["metadata"])
    return RecordingRow(
        **values, source_paths=source_paths, site=row["site"], deployment=row["deployment"],
        # the device row stores "" for an unknown make/model/serial (a unique key cannot hold NULLs)
        device_make=row["device_make"] or None, device_model=row["device_model"] or None,
        device_serial=row["device_serial"] or None,
    )


def as_utc(value: dt.datetime) -> dt.datetime:
    """A bound time as the catalogue stores it: UTC (a naive time is taken as UTC)."""
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _datetime(value: Any) -> dt.datetime | None:
    # SQLite hands back SQLAlchemy's stored text ('2024-05-01 22:00:00.000000', UTC, no zone);
    # PostgreSQL a timestamptz.
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return as_utc(value)


def _json(value: Any) -> dict[str, Any]:
    # JSON text on SQLite, already decoded (JSONB) on PostgreSQL; NULL means "nothing recorded".
    if value is None:
        return {}
    return json.loads(value) if isinstance(value, (str, bytes)) else value
