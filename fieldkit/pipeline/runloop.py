"""The execute loop of a run: submit every pending task to the chosen client, count each as it
finishes (in process: once its shards are written behind it), and stop between tasks on a
signal; a failed task is a message naming its recordings and clips, never the end of the run."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable

from fieldkit.errors import ProcessingError
from fieldkit.faults import crashpoint
from fieldkit.io.storage_errors import unreachable
from fieldkit.pipeline.execution import JOBQUEUE_KINDS, InProcessClient
from fieldkit.pipeline.overlap import WriteBehind
from fieldkit.pipeline.spec import TaskResult, TaskSpec
from fieldkit.pipeline.stopping import StopSignals

__all__ = ["POLL_S", "audio_stream", "execute", "failure_message"]


def _finished_batches(client, futures, halted: Callable[[], bool]):
    """Batches of finished futures until all are done, or until ``halted()`` (a stop signal, or
    storage that stopped answering; checked every ``POLL_S``, between tasks) cancels what has not
    finished."""
    if isinstance(client, InProcessClient):  # one task per step, in this process; no distributed import
        for future in client.as_completed(futures):  # the next task runs when asked for
            yield [future]
            if halted():
                return
        return
    from distributed import as_completed

    finished = as_completed(futures)
    while not finished.is_empty():
        if halted():
            client.cancel([f for f in futures if not f.done()])
            return
        batch = finished.next_batch(block=False)
        if not batch:
            time.sleep(POLL_S)
            continue
        yield batch


def audio_stream(tasks):
    """One audio thread for the in-process tasks, in their order (pipeline/overlap.py)."""
    from fieldkit.pipeline.overlap import KeyedStream
    from fieldkit.pipeline.tasks import batch_clips_of, read_ahead_clips, run_batches

    # a run's tasks share their processing and shard size
    depth = read_ahead_clips(tasks[0].dsp, tasks[0].clips_per_shard) if tasks else 1
    return KeyedStream(run_batches(tasks), [t.region_start for t in tasks], depth, cost=batch_clips_of)


def execute(pending: list[TaskSpec], connect, progress, report, stop: StopSignals | None = None,
            overlap: bool = False, audio=None) -> tuple[list[TaskResult], list[tuple[TaskSpec, str]], BaseException | None]:
    """Run ``pending`` on the chosen client: ``(results, failures, outage)``.

    A stop signal cancels what has not finished and returns early. So does a task that failed
    because the archive's or the store's storage stopped answering (``outage``, the first such
    error): every task after it would wait out the same timeouts and fail the same way, so the
    run stops there and is resumed once the storage answers. ``overlap``: in process, tasks read
    ahead and write behind on threads (dask.overlap), from ``audio`` when the run started its
    audio thread already (a new run), else from one started here.
    """
    from fieldkit.pipeline.tasks import process_task

    results: list[TaskResult] = []
    failures: list[tuple[TaskSpec, str]] = []
    outage: list[BaseException] = []
    if not pending or (stop is not None and stop.requested):
        return results, failures, None
    progress.start(len(pending), sum(t.region_stop - t.region_start for t in pending))
    writer = None
    held: tuple | None = None  # in process: the last task run, counted once its shards are written

    def count(task: TaskSpec, future) -> None:
        try:
            results.append(future.result())
            report.clips_computed += results[-1].clips_computed
        except Exception as exc:  # noqa: BLE001 - one failed task never stops the others
            failures.append((task, failure_message(task, exc, report.execution)))
            if unreachable(exc):
                outage.append(exc)
        crashpoint("after_task")
        progress.advance(f"clips {task.region_start}-{task.region_stop}", task.region_stop - task.region_start)

    with contextlib.ExitStack() as stack, connect() as client:
        report.dashboard = client.dashboard_link
        report.scheduler = client.scheduler.address if report.execution != "inprocess" else None
        # In process, the tasks overlap their audio reads and shard writes with their features on
        # threads (pipeline/overlap.py): no other worker uses the second core there.
        in_process = isinstance(client, InProcessClient)
        task_fn = process_task
        if in_process and overlap and client.threads > 1:  # each task thread reads ahead and writes behind
            task_fn = functools.partial(process_task, overlap=True)
        elif in_process and overlap:  # one audio thread and one writer for the whole run
            stream = audio or stack.enter_context(audio_stream(pending))
            writer = stack.enter_context(WriteBehind(keep_errors=True))
            task_fn = functools.partial(process_task, overlap=True, stream=stream, writer=writer)
        futures = {client.submit(task_fn, t, key=f"fieldkit-run{report.run_id}-clips{t.region_start}",
                                 pure=False, retries=1): t for t in pending}

        def halted() -> bool:
            if writer is not None and not outage:  # a shard written behind its task met the outage
                outage.extend(e for e in writer.failures.values() if unreachable(e))
            return bool(outage) or (stop is not None and stop.requested)

        for batch in _finished_batches(client, futures, halted):
            for future in batch:
                if writer is None:
                    count(futures[future], future)
                    continue
                # A task is counted (and "after_task" reached) once its last shard is written,
                # while the next task computes: a counted task is stored, as on Dask.
                if held is not None:
                    writer.wait_for(held[0].region_start)
                    count(*held)
                held = (futures[future], future)
        if held is not None:
            writer.wait()
            count(*held)
    progress.finish()
    if writer is not None and writer.failures:  # a shard written after its task returned failed
        _late_write_failures(writer.failures, pending, results, failures)
    return results, failures, (outage[0] if outage else None)


def _late_write_failures(errors: dict, pending: list[TaskSpec], results: list[TaskResult], failures: list) -> None:
    """Move the tasks whose shards failed to be written behind them from ``results`` to
    ``failures`` (their ``done`` flags were never set: a resume computes them again)."""
    failed = {task.region_start for task, _ in failures}
    for task in pending:
        error = errors.get(task.region_start)
        if error is None or task.region_start in failed:
            continue
        results[:] = [r for r in results if r.region_start != task.region_start]
        failures.append((task, failure_message(task, ProcessingError(
            f"writing clips {task.region_start}-{task.region_stop} failed: {type(error).__name__}: {error}",
            hint="Free space or fix the store's folder, then run again with --resume."))))


#: How often the driver looks for finished tasks and for a stop signal (seconds).
POLL_S = 0.05


def failure_message(task: TaskSpec, exc: BaseException, execution: str | None = None) -> str:
    ids = ", ".join(str(i.recording_id) for i in task.items)
    kind = type(exc).__name__
    if kind == "KilledWorker":  # E4: the scheduler gave up after distributed.scheduler.allowed-failures
        files = ", ".join(f"{i.recording_id} ({i.path})" for i in task.items)
        fix = ("raise dask.cluster.memory (per job) or lower dask.cluster.processes" if execution in JOBQUEUE_KINDS
               else "lower dask.n_workers or raise dask.memory_limit")
        return (f"the Dask worker processing recordings {files} (clips {task.region_start}-{task.region_stop}; step: "
                "read, resample, features, store write) died each time it ran (out of memory, or a crash in a "
                f"library); {fix}, then --resume.")
    return str(exc) if isinstance(exc, ProcessingError) else f"recordings {ids}: {kind}: {exc}"
