"""Processing runs and derivatives: writes by the pipeline driver, reads for the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldkit.catalogue.base import utcnow
from fieldkit.catalogue.models import Derivative, ProcessingRun
from fieldkit.catalogue.queries import iso_utc
from fieldkit.catalogue.records import DerivativeRow, RunDetail, RunRow
from fieldkit.errors import NotFoundError

__all__ = ["create_run", "update_run", "get_run", "list_runs", "replace_derivatives", "run_derivatives"]


def create_run(session: Session, **fields: Any) -> int:
    row = ProcessingRun(state="planned", **fields)
    session.add(row)
    session.flush()
    return row.id


def update_run(session: Session, run_id: int, *, finished: bool = False, **fields: Any) -> None:
    if finished:
        fields["finished_at"] = utcnow()
    session.execute(sa.update(ProcessingRun).where(ProcessingRun.id == run_id).values(**fields))


def _run_fields(r: ProcessingRun) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "state": r.state, "params_hash": r.params_hash, "store_path": r.store_path,
            "n_clips": r.n_clips, "started_at": iso_utc(r.started_at), "finished_at": iso_utc(r.finished_at),
            "timings": r.timings or {}, "message": r.message}


def get_run(session: Session, run_id: int) -> RunDetail:
    row = session.get(ProcessingRun, run_id)
    if row is None:
        known = [str(i) for i in session.scalars(sa.select(ProcessingRun.id).order_by(ProcessingRun.id))]
        raise NotFoundError(f"no processing run {run_id} in the catalogue (runs: {', '.join(known) or 'none'}).",
                            hint="List them with 'fieldkit catalog runs'.")
    return RunDetail(**_run_fields(row), parameters=row.workflow, versions=row.versions)


def list_runs(session: Session) -> list[RunRow]:
    return [RunRow(**_run_fields(r)) for r in session.scalars(sa.select(ProcessingRun).order_by(ProcessingRun.id))]


def replace_derivatives(session: Session, run_id: int, rows: list[Mapping[str, Any]]) -> None:
    """The run's derivative rows, written once by the driver (idempotent on resume)."""
    session.execute(sa.delete(Derivative).where(Derivative.run_id == run_id))
    if rows:
        session.execute(sa.insert(Derivative), [{"run_id": run_id, **r} for r in rows])


def run_derivatives(session: Session, run_id: int) -> list[DerivativeRow]:
    stmt = sa.select(Derivative).where(Derivative.run_id == run_id).order_by(Derivative.clip_start)
    return [DerivativeRow(recording_id=d.recording_id, channel=d.channel, clip_start=d.clip_start,
                          clip_stop=d.clip_stop, state=d.state, error=d.error) for d in session.scalars(stmt)]
