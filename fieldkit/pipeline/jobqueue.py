"""Dask workers as batch jobs of a SLURM, PBS, SGE or LSF cluster, through dask-jobqueue.

``fieldkit process --cluster slurm`` (or ``[dask.cluster] kind = "slurm"``) runs the Dask
scheduler inside the driver and submits each worker as a batch job (``sbatch``, ``qsub``,
``bsub``) whose script starts ``python -m distributed.cli.dask_worker`` on a compute node. The
workers unpickle :func:`fieldkit.pipeline.tasks.process_task` by reference, so they import the
task code only (no CLI, no catalogue, no workspace settings), and every task carries the
absolute paths of what it reads and writes. The cluster is made here and closed by the driver's
``dask_client`` on every exit path, which cancels the jobs (``scancel`` ...).
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import threading
import time
from typing import Any
from unittest import mock

from fieldkit.config.settings import ClusterSettings
from fieldkit.errors import ClusterUnavailableError, ConfigError

__all__ = ["SUBMIT_COMMANDS", "cluster_class", "jobqueue_kwargs", "require_submit_command", "job_ids",
           "recording_job_class", "wait_for_a_worker"]

log = logging.getLogger(__name__)

#: The command each scheduler's jobs are submitted with (dask-jobqueue's ``Job.submit_command``).
SUBMIT_COMMANDS = {"slurm": "sbatch", "pbs": "qsub", "sge": "qsub", "lsf": "bsub"}
#: How a user sees what became of the jobs.
_STATUS_COMMANDS = {"slurm": "squeue -j {ids}", "pbs": "qstat -f {ids}", "sge": "qstat -j {ids}", "lsf": "bjobs {ids}"}
_CLIENTS = {"slurm": "SLURM's client commands (Debian/Ubuntu: apt-get install slurm-client)",
            "pbs": "the PBS/Torque client commands (qsub, qstat, qdel)",
            "sge": "the Grid Engine client commands (qsub, qstat, qdel)",
            "lsf": "the LSF client commands (bsub, bjobs, bkill)"}
#: Seconds between two "still waiting" lines when nothing else changed.
_REMIND_S = 10.0


def cluster_class(kind: str):
    """dask-jobqueue's cluster class of ``kind`` (``slurm``, ``pbs``, ``sge`` or ``lsf``)."""
    dask_jobqueue = _import_dask_jobqueue()
    return {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster,
            "sge": dask_jobqueue.SGECluster, "lsf": dask_jobqueue.LSFCluster}[kind]


def _import_dask_jobqueue():
    """``dask_jobqueue``, imported without its import-time ``signal.signal(SIGINT, sys.exit)``.

    ``dask_jobqueue.runner`` (imported by its SLURM module) sets that handler when imported: on
    the main thread it would replace the driver's own (``stopping.py``: a Ctrl-C must mark the run
    ``interrupted``, not exit), and off the main thread ``signal.signal`` raises ValueError, so
    the import fails. The handler the process had is kept.
    """
    if "dask_jobqueue" in sys.modules:
        return sys.modules["dask_jobqueue"]
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
        try:
            import dask_jobqueue
        finally:
            signal.signal(signal.SIGINT, previous)
        return dask_jobqueue
    with _IMPORT_LOCK, mock.patch.object(signal, "signal", lambda *_: None):  # no handler may be set here
        import dask_jobqueue
    return dask_jobqueue


_IMPORT_LOCK = threading.Lock()


def recording_job_class(kind: str):
    """``kind``'s dask-jobqueue Job class, keeping what its submit command answered when it
    refused the job (``submit_error``), so that the run can say it at once.

    dask-jobqueue submits from its event loop and only logs a refusal (``sbatch: error: invalid
    partition specified``); the job stays "created", which also fails the cluster's close with
    an ``AssertionError``. Here it is marked failed, as a worker that could not start is.
    """
    from distributed.core import Status

    base = cluster_class(kind).job_cls

    class Job(base):
        submit_error: str | None = None

        async def start(self) -> None:
            try:
                await super().start()
            except Exception as exc:  # noqa: BLE001 - kept for the driver's message, then raised as before
                text = str(exc)
                self.submit_error = (text.split("stderr:", 1)[1] if "stderr:" in text else text).strip()
                self.status = Status.failed
                raise

    Job.__name__ = Job.__qualname__ = base.__name__
    return Job


def jobqueue_kwargs(kind: str, jobs: ClusterSettings) -> dict[str, Any]:
    """The keyword arguments of :func:`cluster_class` ``(kind)`` for the ``[dask.cluster]`` section.

    Parameters
    ----------
    kind
        ``slurm``, ``pbs``, ``sge`` or ``lsf``.
    jobs
        The workspace's ``dask.cluster`` settings.

    Returns
    -------
    dict
        Per-job cores, memory, processes, walltime, queue, account (``project`` for SGE and LSF,
        which call it so), job script prologue and extra directives, the worker's scratch
        directory, network interface and Python. Unset values are left out, so that dask's own
        ``jobqueue.<kind>`` configuration can still supply them.
    """
    kwargs: dict[str, Any] = {
        "cores": jobs.cores, "memory": jobs.memory, "processes": jobs.processes, "walltime": jobs.walltime,
        "queue": jobs.queue, "account" if kind in ("slurm", "pbs") else "project": jobs.account,
        "job_script_prologue": [_NANNY_ENV_LINE(), *jobs.job_script_prologue],
        "job_extra_directives": list(jobs.job_extra_directives) or None,
        "local_directory": jobs.local_directory, "interface": jobs.interface,
        "python": jobs.python or sys.executable,  # the driver's interpreter: fieldkit is installed there
        "job_name": "fieldkit-worker",
    }
    if kind == "lsf":  # bsub -W takes [hours:]minutes
        kwargs["walltime"] = _lsf_walltime(jobs.walltime)
    return {key: value for key, value in kwargs.items() if value is not None}


def _NANNY_ENV_LINE() -> str:  # noqa: N802 - a constant, made when first needed (it imports dask)
    """The job script line that keeps glibc's own ``MALLOC_TRIM_THRESHOLD_`` for the workers, as
    the LocalCluster does: dask's nanny sets 65536, and every large temporary then becomes an
    mmap/munmap with fresh page faults, 2.7x slower (docs/notes/performance.md). Passed as the
    config dask's subprocesses inherit (``DASK_INTERNAL_INHERIT_CONFIG``), because a ``DASK_*``
    variable's keys are lower-cased and could not name this upper-case one."""
    import dask.config

    unset = {"distributed": {"nanny": {"pre-spawn-environ": {"MALLOC_TRIM_THRESHOLD_": None}}}}
    return f"export DASK_INTERNAL_INHERIT_CONFIG={dask.config.serialize(unset)}"


def _lsf_walltime(walltime: str) -> str:
    """``HH:MM:SS`` as LSF's ``HH:MM``, a started minute counted whole; other forms unchanged."""
    parts = walltime.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return walltime
    minutes = int(parts[0]) * 60 + int(parts[1]) + (int(parts[2]) > 0)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def require_submit_command(kind: str) -> str:
    """The path of ``kind``'s submit command, or a :class:`ConfigError` (exit 78) naming it."""
    command = SUBMIT_COMMANDS[kind]
    found = shutil.which(command)
    if found is None:
        raise ConfigError(
            f"--cluster {kind} submits Dask workers with '{command}', which is not on PATH.",
            hint=f"Run fieldkit on the cluster's login node, or install {_CLIENTS[kind]}; or set "
                 "dask.cluster.kind (or --cluster) to local.", path=command)
    return found


def job_ids(cluster) -> list[str]:
    """The ids of the batch jobs ``cluster`` has submitted so far."""
    return [str(job.job_id) for job in list(cluster.workers.values()) if getattr(job, "job_id", None)]


def wait_for_a_worker(client, cluster, kind: str, timeout_s: float, report=None, stopped=None) -> float:
    """Wait until one Dask worker of the submitted jobs has joined the scheduler.

    Parameters
    ----------
    client
        A ``distributed.Client`` of ``cluster``.
    cluster
        The dask-jobqueue cluster, already scaled or adaptive.
    kind
        ``slurm``, ``pbs``, ``sge`` or ``lsf``: the words of the messages.
    timeout_s
        ``dask.connect_timeout``: how long the queue may keep every job pending.
    report
        Called with a line saying what is awaited, when it changes and every ~10 s; or None.
    stopped
        Returns True once the run was told to stop (SIGINT, SIGTERM): the wait ends at once,
        without a worker, and the driver cancels and closes; or None.

    Returns
    -------
    float
        Seconds waited.

    Raises
    ------
    ClusterUnavailableError
        No worker within ``timeout_s`` (exit 75), with the job ids and the command to look at them.
    """
    started = time.monotonic()
    said, said_at = "", 0.0
    while True:
        waited = time.monotonic() - started
        if client.scheduler_info().get("workers"):
            log.info("a Dask worker of the %s jobs joined after %.1f s", kind.upper(), waited)
            return waited
        if stopped is not None and stopped():
            return waited
        refused = [job.submit_error for job in list(cluster.workers.values()) if getattr(job, "submit_error", None)]
        if refused:
            raise _refused(kind, refused[0])
        ids = job_ids(cluster)
        if waited >= timeout_s:
            raise _no_worker(kind, ids, timeout_s)
        line = (f"waiting for {kind.upper()} job(s) {', '.join(ids)} to start a Dask worker "
                f"({_STATUS_COMMANDS[kind].format(ids=','.join(ids))})" if ids else
                f"submitting {kind.upper()} job(s) with {SUBMIT_COMMANDS[kind]}")
        now = time.monotonic()
        if line != said or now - said_at >= _REMIND_S:
            log.info("%s", line)
            if report is not None:
                report(f"{line}, {waited:.0f} s of {timeout_s:g} s")
            said, said_at = line, now
        time.sleep(0.25)


#: What a submit command says when the batch system itself is unreachable (retry later, exit 75).
_UNREACHABLE = ("unable to contact", "socket timed out", "temporarily", "try again", "connection refused")


def _refused(kind: str, answer: str) -> ClusterUnavailableError | ConfigError:
    command = SUBMIT_COMMANDS[kind]
    said = " ".join(answer.split())
    if any(word in said.lower() for word in _UNREACHABLE):
        return ClusterUnavailableError(f"'{command}' cannot reach the {kind.upper()} controller: {said}",
                                       hint="Retry when the cluster is back (ask its admins if it stays down).",
                                       path=command)
    return ConfigError(f"'{command}' refused fieldkit's worker job: {said}",
                       hint="Set dask.cluster.queue, account, cores, memory, walltime and job_extra_directives to "
                            "what the cluster accepts ('fieldkit config show' shows them; 'sinfo' lists SLURM's "
                            "partitions and limits).", path=command)


def _no_worker(kind: str, ids: list[str], timeout_s: float) -> ClusterUnavailableError:
    if not ids:
        return ClusterUnavailableError(
            f"no {kind.upper()} job was accepted within {timeout_s:g} s (dask.connect_timeout): "
            f"'{SUBMIT_COMMANDS[kind]}' refused the worker job or did not answer.",
            hint="Run again with -v to see the submit command's error; check dask.cluster.queue, account, "
                 "memory and walltime against what the queue accepts.", path=SUBMIT_COMMANDS[kind])
    status = _STATUS_COMMANDS[kind].format(ids=",".join(ids))
    return ClusterUnavailableError(
        f"no Dask worker started within {timeout_s:g} s (dask.connect_timeout): {kind.upper()} job(s) "
        f"{', '.join(ids)} stayed pending or failed; they are cancelled.",
        hint=f"See why with '{status}' and the jobs' output files; on a busy queue raise dask.connect_timeout "
             "(e.g. FIELDKIT_DASK__CONNECT_TIMEOUT=600), then retry.", path=None)
