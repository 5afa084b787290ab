"""Where ``fieldkit process`` runs its tasks: in the driver's own process, on a LocalCluster it
starts, on Dask workers it submits as batch jobs (SLURM, PBS, SGE, LSF: :mod:`.jobqueue`), or on
a Dask scheduler it is given, and why.

A LocalCluster costs a fixed ~1-1.5 s on every run (spawning worker processes, their imports,
teardown) and buys parallelism only with two or more workers. With one worker the same tasks
run faster in the driver: the same ``process_task``, the same chunked reads and shard writes,
one task at a time, BLAS limited to one thread as dask's nanny does for its workers, so the
stored values are identical (``docs/notes/performance.md``, "Which path runs"). On a 2-core
machine that path already keeps both cores busy (its audio and write threads, :mod:`.overlap`),
so ``auto`` runs several workers there too: a LocalCluster of 2 was slower than one in-process
worker ("Two workers on two cores"). ``--cluster inprocess --workers N`` runs N tasks at once on
task threads of the driver (measured no faster than one task at a time on 2 cores).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fieldkit.config.settings import JOBQUEUE_KINDS

__all__ = ["CLUSTER_MODES", "JOBQUEUE_KINDS", "ExecutionPath", "InProcessClient", "choose_path",
           "inprocess_client", "usable_cores"]

#: ``--cluster`` / ``dask.cluster.kind``: ``auto`` chooses by the rule of :func:`choose_path`.
CLUSTER_MODES = ("auto", "local", "inprocess", *JOBQUEUE_KINDS)

#: With two or more workers, a LocalCluster is started only on a machine with at least this many
#: usable cores. On 2 vCPUs the one-worker in-process path already keeps both cores busy (audio
#: read ahead and shards written behind on threads, :mod:`.overlap`): measured on the 10 h corpus,
#: a LocalCluster of 2 was 0.90x as fast as it (quiet machine), and 0.87x with the machine shared;
#: two task threads in process 1.00x (``docs/notes/performance.md``, "Two workers on two cores").
MIN_CORES_FOR_CLUSTER = 3

#: With enough cores, below this much pending audio (seconds) two LocalCluster workers cannot win
#: back the cluster's fixed cost: ~1.3 s of start, worker imports and teardown against a 2-worker
#: gain of ~40 % of the work, one worker processing ~2000 s of 48 kHz audio per second
#: (benchmarks/process.py; not measured on more than 2 cores).
MIN_AUDIO_S_FOR_CLUSTER = 3 * 3600.0


def usable_cores(cgroup_root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup") -> int:
    """Cores this process may use: its CPU affinity (a container's or a batch job's cpuset), else
    the machine's, bounded by a CPU quota of its cgroup (``docker --cpus=2``, Kubernetes' CPU
    limit, SLURM with cgroup limits), which leaves the affinity at every core of the host."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    return max(1, min(cores, quota)) if quota else cores


def cgroup_cpu_quota(cgroup_root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup") -> int | None:
    """The cores the CPU quota of this process's cgroup allows (rounded up), the tightest of its
    cgroup and their parents; None without a quota (or off Linux).

    cgroup v2: ``cpu.max`` is ``"QUOTA PERIOD"`` or ``"max PERIOD"``; v1: ``cpu.cfs_quota_us``
    (-1: none) over ``cpu.cfs_period_us`` in the ``cpu`` controller's hierarchy.
    """
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2, the unified hierarchy
            files = [("cpu.max", None)]
            base = Path(cgroup_root)
        elif "cpu" in controllers.split(","):
            files = [("cpu.cfs_quota_us", "cpu.cfs_period_us")]
            base = Path(cgroup_root) / controllers
        else:
            continue
        folder = base / path.lstrip("/")
        while True:
            for quota_file, period_file in files:
                limits.append(_quota(folder, quota_file, period_file))
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    found = [n for n in limits if n is not None]
    return min(found) if found else None


def _quota(folder: Path, quota_file: str, period_file: str | None) -> int | None:
    try:
        if period_file is None:
            quota, period = (folder / quota_file).read_text().split()
        else:
            quota, period = (folder / quota_file).read_text().strip(), (folder / period_file).read_text().strip()
        if quota in ("max", "-1") or int(period) <= 0:
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


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
                pending_audio_s: float, cores: int | None = None) -> ExecutionPath:
    """The execution path of a run, by an explicit rule.

    1. A scheduler address (``--scheduler``, ``dask.scheduler_address`` or
       ``$DASK_SCHEDULER_ADDRESS``) always wins: the tasks go to that cluster.
    2. ``cluster="inprocess"`` or ``"local"`` forces that path; ``slurm``, ``pbs``, ``sge`` or
       ``lsf`` submits up to ``workers`` (else ``dask.cluster.max_workers``) Dask workers as
       batch jobs of that scheduler.
    3. ``auto``: one worker runs in process (a LocalCluster would only add its start-up);
       several workers run in process too on a machine of fewer than ``MIN_CORES_FOR_CLUSTER``
       usable cores (the in-process path's threads already use both cores of a 2-core
       machine, where a LocalCluster of 2 was slower), and otherwise start a LocalCluster when
       at least ``MIN_AUDIO_S_FOR_CLUSTER`` seconds of audio are pending (else the cluster
       would cost more than it gains).

    ``--cluster inprocess`` runs one task at a time (the run's audio read ahead and shards
    written behind it, ``dask.overlap``); with ``--workers N`` given explicitly (N > 1) it runs
    N tasks at once on task threads instead, each reading ahead and writing behind on its own.

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
    cores
        Usable cores, else :func:`usable_cores`.

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
        threads = workers or 1  # dask.n_workers sizes clusters; task threads only when asked for
        return ExecutionPath("inprocess", threads,
                             f"--cluster inprocess (or dask.cluster) asks for it ({_threads(threads)})")
    if cluster == "local":
        return ExecutionPath("local", n, f"--cluster local (or dask.cluster) asks for a LocalCluster of {n}")
    if n == 1:
        return ExecutionPath("inprocess", 1, "one worker: in process, without a LocalCluster's start-up")
    hours = pending_audio_s / 3600
    cores = cores or usable_cores()
    if cores < MIN_CORES_FOR_CLUSTER:
        return ExecutionPath("inprocess", 1, f"{cores} usable cores: {n} workers run in process, where one "
                             "task's audio, features and writes already share them (a LocalCluster was slower)")
    if pending_audio_s < MIN_AUDIO_S_FOR_CLUSTER:
        return ExecutionPath("inprocess", 1, f"{hours:.2f} h of audio pending, under "
                             f"{MIN_AUDIO_S_FOR_CLUSTER / 3600:g} h: {n} workers would not win back "
                             "a LocalCluster's start-up")
    return ExecutionPath("local", n, f"{hours:.2f} h of audio pending with {n} workers: a LocalCluster")


def _attempts(call: Callable[[], Any], retries: int) -> tuple[Any, BaseException | None]:
    """``call()`` tried up to ``retries + 1`` times, as distributed's ``retries=``: (value, error)."""
    error: BaseException | None = None
    for _ in range(retries + 1):
        try:
            return call(), None
        except Exception as exc:  # noqa: BLE001 - reported by result(), as a Dask future does
            error = exc
    return None, error


def _threads(n: int) -> str:
    return "one task at a time" if n == 1 else f"{n} task threads"


class _Deferred:
    """A task run when its result is first asked for (by :meth:`InProcessClient.as_completed`),
    or already running on one of the client's task threads (``running``)."""

    __slots__ = ("_call", "_retries", "_done", "_value", "_error", "_running")

    def __init__(self, call: Callable[[], Any], retries: int, running: Future | None = None) -> None:
        self._call, self._retries, self._running = call, retries, running
        self._done, self._value, self._error = False, None, None

    def result(self) -> Any:
        if not self._done:
            self._value, self._error = (self._running.result() if self._running is not None
                                        else _attempts(self._call, self._retries))
            self._done = True
            self._call = self._running = None  # type: ignore[assignment]
        if self._error is not None:
            raise self._error
        return self._value


class InProcessClient:
    """The part of a ``distributed.Client`` the driver uses, running tasks in this process:
    ``submit`` defers a call, ``as_completed`` yields them in submission order.

    With ``threads=1`` a task runs when ``as_completed`` reaches it, one at a time. With more,
    ``threads`` tasks run at once on task threads of this process (their numpy, soxr, FFT and
    blosc work releases the GIL), the next one starting as one ends; :meth:`close` cancels the
    tasks not started and waits for those running.
    """

    dashboard_link: str | None = None
    address: str | None = None

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, not {threads}")
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="fieldkit-task") if threads > 1 else None

    def submit(self, fn: Callable[..., Any], *args: Any, key: str | None = None, pure: bool = False,
               retries: int = 0) -> _Deferred:
        """Defer ``fn(*args)`` (or start it on a task thread); ``key`` and ``pure`` are accepted
        for the Client's signature."""
        del key, pure
        call = functools.partial(fn, *args)
        if self._pool is None:
            return _Deferred(call, retries)
        return _Deferred(call, retries, self._pool.submit(_attempts, call, retries))

    @staticmethod
    def as_completed(futures: Iterable[_Deferred]) -> Iterator[_Deferred]:
        """Run (or wait for) each task in turn and yield it."""
        for future in futures:
            with contextlib.suppress(Exception):  # kept in the future: result() raises it
                future.result()
            yield future

    def close(self) -> None:
        """Cancel the tasks not started yet and wait for the running ones."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def inprocess_client(threads: int = 1) -> Iterator[InProcessClient]:
    """An :class:`InProcessClient` of ``threads`` task threads, with BLAS and OpenMP pools at
    one thread, as dask's nanny sets them for its workers (``OPENBLAS_NUM_THREADS=1`` ...): the
    same arithmetic, the same stored values, no spinning second thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        client = InProcessClient(threads)
        try:
            yield client
        finally:
            client.close()
