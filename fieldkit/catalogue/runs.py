"""Processing runs and derivatives: writes by the pipeline driver, reads for the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldkit.catalogue.base import utcnow
from fieldkit.catalogue.models import Derivative, ProcessingRun, Recording, RunExclusion
from fieldkit.catalogue.records import iso_utc
from fieldkit.catalogue.records import DerivativeRow, RunDetail, RunExclusionRow, RunRow
from fieldkit.errors import NotFoundError

__all__ = ["create_run", "run_started", "update_run", "get_run", "list_runs", "runs_with_params", "replace_derivatives", "run_derivatives",
           "replace_exclusions", "run_exclusions"]


def create_run(session: Session, **fields: Any) -> int:
    row = ProcessingRun(state="planned", **fields)
    session.add(row)
    session.flush()
    return row.id


def run_started(session: Session, params_hash: str, started_at) -> int | None:
    """The id of the run made with ``params_hash`` that started at ``started_at`` (the key a
    retried creation looks for), or None."""
    return session.scalar(sa.select(ProcessingRun.id).where(ProcessingRun.params_hash == params_hash,
                                                           ProcessingRun.started_at == started_at))


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


def runs_with_params(session: Session, params_hash: str) -> list[RunDetail]:
    """The runs made with parameters hash ``params_hash``, newest first."""
    stmt = (sa.select(ProcessingRun).where(ProcessingRun.params_hash == params_hash)
            .order_by(ProcessingRun.id.desc()))
    return [RunDetail(**_run_fields(r), parameters=r.workflow, versions=r.versions) for r in session.scalars(stmt)]


def replace_derivatives(session: Session, run_id: int, rows: list[Mapping[str, Any]]) -> None:
    """The run's derivative rows, written once by the driver (idempotent on resume)."""
    session.execute(sa.delete(Derivative).where(Derivative.run_id == run_id))
    if rows:
        session.execute(sa.insert(Derivative), [{"run_id": run_id, **r} for r in rows])


def run_derivatives(session: Session, run_id: int) -> list[DerivativeRow]:
    stmt = sa.select(Derivative).where(Derivative.run_id == run_id).order_by(Derivative.clip_start)
    return [DerivativeRow(recording_id=d.recording_id, channel=d.channel, clip_start=d.clip_start,
                          clip_stop=d.clip_stop, state=d.state, error=d.error) for d in session.scalars(stmt)]


def replace_exclusions(session: Session, run_id: int, rows: list[Mapping[str, Any]]) -> None:
    """The recordings the run's selection left out (``recording_id``, ``reason``, ``message``),
    written with the run's first rows (idempotent on resume)."""
    session.execute(sa.delete(RunExclusion).where(RunExclusion.run_id == run_id))
    if rows:
        session.execute(sa.insert(RunExclusion), [{"run_id": run_id, **r} for r in rows])


def run_exclusions(session: Session, run_id: int) -> list[RunExclusionRow]:
    """The recordings run ``run_id`` left out, by recording id, each with its reason."""
    stmt = (sa.select(RunExclusion, Recording.archive_path)
            .join(Recording, RunExclusion.recording_id == Recording.id)
            .where(RunExclusion.run_id == run_id).order_by(RunExclusion.recording_id))
    return [RunExclusionRow(recording_id=e.recording_id, archive_path=path, reason=e.reason, message=e.message)
            for e, path in session.execute(stmt).all()]
