"""``fieldkit process``: the driver. It plans from the catalogue, creates the store, hands plain
task specs to Dask (a LocalCluster by default, or any scheduler address), follows them with
``as_completed``, and alone writes the ``processing_run`` and ``derivative`` rows."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fieldkit.catalogue import runs as run_rows
from fieldkit.catalogue.records import RunDetail
from fieldkit.catalogue.retry import write_with_retry
from fieldkit.config.workflow import Workflow
from fieldkit.errors import (
    EXIT_OK,
    EXIT_PARTIAL,
    ClusterUnavailableError,
    ConfigError,
    RunInterruptedError,
    RunStorageUnavailableError,
)
from fieldkit.faults import crashpoint
from fieldkit.io.storage_errors import unreachable
from fieldkit.pipeline.clients import PATH_WORDS, BackgroundClient, connector
from fieldkit.pipeline.execution import JOBQUEUE_KINDS, choose_path
from fieldkit.pipeline.plan import RunPlan, exclusion_counts, plan_run, selection_hash
from fieldkit.pipeline.runloop import audio_stream, execute
from fieldkit.pipeline.runstore import (
    abandon,
    identical_run,
    library_versions,
    open_or_create,
    pending_tasks,
    store_of,
)
from fieldkit.pipeline.spec import TaskResult
from fieldkit.pipeline.stopping import StopSignals
from fieldkit.store.zarr_store import done_mask, finalize_store, nonfinite_counts

if TYPE_CHECKING:  # annotation only: importing it would load Alembic with every service
    from fieldkit.workspace import Workspace

__all__ = ["PlanPreview", "RunReport", "library_versions", "preview_run", "run_workflow"]

log = logging.getLogger(__name__)
@dataclass
class RunReport:
    run_id: int
    name: str
    state: str
    store: str
    n_clips: int
    n_recordings: int
    tasks: int
    clips_computed: int = 0
    clips_skipped: int = 0
    seconds: float = 0.0
    task_seconds: float = 0.0  # summed wall time of the tasks on the workers (compute + writes)
    audio_seconds: float = 0.0
    # Clips stored with NaN/Inf values (flagged in the store's nonfinite_count, read back on a
    # resume) and those values in all: the run is still complete, but says so.
    nonfinite_clips: int = 0
    nonfinite_values: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    quarantined_skipped: list[dict[str, Any]] = field(default_factory=list)
    dashboard: str | None = None
    scheduler: str | None = None
    # Every recording of the selection's scope left out, with its reason (plan.EXCLUSION_REASONS).
    excluded: list[dict[str, Any]] = field(default_factory=list)
    excluded_counts: dict[str, int] = field(default_factory=dict)
    # An identical run (same parameters hash, same planned selection) already complete: nothing
    # was done and run_id is that run's; or one left unfinished, resumed instead of a new run.
    reused: bool = False
    resumed: bool = False
    # Where the tasks ran (execution.choose_path): inprocess, local (a LocalCluster) or scheduler.
    execution: str | None = None
    execution_reason: str | None = None

    @property
    def x_realtime(self) -> float:
        return self.audio_seconds / self.seconds if self.seconds else 0.0

    @property
    def warning(self) -> str | None:
        """What a user must know about a run that completed with flagged values, else None."""
        if not self.nonfinite_clips:
            return None
        return (f"{self.nonfinite_clips} clip(s) hold {self.nonfinite_values} non-finite feature value(s) "
                "(NaN/Inf), flagged by nonfinite_count > 0 in the store")

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.state == "complete" else EXIT_PARTIAL

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "x_realtime": round(self.x_realtime, 1), "exit_code": self.exit_code}


class _NoProgress:
    def start(self, tasks: int, clips: int) -> None: ...
    def advance(self, name: str, clips: int) -> None: ...
    def finish(self) -> None: ...


def _storage_stopped(ws: Workspace, run_id: int, store: Any, exc: BaseException,
                     n_clips: int) -> RunStorageUnavailableError:
    """Mark a run whose archive or store stopped answering ``interrupted``, with the clips its
    store holds complete when it can still be read (else unknown), and say where and why."""
    roots = [r for r in (ws.roots.archive, ws.roots.stores) if not r.is_local] or [ws.roots.archive, ws.roots.stores]
    where = " and ".join(dict.fromkeys(r.uri() for r in roots))
    cause = " ".join(f"{type(exc).__name__}: {exc}".split())
    cause = cause if len(cause) <= 200 else cause[:197] + "..."
    clips_done = None
    if store is not None:
        with contextlib.suppress(Exception):  # the outage may well go on
            clips_done = int(np.count_nonzero(done_mask(store) == 1))
    error = RunStorageUnavailableError(run_id, where, cause, clips_done, n_clips)
    write_with_retry(ws.catalogue, lambda s: run_rows.update_run(s, run_id, state="interrupted",
                                                                 message=error.message, finished=True),
                     what="run stop")
    return error


def _audio_s(tasks) -> float:
    """Seconds of audio the tasks read: what choose_path weighs against a cluster's start-up."""
    return sum(i.frames_present / i.sample_rate_hz for t in tasks for i in t.items)


def _reused_report(row: RunDetail, plan: RunPlan) -> RunReport:
    """The report of an identical complete run: nothing computed, every clip already done; its
    flagged values as its last invocation recorded them."""
    timings = row.timings or {}
    return RunReport(row.id, row.name, row.state, row.store_path, row.n_clips, len(plan.recordings), len(plan.tasks),
                     clips_skipped=row.n_clips, nonfinite_clips=int(timings.get("nonfinite_clips", 0)),
                     nonfinite_values=int(timings.get("nonfinite_values", 0)),
                     quarantined_skipped=list(plan.skipped), excluded=[e.to_dict() for e in plan.excluded],
                     excluded_counts=exclusion_counts(plan.excluded), reused=True)


@dataclass(frozen=True)
class PlanPreview:
    """What ``fieldkit process --dry-run`` shows: a run's plan, before anything is written."""

    name: str
    n_recordings: int
    n_clips: int
    tasks: int
    estimated_mb: float  # the store's uncompressed size, padding included
    recordings: list[dict[str, Any]]  # id, archive_path, clips
    excluded: list[dict[str, Any]]
    excluded_counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def preview_run(ws: Workspace, workflow: Workflow) -> PlanPreview:
    """Plan a run from the catalogue and describe it; writes nothing (no store, no run row).

    Parameters
    ----------
    ws
        The workspace whose catalogue is read.
    workflow
        The workflow to plan.

    Returns
    -------
    PlanPreview
        Recordings in (with their clip counts) and out (with their reasons), clips, tasks and
        the estimated store size in MB (10**6 bytes).
    """
    with ws.catalogue.read() as s:
        plan = plan_run(s, workflow, ws.roots.archive, "")
    clips: dict[int, int] = {}
    for item in plan.items:
        clips[item.recording_id] = clips.get(item.recording_id, 0) + item.n_clips
    recordings = [{"id": r.id, "archive_path": r.archive_path, "clips": clips.get(r.id, 0)} for r in plan.recordings]
    return PlanPreview(workflow.name, len(plan.recordings), plan.layout.n_clips, len(plan.tasks),
                       round(plan.estimated_bytes / 1e6, 1), recordings, [e.to_dict() for e in plan.excluded],
                       exclusion_counts(plan.excluded))


def run_workflow(ws: Workspace, workflow: Workflow, *, workflow_source: str = "", scheduler: str | None = None,
                 workers: int | None = None, resume: int | None = None, new_run: bool = False,
                 progress=None, cluster: str | None = None) -> RunReport:
    """Plan, create (or resume) the store, run every pending task on Dask, record the run.

    Parameters
    ----------
    ws
        The workspace.
    workflow
        The workflow to run.
    workflow_source
        Where the workflow was read from, recorded with the run.
    scheduler, workers
        A Dask scheduler address, else a LocalCluster of ``workers`` processes.
    resume
        The id of a run to finish (same parameters, same selection).
    new_run
        Make a new run even when an identical one exists. Without it (and without ``resume``),
        an identical run (same parameters hash, same planned selection) is reused when complete
        (nothing is done, ``reused`` is set) and resumed when interrupted or failed (``resumed``).
    progress
        A progress display (start/advance/finish), else none.
    cluster
        ``auto``, ``local``, ``inprocess``, or ``slurm``/``pbs``/``sge``/``lsf`` for workers in batch
        jobs (else the workspace's ``dask.cluster.kind``): where the
        tasks run when no scheduler address is given; see :func:`.execution.choose_path`.

    Returns
    -------
    RunReport
        The run's state, store, clip counts, failures and left-out recordings.
    """
    progress = progress or _NoProgress()
    started = time.perf_counter()
    with ws.catalogue.read() as s:
        plan = plan_run(s, workflow, ws.roots.archive, "")
    for e in plan.excluded:  # listed with -v; the summary and 'catalog run N' count and list them
        log.info("left out %s: %s (%s)", e.archive_path, e.reason, e.message)
    resumed = False
    if resume is None and not new_run:
        identical = identical_run(ws, workflow, selection_hash(plan))
        if identical is not None and identical.state == "complete":
            return _reused_report(identical, plan)
        if identical is not None:
            log.info("run %d is identical to this one and %s: resuming it", identical.id, identical.state)
            resume, resumed = identical.id, True
    settings = ws.settings.dask
    mode = cluster or settings.cluster.kind
    waiting = getattr(progress, "waiting", None)  # batch jobs pending: said while the run waits
    if mode in JOBQUEUE_KINDS and not (scheduler or settings.scheduler_address
                                       or os.environ.get("DASK_SCHEDULER_ADDRESS")):
        from fieldkit.pipeline.jobqueue import cluster_class, require_submit_command

        require_submit_command(mode)  # exit 78 before a run row or a store is written
        cluster_class(mode)  # imported here, on the main thread, where its SIGINT handler can be undone
    # From here SIGINT/SIGTERM are only noted (stopping.py) and acted on between tasks: the run
    # row, the store and the cluster are each left in a known state.
    stop = StopSignals().install()
    # A new run has every task pending: choose its path now and start Dask behind the store's creation.
    path = choose_path(mode, scheduler, workers, settings, _audio_s(plan.tasks)) if resume is None and plan.tasks else None
    early = (BackgroundClient(scheduler, workers, settings, path.kind, waiting, stop,
                               roots=(ws.roots.archive, ws.roots.stores))
             if path and path.kind != "inprocess" else None)
    # In process, the run's audio thread starts now: it reads while the store and rows are written.
    audio = (audio_stream(plan.tasks) if path and path.kind == "inprocess" and path.workers == 1 and settings.overlap
             else None)
    run_id = None
    try:
        run_id, store_path = open_or_create(ws, workflow, plan, resume, workflow_source)
        store, store_root = store_of(ws, store_path)
        task_store = store if store_root is None else store_path
        plan = dataclasses.replace(plan, tasks=tuple(dataclasses.replace(t, store=task_store, store_root=store_root)
                                                     for t in plan.tasks))
        report = RunReport(run_id, workflow.name, "running", store_path, plan.layout.n_clips,
                           len(plan.recordings), len(plan.tasks), quarantined_skipped=list(plan.skipped),
                           excluded=[e.to_dict() for e in plan.excluded],
                           excluded_counts=exclusion_counts(plan.excluded), resumed=resumed)
        # a store created just now holds no clip: its done marker need not be read (on S3 that is
        # a round of GETs before the first task)
        pending = list(plan.tasks) if resume is None else pending_tasks(plan, store)
        path = path or choose_path(mode, scheduler, workers, settings, _audio_s(pending))
        report.execution, report.execution_reason = path.kind, path.reason
        if pending:
            log.info("tasks run %s: %s", PATH_WORDS[path.kind], path.reason)
        connect = early.connected if early else connector(path, scheduler, workers, settings, waiting, stop)
        report.clips_skipped = sum(t.region_stop - t.region_start for t in plan.tasks if t not in pending)
        write_with_retry(ws.catalogue, lambda s: (  # an update and a replace: safe to write again
            run_rows.update_run(s, run_id, state="running", message=None),
            run_rows.replace_exclusions(s, run_id, [{"recording_id": e.recording_id, "reason": e.reason,
                                                     "message": e.message} for e in plan.excluded])),
            what="run start")
        results, failures, outage = execute(pending, connect, progress, report, stop, settings.overlap, audio)
        if (stop.requested or outage is not None) and early is not None:
            early.close()  # the workers are gone before the store is counted
        if stop.requested:
            raise _interrupted(ws, report, store, stop.name, time.perf_counter() - started)
        if outage is not None:
            raise _storage_stopped(ws, run_id, store, outage, plan.layout.n_clips)
        _account(report, results, failures, plan)
        if report.clips_skipped:  # a resumed run: earlier invocations' clips count too
            _count_stored_nonfinite(report, store)
        report.seconds = time.perf_counter() - started
        _finish(ws, report, plan, store, results, failures)
        return report
    except KeyboardInterrupt:  # off the main thread, where no handler could be installed
        if run_id is None:
            raise
        abandon(ws, run_id, "interrupted", "interrupted by the user")
        raise RunInterruptedError(run_id) from None
    except (ClusterUnavailableError, ConfigError) as exc:  # the client failed after the run row was written
        if run_id is not None:
            abandon(ws, run_id, "failed", exc.message)
        raise
    except Exception as exc:  # the store's storage stopped answering outside a task (template, finalize)
        if run_id is None or isinstance(exc, RunInterruptedError) or not unreachable(exc):
            raise
        if early is not None:
            early.close()
        raise _storage_stopped(ws, run_id, None, exc, plan.layout.n_clips) from exc
    finally:
        if audio is not None:
            audio.close()
        if early is not None:
            early.close()
        stop.restore()


def _interrupted(ws: Workspace, report: RunReport, store: Any, signal_name: str,
                 seconds: float) -> RunInterruptedError:
    """Mark a run stopped by a signal ``interrupted``, with the clips its store holds complete.

    Called once the cluster is closed: a task still running was stopped with its worker, and
    ``write_region`` sets a region's ``done`` flags last, so the count is what a resume skips.
    """
    clips_done = int(np.count_nonzero(done_mask(store) == 1))
    message = (f"interrupted by {signal_name}: {clips_done} of {report.n_clips} clips stored; "
               "--resume finishes it")
    with ws.catalogue.write() as s:
        run_rows.update_run(s, report.run_id, state="interrupted", message=message, finished=True,
                            timings={"seconds": round(seconds, 3),
                                     "clips_done": clips_done, "clips_computed": report.clips_computed,
                                     "tasks": report.tasks})
    return RunInterruptedError(report.run_id, signal_name, clips_done, report.n_clips)


def _account(report: RunReport, results: list[TaskResult], failures, plan: RunPlan) -> None:
    report.clips_computed = sum(r.clips_computed for r in results)
    report.clips_skipped += sum(r.clips_skipped for r in results)
    report.audio_seconds = sum(r.audio_seconds for r in results)
    report.nonfinite_clips = sum(r.nonfinite_clips for r in results)
    report.nonfinite_values = sum(r.nonfinite_values for r in results)
    report.task_seconds = round(sum(r.seconds for r in results), 3)
    report.failures = [{"clips": [t.region_start, t.region_stop], "recordings": [i.recording_id for i in t.items],
                        "message": m} for t, m in failures]


def _count_stored_nonfinite(report: RunReport, store: Any) -> None:
    """The whole store's flagged clips and values, read back (one int32 per clip)."""
    counts = nonfinite_counts(store)
    if counts is not None:
        report.nonfinite_clips = int(np.count_nonzero(counts))
        report.nonfinite_values = int(counts.sum(dtype=np.int64))


def _finish(ws: Workspace, report: RunReport, plan: RunPlan, store: Any, results, failures) -> None:
    failed_ids = {i.recording_id for t, _ in failures for i in t.items}
    if not failures:
        finalize_store(store)
    report.state = "complete" if not failures else "failed"
    rows = [{"recording_id": i.recording_id, "channel": i.channel,
             "clip_start": i.clip_start, "clip_stop": i.clip_start + i.n_clips,
             "state": "failed" if i.recording_id in failed_ids else "done"} for i in plan.items]

    def finish(s) -> None:  # a replace and an update, keyed by the run: safe to write again (H4)
        run_rows.replace_derivatives(s, report.run_id, rows)
        crashpoint("during_finish")
        run_rows.update_run(s, report.run_id, state=report.state, n_clips=report.n_clips,
                            timings={"seconds": round(report.seconds, 3), "task_seconds": report.task_seconds,
                                     "audio_seconds": report.audio_seconds,
                                     "clips_computed": report.clips_computed, "clips_skipped": report.clips_skipped,
                                     "tasks": report.tasks, "nonfinite_clips": report.nonfinite_clips,
                                     "nonfinite_values": report.nonfinite_values},
                            message=_run_message(report), finished=True)

    write_with_retry(ws.catalogue, finish, what="run results")


def _run_message(report: RunReport) -> str | None:
    """The run row's message: its failures, and the warning of a run with flagged values."""
    return "; ".join([*(f["message"] for f in report.failures), *filter(None, [report.warning])]) or None
