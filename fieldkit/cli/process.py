"""``fieldkit process`` and ``fieldkit catalog runs|run``."""

from __future__ import annotations

import enum
from typing import Optional

import typer
from rich.markup import escape

from fieldkit.cli.app_state import state
from fieldkit.cli.render import FORMAT, TableFormat, emit_json, err, table

JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")


class ClusterMode(str, enum.Enum):
    """Where tasks run without a scheduler address (fieldkit.pipeline.execution.CLUSTER_MODES)."""

    auto = "auto"
    local = "local"
    inprocess = "inprocess"
    slurm = "slurm"
    pbs = "pbs"
    sge = "sge"
    lsf = "lsf"


def process(
    ctx: typer.Context,
    workflow: str = typer.Argument(..., help="A workflow file, or the name of one in the workspace's workflows/ "
                                   "or shipped with fieldkit (fieldkit workflows list), e.g. birds-16k."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address (tcp://host:8786); "
                                            "default: $DASK_SCHEDULER_ADDRESS, else a LocalCluster."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="LocalCluster worker processes (with "
                                          "--cluster slurm|pbs|sge|lsf: the most workers at once)."),
    cluster: Optional[ClusterMode] = typer.Option(
        None, "--cluster", help="Where tasks run when no scheduler address is given. auto (default, setting "
        "dask.cluster): one worker, any job on a machine of under 3 cores, or under 3 h of pending audio, runs in "
        "this process (no LocalCluster start-up, same results); more work with 2+ workers starts a LocalCluster. "
        "local: always a LocalCluster. inprocess: always in this process, one task at a time (with --workers N: "
        "N tasks at once on threads). slurm, pbs, sge, lsf: Dask workers in batch jobs of that "
        "scheduler, sized by the [dask.cluster] section (queue, cores, memory, walltime, min/max workers). "
        "-v logs the choice and why."),
    resume: Optional[int] = typer.Option(None, "--resume", help="Finish an interrupted run (its id)."),
    new_run: bool = typer.Option(False, "--new-run", help="Make a new run even when one with the same parameters "
                                 "and the same selection exists (by default it is reused, or resumed if unfinished)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (recordings in and out with reasons, "
                                 "clips, tasks, estimated store size) and write nothing."),
    json_out: bool = JSON,
) -> None:
    """Process the selected recordings into a Zarr store: clips, waveforms, features, QC."""
    from fieldkit.cli.progress import TaskProgress
    from fieldkit.config.workflow import load_workflow
    from fieldkit.config.workflow_files import resolve_workflow
    from fieldkit.pipeline.driver import preview_run, run_workflow

    if resume is not None and new_run:
        raise typer.BadParameter("--resume finishes a run and --new-run makes one: give one of them.")
    if scheduler and cluster is not None:
        raise typer.BadParameter("--scheduler sends the tasks to that cluster; --cluster chooses where they run "
                                 "without one: give one of them.")
    ws = state(ctx).open()
    path = resolve_workflow(workflow, ws.root)
    wf = load_workflow(path)
    if dry_run:
        _print_plan(preview_run(ws, wf), wf, json_out)
        return
    from fieldkit.errors import RunInterruptedError

    try:
        report = run_workflow(ws, wf, workflow_source=str(path), scheduler=scheduler, workers=workers,
                              resume=resume, new_run=new_run,
                              progress=TaskProgress("process", enabled=not json_out),
                              cluster=cluster.value if cluster else None)
    except RunInterruptedError as exc:  # the one line names this command's own workflow argument
        resume_cmd = f"fieldkit process {workflow} --resume {exc.run_id}"
        err.print(f"{escape(exc.message)} Resume it with: {escape(resume_cmd)}", soft_wrap=True)
        if json_out:
            emit_json({"error": exc.message, "code": exc.exit_code, "hint": resume_cmd, "path": exc.path})
        raise typer.Exit(exc.exit_code) from None
    if json_out:
        emit_json(report.to_dict())
    elif report.reused:
        err.print(f"run {report.run_id} is identical and complete (store {report.store}): nothing to do; "
                  "--new-run makes a new one")
        if report.warning:
            err.print(f"[yellow]warning[/yellow] {report.warning}")
    else:
        if report.resumed:
            err.print(f"run {report.run_id} is identical and was left unfinished: resumed it "
                      "(--new-run makes a new one)")
        if report.dashboard:
            err.print(f"dashboard: {report.dashboard}")
        err.print(f"run {report.run_id} ({report.name}): {report.state}; {report.n_recordings} recordings → "
                  f"{report.n_clips} clips in {report.store} ({report.clips_computed} computed, "
                  f"{report.clips_skipped} already done) in {report.seconds:.1f} s "
                  f"({report.x_realtime:.0f}× real time){_left_out(report.excluded_counts, wf)}")
        if report.warning:
            err.print(f"[yellow]warning[/yellow] {report.warning}")
        for q in report.quarantined_skipped:
            err.print(f"[yellow]skipped[/yellow] {q['archive_path']}: quarantined ({q['reason']})")
        for f in report.failures:
            err.print(f"[red]failed[/red] clips {f['clips'][0]}-{f['clips'][1]}: {f['message']}")
        if report.failures:
            err.print(f"Fix the files above, then: fieldkit process {workflow} --resume {report.run_id}")
    raise typer.Exit(report.exit_code)


def _left_out(counts: dict[str, int], wf) -> str:
    """'; left out: 2 no start time, 1 outside 04:00-10:00' (empty when nothing was left out)."""
    window = wf.selection.time_of_day
    labels = {"outside_time_of_day": f"outside {window.start:%H:%M}-{window.end:%H:%M}" if window else ""}
    parts = [f"{n} {labels.get(reason) or reason.replace('_', ' ')}" for reason, n in counts.items()]
    return f"; left out: {', '.join(parts)}" if parts else ""


def _print_plan(preview, wf, json_out: bool) -> None:
    if json_out:
        emit_json(preview.to_dict())
        return
    table("recordings in", preview.recordings, ["id", "archive_path", "clips"])
    table("recordings left out", preview.excluded, ["recording_id", "archive_path", "reason", "message"])
    err.print(f"plan ({preview.name}, dry run: nothing written): {preview.n_recordings} recordings → "
              f"{preview.n_clips} clips in {preview.tasks} tasks, about {preview.estimated_mb:g} MB uncompressed"
              f"{_left_out(preview.excluded_counts, wf)}")


def runs(ctx: typer.Context, json_out: bool = JSON, fmt: Optional[TableFormat] = FORMAT) -> None:
    """Processing runs: state, store, clip counts."""
    from fieldkit.catalogue import runs as run_rows

    with state(ctx).open() as ws, ws.catalogue.read() as s:
        rows = [r.to_dict() for r in run_rows.list_runs(s)]
    emit_json(rows) if json_out else table("processing runs", rows, ["id", "name", "state", "n_clips", "store_path",
                                                                     "started_at"], fmt)


def run(ctx: typer.Context, run_id: int = typer.Argument(..., help="Run id (see 'fieldkit catalog runs')."),
        json_out: bool = JSON, fmt: Optional[TableFormat] = FORMAT) -> None:
    """One run: parameters, versions, state, store path, clip count, failures."""
    from fieldkit.catalogue import runs as run_rows

    with state(ctx).open() as ws, ws.catalogue.read() as s:
        detail = run_rows.get_run(s, run_id)
        derivatives = run_rows.run_derivatives(s, run_id)
        excluded = run_rows.run_exclusions(s, run_id)
    doc = {**detail.to_dict(), "derivatives": [d.to_dict() for d in derivatives],
           "failures": [d.to_dict() for d in derivatives if d.state == "failed"],
           "excluded": [e.to_dict() for e in excluded]}
    if json_out:
        emit_json(doc)
        return
    table(f"run {run_id}", [doc], ["id", "name", "state", "n_clips", "store_path", "started_at", "finished_at"], fmt)
    table("recordings", doc["derivatives"], ["recording_id", "channel", "clip_start", "clip_stop", "state"], fmt)
    table("recordings left out", doc["excluded"], ["recording_id", "archive_path", "reason", "message"], fmt)
    if detail.message:  # a failure, or the warning of a complete run with flagged values
        err.print(f"[yellow]message[/yellow] {detail.message}")


def register(app: typer.Typer, catalog_app: typer.Typer) -> None:
    app.command("process")(process)
    catalog_app.command("runs")(runs)
    catalog_app.command("run")(run)
