"""Where a run's tasks execute: a distributed Client to a scheduler, a LocalCluster or workers in
batch jobs (:func:`dask_client`), started on a thread while the driver writes the store and its
rows (:class:`BackgroundClient`), or the in-process client (:func:`connector`).

The choice of path is :func:`fieldkit.pipeline.execution.choose_path`'s; this module starts and
stops what it chose, so that every ``fieldkit process`` ends with its threads joined and its
cluster closed, however it ends.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

from fieldkit.errors import ClusterUnavailableError, ConfigError
from fieldkit.pipeline.execution import JOBQUEUE_KINDS, ExecutionPath, inprocess_client
from fieldkit.pipeline.stopping import StopSignals

__all__ = ["PATH_WORDS", "BackgroundClient", "connector", "dask_client"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int | None, settings, kind: str = "local",
                waiting=None, stop: StopSignals | None = None) -> Iterator[Any]:
    """A distributed Client: to ``scheduler`` (or $DASK_SCHEDULER_ADDRESS), else to workers in
    batch jobs when ``kind`` is ``slurm``, ``pbs``, ``sge`` or ``lsf`` (told to ``waiting`` while
    they are pending; a ``stop`` signal ends the wait), else a LocalCluster."""
    import dask
    from distributed import Client, LocalCluster

    address = scheduler or settings.scheduler_address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    threads_before = set(threading.enumerate())
    # dask's log only with -v: without it, its chatter and the tracebacks it logs for the faults
    # that end as a ClusterUnavailableError (a worker that cannot start) stay off the terminal.
    dask_level = logging.ERROR if log.isEnabledFor(logging.INFO) else logging.CRITICAL
    if dask_level == logging.CRITICAL:
        for name in ("distributed", "bokeh", "tornado", "tornado.application"):  # distributed sets the last
            logging.getLogger(name).setLevel(logging.CRITICAL)
    if address:
        try:
            client = _closing_on_failure(Client)(address, timeout=f"{settings.connect_timeout}s")
        except (OSError, TimeoutError) as exc:  # distributed raises OSError after its retries time out
            _join_loop_threads(threads_before)
            raise ClusterUnavailableError(
                f"cannot reach the Dask scheduler at {address} within {settings.connect_timeout:g} s ({exc}).",
                hint="Check the scheduler address (--scheduler, $DASK_SCHEDULER_ADDRESS or dask.scheduler_address) "
                     "and that the scheduler is running, then retry.", path=address) from exc
        try:
            with client:
                yield client
        finally:
            _join_loop_threads(threads_before)
        return
    if kind in JOBQUEUE_KINDS:
        with _jobqueue_client(kind, workers, settings, dask_level, threads_before, waiting, stop) as client:
            yield client
        return
    # dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 for its workers: every large temporary then
    # becomes an mmap/munmap with fresh page faults, 2.7x slower (docs/notes/performance.md); memory
    # stays flat without it because buffers are bounded by the shard size.
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = _closing_on_failure(LocalCluster)(n_workers=workers or settings.n_workers,
                                   threads_per_worker=settings.threads_per_worker, processes=True,
                                   memory_limit=settings.memory_limit, dashboard_address=":0",
                                   silence_logs=dask_level, preload=[*dask.config.get("distributed.worker.preload"),
                                                                        "fieldkit.pipeline.worker_setup"])
    except (RuntimeError, OSError, TimeoutError) as exc:  # "Nanny failed to start": a worker died starting
        _join_loop_threads(threads_before)
        raise ClusterUnavailableError(
            f"the local Dask cluster could not start its workers ({_with_cause(exc)}).",
            hint="Look for a worker that cannot start (memory, a broken environment, a failing "
                 "distributed.worker.preload), run again with -v for dask's log, then retry.") from exc
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()
        _join_loop_threads(threads_before)


@contextlib.contextmanager
def _jobqueue_client(kind: str, workers: int | None, settings, dask_level: int, threads_before, waiting,
                     stop: StopSignals | None):
    """A Client of Dask workers in ``kind`` batch jobs (:mod:`.jobqueue`), adaptive between
    ``dask.cluster.min_workers`` and ``workers`` (else ``max_workers``); the jobs are cancelled
    when the block ends, however it ends."""
    from distributed import Client

    from fieldkit.pipeline import jobqueue

    jobqueue.require_submit_command(kind)
    jobs = settings.cluster
    most = workers or jobs.max_workers
    try:
        cluster = _closing_on_failure(jobqueue.cluster_class(kind))(
            **jobqueue.jobqueue_kwargs(kind, jobs), job_cls=jobqueue.recording_job_class(kind),
            silence_logs=dask_level, scheduler_options={"dashboard_address": ":0"})
    except ValueError as exc:  # e.g. an interface the host does not have, a memory it cannot parse
        _join_loop_threads(threads_before)
        raise ConfigError(f"dask.cluster cannot make {kind.upper()} worker jobs: {exc}.",
                          hint="Fix the [dask.cluster] section of fieldkit.toml ('fieldkit config show').") from exc
    except (RuntimeError, OSError) as exc:
        _join_loop_threads(threads_before)
        raise ClusterUnavailableError(f"the Dask scheduler for {kind.upper()} jobs could not start "
                                      f"({_with_cause(exc)}).", hint="Run again with -v for dask's log.") from exc
    try:
        cluster.adapt(minimum=min(jobs.min_workers, most), maximum=most)
        with Client(cluster) as client:
            # a Ctrl-C while the jobs are pending ends the wait: the driver then cancels, closes, reports
            jobqueue.wait_for_a_worker(client, cluster, kind, settings.connect_timeout, waiting,
                                       stopped=(lambda: stop.requested) if stop is not None else None)
            yield client
    finally:
        cluster.close()  # cancels every job it submitted (scancel, qdel, bkill)
        _join_loop_threads(threads_before)


def _closing_on_failure(cluster_class):
    """``cluster_class`` (a Client or a LocalCluster) whose constructor, when the start fails,
    stops the IO loop it started.

    A Client that gives up on an unreachable scheduler leaves its LoopRunner's "IO loop" thread
    running, and so does a SpecCluster whose own start fails (``sync(self._start)`` sits outside
    the ``try`` that stops the loop; a worker that cannot start is caught by that ``try``): the
    process would then finalise with a live event-loop thread.
    """

    class Cluster(cluster_class):
        def __init__(self, *args, **kwargs):
            try:
                super().__init__(*args, **kwargs)
            except BaseException:
                runner = getattr(self, "_loop_runner", None)
                if runner is not None:
                    with contextlib.suppress(Exception):
                        runner.stop()
                raise

    Cluster.__name__ = Cluster.__qualname__ = cluster_class.__name__
    return Cluster


#: How long a closed client's or cluster's event-loop thread gets to end: LoopRunner.stop joins
#: it for 10 s only and then leaves it running, which a loaded machine can exceed.
LOOP_JOIN_TIMEOUT_S = 60.0


def _join_loop_threads(before: set[threading.Thread]) -> None:
    """Wait for the event-loop threads started since ``before`` to end (they were told to stop).

    A daemon thread still running asyncio code while the interpreter finalises can crash it
    (SIGSEGV); joining here makes every ``fieldkit process`` exit with the driver thread alone.
    """
    for thread in set(threading.enumerate()) - before:
        if thread.name == "IO loop" and thread is not threading.current_thread():
            thread.join(LOOP_JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("dask's event-loop thread did not stop within %.0f s", LOOP_JOIN_TIMEOUT_S)


def _with_cause(exc: BaseException) -> str:
    """``exc`` and the innermost error behind it (a worker's own, behind "Nanny failed to start")."""
    root = exc
    while (inner := root.__cause__ or root.__context__) is not None:
        root = inner
    return str(exc) if root is exc else f"{str(exc).rstrip('.')}: {type(root).__name__}: {root}"


class BackgroundClient:
    """Connects (or starts a LocalCluster, ~0.5 s, whose workers then import the task code,
    ~0.25 s) on a thread while the driver creates the store and writes its catalogue rows."""

    def __init__(self, scheduler: str | None, workers: int | None, settings, kind: str = "local",
                 waiting=None, stop: StopSignals | None = None, roots: tuple = ()) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._stack = contextlib.ExitStack()
        self._closed = False
        self._roots = tuple(root for root in roots if not root.is_local)  # clients the workers make early
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fieldkit-dask-start")
        self._future = self._pool.submit(self._start, scheduler, workers, settings, kind, waiting, stop)

    def _start(self, scheduler, workers, settings, kind, waiting, stop):
        client = self._stack.enter_context(dask_client(scheduler, workers, settings, kind, waiting, stop))
        from fieldkit.pipeline.tasks import (
            warm_up,  # pickled by reference: the worker imports the task module only
        )

        with contextlib.suppress(Exception):  # a warm-up only: a failing worker shows in its task
            client.run(warm_up, self._roots)
        return client

    @contextlib.contextmanager
    def connected(self) -> Iterator[Any]:
        yield self._future.result()  # closed by close(), after the run's last catalogue rows

    def close(self) -> None:
        """Close the client and its cluster and join their threads (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # a start that failed has nothing to close
            self._future.result()
        try:  # on the thread that entered the client: it set a context variable there
            self._pool.submit(self._stack.close).result()
        finally:
            self._pool.shutdown()


PATH_WORDS = {"inprocess": "in this process", "local": "on a LocalCluster", "scheduler": "on the Dask scheduler",
               **{kind: f"on Dask workers in {kind.upper()} jobs" for kind in JOBQUEUE_KINDS}}


def connector(path: ExecutionPath, scheduler: str | None, workers: int | None, settings, waiting=None,
               stop: StopSignals | None = None):
    """A context manager factory yielding the client of ``path``."""
    if path.kind == "inprocess":
        return functools.partial(inprocess_client, path.workers)
    return functools.partial(dask_client, scheduler, workers, settings, path.kind, waiting, stop)
