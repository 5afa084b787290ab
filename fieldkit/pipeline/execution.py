"""Where ``fieldkit process`` runs its tasks: in the driver's own process, on a LocalCluster it
starts, on Dask workers it submits as batch jobs (SLURM, PBS, SGE, LSF: :mod:`.jobqueue`), or on
a Dask scheduler it is given, and why.

A LocalCluster costs a fixed ~1-1.5 s on every run (spawning worker processes, their imports,
teardown) and buys parallelism only with two or more workers. With one worker the same tasks
run faster in the driver: the same ``process_task``, the same chunked reads and shard writes,
one task at a time, BLAS limited to one thread as dask's nanny does for its workers, so the
stored values are identical (``docs/notes/performance.md``, "Which path runs").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from fieldkit.config.settings import JOBQUEUE_KINDS

__all__ = ["CLUSTER_MODES", "JOBQUEUE_KINDS", "ExecutionPath", "InProcessClient", "choose_path",
           "inprocess_client"]

#: ``--cluster`` / ``dask.cluster.kind``: ``auto`` chooses by the rule of :func:`choose_path`.
CLUSTER_MODES = ("auto", "local", "inprocess", *JOBQUEUE_KINDS)

#: Below this much pending audio (seconds) two LocalCluster workers cannot win back the cluster's
#: fixed cost: ~1.3 s of start, worker imports and teardown against a 2-worker gain of ~40 % of
#: the work, one worker processing ~2000 s of 48 kHz audio per second (benchmarks/process.py).
MIN_AUDIO_S_FOR_CLUSTER = 3 * 3600.0


@dataclass(frozen=True)
class ExecutionPath:
    """The chosen path: ``inprocess``, ``local`` (a LocalCluster of ``workers`` processes),
    ``slurm``/``pbs``/``sge``/``lsf`` (batch jobs of up to ``workers`` Dask workers) or
    ``scheduler`` (an existing Dask scheduler at ``address``), and the reason, for ``-v``."""

    kind: Literal["inprocess", "local", "scheduler", "slurm", "pbs", "sge", "lsf"]
    workers: int
    reason: str
    address: str | None = None


def choose_path(cluster: str, scheduler: str | None, workers: int | None, settings,
                pending_audio_s: float) -> ExecutionPath:
    """The execution path of a run, by an explicit rule.

    1. A scheduler address (``--scheduler``, ``dask.scheduler_address`` or
       ``$DASK_SCHEDULER_ADDRESS``) always wins: the tasks go to that cluster.
    2. ``cluster="inprocess"`` or ``"local"`` forces that path; ``slurm``, ``pbs``, ``sge`` or
       ``lsf`` submits up to ``workers`` (else ``dask.cluster.max_workers``) Dask workers as
       batch jobs of that scheduler.
    3. ``auto``: one worker runs in process (a LocalCluster would only add its start-up);
       several workers start a LocalCluster when at least ``MIN_AUDIO_S_FOR_CLUSTER`` seconds
       of audio are pending, else run in process (the cluster would cost more than it gains).

    Parameters
    ----------
    cluster
        One of :data:`CLUSTER_MODES` (``--cluster``, else ``dask.cluster.kind``).
    scheduler
        A scheduler address given on the command line, or None.
    workers
        ``--workers``, or None for ``dask.n_workers``.
    settings
        The workspace's :class:`~fieldkit.config.settings.DaskSettings`.
    pending_audio_s
        Seconds of audio in the tasks still to run.

    Returns
    -------
    ExecutionPath
        What runs the tasks, and why.
    """
    if cluster not in CLUSTER_MODES:
        raise ValueError(f"cluster must be one of {', '.join(CLUSTER_MODES)}, not {cluster!r}")
    address = scheduler or settings.scheduler_address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    n = workers or settings.n_workers
    if address:
        return ExecutionPath("scheduler", n, f"a scheduler address was given ({address})", address)
    if cluster in JOBQUEUE_KINDS:
        jobs = settings.cluster
        most = workers or jobs.max_workers
        return ExecutionPath(cluster, most, f"--cluster {cluster} (or dask.cluster.kind) asks for Dask workers in "
                             f"{cluster.upper()} jobs: {min(jobs.min_workers, most)} to {most} workers, "
                             f"{jobs.processes} per job of {jobs.cores} cores and {jobs.memory}")
    if cluster == "inprocess":
        return ExecutionPath("inprocess", 1, "--cluster inprocess (or dask.cluster) asks for it")
    if cluster == "local":
        return ExecutionPath("local", n, f"--cluster local (or dask.cluster) asks for a LocalCluster of {n}")
    if n == 1:
        return ExecutionPath("inprocess", 1, "one worker: in process, without a LocalCluster's start-up")
    hours = pending_audio_s / 3600
    if pending_audio_s < MIN_AUDIO_S_FOR_CLUSTER:
        return ExecutionPath("inprocess", 1, f"{hours:.2f} h of audio pending, under "
                             f"{MIN_AUDIO_S_FOR_CLUSTER / 3600:g} h: {n} workers would not win back "
                             "a LocalCluster's start-up")
    return ExecutionPath("local", n, f"{hours:.2f} h of audio pending with {n} workers: a LocalCluster")


class _Deferred:
    """A task run when its result is first asked for (by :meth:`InProcessClient.as_completed`)."""

    __slots__ = ("_call", "_retries", "_done", "_value", "_error")

    def __init__(self, call: Callable[[], Any], retries: int) -> None:
        self._call, self._retries = call, retries
        self._done, self._value, self._error = False, None, None

    def result(self) -> Any:
        if not self._done:
            for attempt in range(self._retries + 1):  # as distributed's retries=: the same task again
                try:
                    self._value, self._error = self._call(), None
                    break
                except Exception as exc:  # noqa: BLE001 - reported by result(), as a Dask future does
                    self._error = exc
                    if attempt == self._retries:
                        break
            self._done = True
            self._call = None  # type: ignore[assignment]
        if self._error is not None:
            raise self._error
        return self._value


class InProcessClient:
    """The part of a ``distributed.Client`` the driver uses, running tasks one at a time in this
    process: ``submit`` defers a call, ``as_completed`` runs them in submission order."""

    dashboard_link: str | None = None
    address: str | None = None

    def submit(self, fn: Callable[..., Any], *args: Any, key: str | None = None, pure: bool = False,
               retries: int = 0) -> _Deferred:
        """Defer ``fn(*args)``; ``key`` and ``pure`` are accepted for the Client's signature."""
        del key, pure
        return _Deferred(lambda: fn(*args), retries)

    @staticmethod
    def as_completed(futures: Iterable[_Deferred]) -> Iterator[_Deferred]:
        """Run each deferred task in turn (one in memory at a time) and yield it."""
        for future in futures:
            with contextlib.suppress(Exception):  # kept in the future: result() raises it
                future.result()
            yield future


@contextlib.contextmanager
def inprocess_client() -> Iterator[InProcessClient]:
    """An :class:`InProcessClient` with BLAS and OpenMP pools at one thread, as dask's nanny
    sets them for its workers (``OPENBLAS_NUM_THREADS=1`` ...): the same arithmetic, the same
    stored values, no spinning second thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield InProcessClient()
