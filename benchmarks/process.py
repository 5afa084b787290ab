#!/usr/bin/env python3
"""Processing benchmark: `fieldkit process` side by side with the perf anchors, in one run.

What one invocation does (default mode):

1. builds the seeded synthetic corpus with ``shared/bench/make_corpus.py`` (120 x 60 s, 48 kHz,
   16-bit: 2 h of audio; ``shared/reference/perf-anchors.md`` used 60 of the same files, the
   issue asks for at least 1 h, and 2 h halves the weight of a run's fixed ~0.3 s of planning,
   store creation and catalogue rows; ``--n 60`` gives the 1 h corpus) in a temporary folder
   under /work;
2. ingests it into a fresh fieldkit workspace (``ingest_card``), then reads every archived file
   once so that fieldkit, like the anchors, reads from the page cache;
3. runs a workflow equivalent to the anchors' job: 16 kHz soxr HQ, one 60 s clip per file (the
   anchors process whole files), n_fft 1024, hop 320, periodic Hann, centred frames, 64 Slaney
   mel bands 0 Hz-Nyquist, 20 MFCC, centroid, bandwidth, 12-bin chroma at tuning 0, no
   waveform, float32 features stored uncompressed (``compressor.level: 0``), as the floor's
   np.savez stores them: these features compress by only 7-10 % with zstd (float32 spectral
   values have noisy mantissas) at ~2.5 ms per minute of audio, see the ``-zstd1`` row.
   Differences that remain: fieldkit stores the mel *power* (``mel``; its logmel is only used
   for the MFCC) and adds per-clip QC variables (valid_samples, clipped_fraction, peak_dbfs,
   dc_offset, silent_fraction); the anchors store logmel with np.savez. Every run's store is
   kept until the end of the benchmark: deleting its ~1000 files just before the next run
   makes ext4's inode allocator skip the recently deleted inodes one by one
   (``recently_deleted`` in ``perf``), ~1 ms per file created instead of ~0.1 ms;
4. times, interleaved over ``--repeats`` (order rotated each repeat, medians reported):

   - ``floor``, ``floor-mp2`` (control for the 2-worker speed-up: the floor on a
     multiprocessing Pool of 2) and ``librosa-naive`` from anchors.py, each through the anchors'
     own CLI (loop wall only: imports and a warm-up call are outside the clock);
   - ``lhotse-j1`` if lhotse is importable (it usually is not: reported as such);
   - ``fieldkit-w1`` / ``fieldkit-w2``: ``run_workflow(workers=N)`` exactly as ``fieldkit
     process`` runs it (its own LocalCluster; the wall includes cluster start/stop, planning,
     store creation, Zarr writes and catalogue rows). Peak RSS per worker is the kernel's
     high-water mark (``VmHWM`` in /proc/PID/status) of each worker process, sampled every
     50 ms by a thread while the run lasts;
   - ``fieldkit-w1-warm`` / ``fieldkit-w2-warm``: the same run on a LocalCluster started
     beforehand by fieldkit's own ``clients.dask_client`` (same settings, MALLOC_TRIM_THRESHOLD_
     unset for the workers) and warmed by importing fieldkit.pipeline.tasks in every worker,
     passed as ``scheduler=``. "work" is the ``run_workflow`` call alone: planning, store
     creation, every task, Zarr writes, finalisation and catalogue rows, on warm workers; that
     is the steady-state throughput comparable to the anchors' loop (their imports and warm-up
     are outside the clock too). Cluster start and the workers' imports are reported apart.
     Peak RSS per worker via ``client.run`` reading VmHWM. ru_maxrss is recorded but not used:
     Linux carries the parent's RSS into a spawned child's ru_maxrss (see _worker_memory_mb);
   - ``fieldkit-w1-warm-zstd1``: ``fieldkit-w1-warm`` with zstd level 1 (the workflows'
     default), for what compression costs;
   - whole-command rows ``cli-*``, as a user runs it: a subprocess of the installed
     ``fieldkit -v process WORKFLOW --new-run --json`` from spawn to exit (interpreter, imports,
     plan, store template, cluster start and teardown when one is used, catalogue rows), wall
     and the CPU of its process tree: the anchors' job as a workflow file (``cli-anchor-w1``,
     ``-w2``: ``--workers 1|2`` under the default ``--cluster auto``; ``-local``: a LocalCluster
     forced), the shipped ``birds-16k.yaml`` as it is (``cli-birds16k``; ``-inprocess`` /
     ``-local`` force a path) and without its waveform store (``-nowave``), then without zstd too
     (``-nowave-zstd0``): what each costs; ``cli-anchor-w1-serial`` and ``cli-birds16k-serial``
     run with ``dask.overlap`` off (one thread: no audio read ahead, no shard written behind);
     ``cli-anchor-w2-inprocess`` (``-serial``: overlap off) and ``cli-birds16k-w2-inprocess`` run
     two tasks at once on task threads of the driver (``--cluster inprocess --workers 2``), and
     ``cli-birds16k-w1`` birds-16k with one worker. The ``fieldkit-w1``/``-w2`` rows keep measuring
     ``run_workflow`` on its own LocalCluster (``cluster="local"``).

5. prints a table (wall s, x real time, ratio to the floor's and to librosa-naive's
   throughput, 2-worker / 1-worker speed-up, peak RSS; per worker for fieldkit) and checks
   the acceptance targets on the warm runs (steady-state throughput, as the anchors measure
   theirs): 1 worker >= 0.8x floor, >= 5x librosa-naive, 2 workers >= 1.5x one; the
   whole-command ratios (cold cluster, ~1 s of start-up and imports on a 2 s job) are
   printed next to them.

``--hours H`` makes an H-hour corpus (one 60 s file every 5 minutes while that fits in
birds-16k's 04:00-21:00 window, back to back beyond: 10 h = 600 files from 04:00);
``--corpus DIR`` uses one made beforehand by make_corpus.py with the same arguments (checked
against its corpus.json). The whole-command targets are checked on the cli rows: anchor job
1 worker >= 0.8x the floor (>= 0.95x from 10 h), 2 workers >= 1.6x one (10 h), birds-16k.yaml
>= 0.6x the floor.

``--long`` instead writes one 2-hour 96 kHz 16-bit mono WAV (streamed to disk in blocks:
seeded noise + drifting tones + chirps) and a 1-minute file made the same way, ingests both
(one deployment each), processes each with a 16 kHz workflow (birds-16k's parameters: 3 s
clips, waveform stored, mel/MFCC/chroma/centroid/bandwidth/rms) on a fresh 1-worker
LocalCluster, and reports the worker's peak RSS for both and their ratio. Targets: < 300 MB
for the 2-hour file and within 20 % of the 1-minute file's.

``--profile`` adds a cProfile of ``fieldkit.pipeline.tasks.process_task`` on the first task
of the plan, in a fresh subprocess with BLAS at 1 thread (as in a dask worker), once with
MALLOC_TRIM_THRESHOLD_=65536 (dask's default for workers) and once without (fieldkit's
workers), next to the
floor on the same files in the same subprocess, plus the time and RSS of the imports a worker
does for process_task vs the modules the task actually uses.

The machine is shared and noisy (perf-anchors.md: up to ~35 % between runs): compare ratios
taken within one run. The load average at start and end is printed and stored.

Usage (from the repository root)::

    .venv/bin/python benchmarks/process.py                 # 2 h corpus, 3 repeats (~7 min)
    .venv/bin/python benchmarks/process.py --quick         # 10 files, 1 repeat (smoke run)
    .venv/bin/python benchmarks/process.py --hours 10 --methods floor,floor-mp2,cli-anchor-w1,cli-anchor-w2
    .venv/bin/python benchmarks/process.py --long          # 2 h 96 kHz file vs 1 min file
    .venv/bin/python benchmarks/process.py --profile --json out.json

Everything is written under a temporary folder in --workdir (default /work, not /tmp) and
deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

# Workers are spawned processes that import this file as __mp_main__: keep the top level light.

TARGET_SR = 16000
ANCHOR_SR = 48000
LONG_SR = 96000
ORIGINAL_MALLOC_TRIM = os.environ.get("MALLOC_TRIM_THRESHOLD_")
FK_METHODS = ("fieldkit-w1", "fieldkit-w2", "fieldkit-w1-warm", "fieldkit-w2-warm", "fieldkit-w1-warm-zstd1")
#: Whole-command rows: ``fieldkit process`` as a user runs it, a subprocess of the installed
#: command (imports, cluster start, planning, store, tasks, catalogue rows, teardown): its
#: arguments after the workflow, and which workflow file.
CLI_METHODS = {
    "cli-anchor-w1": ("anchor", ["--workers", "1"]),
    "cli-anchor-w1-local": ("anchor", ["--workers", "1", "--cluster", "local"]),
    "cli-anchor-w2": ("anchor", ["--workers", "2"]),
    "cli-anchor-w2-local": ("anchor", ["--workers", "2", "--cluster", "local"]),
    "cli-anchor-w2-inprocess": ("anchor", ["--workers", "2", "--cluster", "inprocess"]),
    "cli-anchor-w2-inprocess-serial": ("anchor", ["--workers", "2", "--cluster", "inprocess"]),
    "cli-birds16k": ("birds16k", []),
    "cli-birds16k-inprocess": ("birds16k", ["--cluster", "inprocess"]),
    "cli-birds16k-w1": ("birds16k", ["--workers", "1"]),
    "cli-birds16k-w2-inprocess": ("birds16k", ["--workers", "2", "--cluster", "inprocess"]),
    "cli-birds16k-local": ("birds16k", ["--cluster", "local"]),
    "cli-birds16k-nowave": ("birds16k-nowave", []),
    "cli-birds16k-nowave-zstd0": ("birds16k-nowave-zstd0", []),
    "cli-anchor-w1-serial": ("anchor", ["--workers", "1"]),
    "cli-birds16k-serial": ("birds16k", []),
}
#: Environment of a whole-command row: the ``-serial`` rows run in process on one thread
#: (``dask.overlap`` off: no audio read ahead, no shard written behind), for what the overlap gains
#: in wall time and costs in CPU.
CLI_ENV = {"cli-anchor-w1-serial": {"FIELDKIT_DASK__OVERLAP": "false"},
           "cli-birds16k-serial": {"FIELDKIT_DASK__OVERLAP": "false"},
           "cli-anchor-w2-inprocess-serial": {"FIELDKIT_DASK__OVERLAP": "false"}}


def _default_shared_bench() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "bench"
        if (candidate / "anchors.py").is_file():
            return candidate
    return Path("/work/shared/bench")


def _import_shared(shared: Path):
    """make_corpus and anchors, imported from shared/bench (not copied)."""
    if str(shared) not in sys.path:
        sys.path.insert(0, str(shared))
    import anchors
    import make_corpus
    return make_corpus, anchors


def _restore_env() -> None:
    """Put MALLOC_TRIM_THRESHOLD_ back as it was when this script started, in case anything
    set it in this process: every later subprocess (the anchors) would inherit it and run up
    to 2.7x slower (perf-anchors.md pitfall 1)."""
    if ORIGINAL_MALLOC_TRIM is None:
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    else:
        os.environ["MALLOC_TRIM_THRESHOLD_"] = ORIGINAL_MALLOC_TRIM


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# --------------------------------------------------------------------------- worker memory
def _worker_memory_mb() -> dict[str, float]:
    """Runs in a dask worker: its peak RSS.

    ``VmHWM`` (/proc/self/status) is the high-water mark of this process's own address space.
    ``ru_maxrss`` is reported too but is NOT used: Linux carries ``signal->maxrss`` over
    fork + exec, so a spawned worker's ru_maxrss starts at the *parent's* RSS at spawn time
    (measured: an idle worker showed ru_maxrss 206 MB with VmHWM 62 MB, the driver being at
    ~200 MB). The same inflation hits any ru_maxrss of a child of a large process.
    """
    out = {k: v / 1024 for k, v in _proc_status_kb(os.getpid(), "VmHWM", "VmRSS").items()}
    out["ru_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _worker_import_fieldkit() -> float:
    """Runs in a dask worker: import what process_task needs; returns seconds."""
    t0 = time.perf_counter()
    import fieldkit.pipeline.tasks  # noqa: F401
    return time.perf_counter() - t0


def _worker_env(name: str = "MALLOC_TRIM_THRESHOLD_") -> str | None:
    return os.environ.get(name)


def _proc_status_kb(pid: int, *keys: str) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key = line.split(":", 1)[0]
                if key in keys:
                    out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


class WorkerHWMSampler:
    """Samples VmHWM (the kernel's peak RSS) of this process's dask worker processes.

    LocalCluster(processes=True) runs its nannies in this process and spawns each worker as a
    child (``multiprocessing.spawn``); VmHWM only grows, so the last sample before a worker
    exits is its peak to within one 50 ms interval of shutdown activity.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._is_worker: dict[int, bool] = {}

    def _workers(self) -> list[int]:
        import psutil
        pids = []
        try:
            children = psutil.Process().children(recursive=True)
        except psutil.Error:
            return pids
        for child in children:
            if child.pid not in self._is_worker:
                try:
                    cmd = " ".join(child.cmdline())
                except psutil.Error:
                    continue
                self._is_worker[child.pid] = "spawn_main" in cmd and "resource_tracker" not in cmd
            if self._is_worker[child.pid]:
                pids.append(child.pid)
        return pids

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self._workers():
                hwm = _proc_status_kb(pid, "VmHWM").get("VmHWM")
                if hwm:
                    self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), hwm)
            self._stop.wait(self.interval)

    def __enter__(self) -> WorkerHWMSampler:  # noqa: PYI034
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peaks_mb(self) -> list[float]:
        return sorted(round(v / 1024, 1) for v in self.peak_kb.values())


# --------------------------------------------------------------------------- clusters
class OwnCluster:
    """A LocalCluster started by fieldkit's own ``clients.dask_client`` (same settings, same
    MALLOC_TRIM_THRESHOLD_ handling), its start and the workers' imports measured apart, so
    that ``run_workflow(scheduler=...)`` on it is timed on warm workers, as the anchors time
    their loop after imports and a warm-up call."""

    def __init__(self, ws, n_workers: int) -> None:
        from fieldkit.pipeline.clients import dask_client

        self._context = dask_client(None, n_workers, ws.settings.dask)
        t0 = time.perf_counter()
        self.client = self._context.__enter__()
        self.client.wait_for_workers(n_workers)
        self.start_s = time.perf_counter() - t0
        self.address = self.client.scheduler.address
        self.worker_trim_env = sorted({str(v) for v in self.client.run(_worker_env).values()})
        self.bare_rss_mb = self._memory("VmHWM")
        t0 = time.perf_counter()
        self.client.run(_worker_import_fieldkit)  # what every fresh worker pays on its first task
        self.import_s = time.perf_counter() - t0
        self.idle_rss_mb = self._memory("VmHWM")

    def _memory(self, key: str) -> list[float]:
        return sorted(round(v[key], 1) for v in self.client.run(_worker_memory_mb).values())

    def peak_rss_mb(self) -> list[float]:
        return self._memory("VmHWM")

    def ru_maxrss_mb(self) -> list[float]:
        return self._memory("ru_maxrss")

    def close(self) -> float:
        t0 = time.perf_counter()
        self._context.__exit__(None, None, None)
        _restore_env()
        return time.perf_counter() - t0


# --------------------------------------------------------------------------- fieldkit runs
def anchor_workflow(clip_s: float, clips_per_shard: int, anchors, level: int = 0):
    """The anchors' job as a workflow; ``level`` 0 stores uncompressed, as the floor's np.savez."""
    from fieldkit.config.workflow import Workflow

    return Workflow.from_dict({
        "name": "bench-anchor-job",
        "description": "The perf anchors' job (shared/bench/anchors.py) as a fieldkit workflow.",
        "selection": {"statuses": ["ok", "truncated"]},
        "resample": {"target_rate_hz": anchors.TARGET_SR, "quality": "HQ"},
        "bit_depth": {"policy": "float32"},
        "channels": {"policy": "mix"},
        "clips": {"length_s": clip_s, "hop_s": clip_s, "min_valid_fraction": 0.5},
        "features": {"n_fft": anchors.N_FFT, "hop_length": anchors.HOP, "window": "hann",
                     "n_mels": anchors.N_MELS, "fmin_hz": 0.0, "fmax_hz": None,
                     "n_mfcc": anchors.N_MFCC, "n_chroma": anchors.N_CHROMA, "tuning": 0.0,
                     "compute": ["mel", "mfcc", "centroid", "bandwidth", "chroma"]},
        "store": {"waveform": False, "dtype": "float32", "clips_per_chunk": 1,
                  "clips_per_shard": clips_per_shard, "compressor": {"name": "zstd", "level": level}},
    }, source="benchmarks/process.py")


def birds16k_workflow(deployment: str):
    """birds-16k's processing parameters (fieldkit/data/workflows/birds-16k.yaml), selecting one deployment."""
    from fieldkit.config.workflow import Workflow

    return Workflow.from_dict({
        "name": f"bench-16k-{deployment}",
        "selection": {"deployments": [deployment], "statuses": ["ok", "truncated"]},
        "resample": {"target_rate_hz": TARGET_SR, "quality": "HQ"},
        "bit_depth": {"policy": "float32", "dither": "tpdf", "seed": 0},
        "channels": {"policy": "mix"},
        "clips": {"length_s": 3.0, "hop_s": 3.0, "min_valid_fraction": 0.5, "pad": "zero"},
        "features": {"n_fft": 1024, "hop_length": 320, "window": "hann", "n_mels": 64,
                     "fmin_hz": 150.0, "fmax_hz": 8000.0, "n_mfcc": 20, "n_chroma": 12, "tuning": 0.0,
                     "compute": ["mel", "mfcc", "centroid", "bandwidth", "chroma", "rms"]},
        "store": {"waveform": True, "dtype": "float32", "clips_per_chunk": 16, "clips_per_shard": 128,
                  "compressor": {"name": "zstd", "level": 1}},
    }, source="benchmarks/process.py --long")


def _check_report(report, expect_audio_s: float | None, expect_clips: int | None) -> None:
    problems = []
    if report.state != "complete":
        problems.append(f"state {report.state!r}: {report.failures}")
    if expect_audio_s is not None and abs(report.audio_seconds - expect_audio_s) > 1e-3 * expect_audio_s:
        problems.append(f"audio_seconds {report.audio_seconds} != {expect_audio_s}")
    if expect_clips is not None and report.clips_computed != expect_clips:
        problems.append(f"clips_computed {report.clips_computed} != {expect_clips}")
    if problems:
        raise SystemExit("fieldkit run went wrong: " + "; ".join(problems))


def _drop_store(ws, report) -> None:
    shutil.rmtree(ws.root / report.store, ignore_errors=True)


def run_fieldkit(method: str, ws, workflow, expect_audio_s: float | None, expect_clips: int | None) -> dict:
    """One timed fieldkit run; see the module docstring for the methods."""
    from fieldkit.pipeline.driver import run_workflow

    workers = 2 if "-w2" in method else 1
    row: dict = {"method": method, "workers": workers}
    if method in ("fieldkit-w1", "fieldkit-w2"):
        with WorkerHWMSampler() as sampler:
            t0 = time.perf_counter()
            report = run_workflow(ws, workflow, workflow_source="benchmarks/process.py", workers=workers,
                                  cluster="local", new_run=True)  # these rows keep measuring the LocalCluster
            wall = time.perf_counter() - t0
        _restore_env()
        row["peak_rss_per_worker_mb"] = sampler.peaks_mb()
        row["rss_source"] = "VmHWM of the worker processes, sampled every 50 ms"
    else:
        cluster = OwnCluster(ws, workers)
        try:
            t0 = time.perf_counter()  # no sampler: VmHWM is read from each (live) worker afterwards
            # new_run: an identical earlier row's run would otherwise be reused, computing nothing
            report = run_workflow(ws, workflow, workflow_source="benchmarks/process.py", scheduler=cluster.address,
                                  new_run=True)
            work = time.perf_counter() - t0
            row["peak_rss_per_worker_mb"] = cluster.peak_rss_mb()
            ru_maxrss = cluster.ru_maxrss_mb()
        finally:
            stop = cluster.close()
        row.update(cluster_start_s=cluster.start_s, worker_import_s=cluster.import_s, work_wall_s=work,
                   cluster_stop_s=stop, bare_rss_per_worker_mb=cluster.bare_rss_mb,
                   idle_rss_per_worker_mb=cluster.idle_rss_mb,
                   ru_maxrss_per_worker_mb_inflated=ru_maxrss,
                   worker_malloc_trim_threshold=cluster.worker_trim_env,
                   rss_source="client.run: VmHWM of each worker (/proc/self/status)")
        # the comparable "whole command" wall: cluster start + worker imports + run + stop
        wall = cluster.start_s + cluster.import_s + work + stop
    _check_report(report, expect_audio_s, expect_clips)
    row.update(wall_s=wall, report_seconds=report.seconds, task_seconds=report.task_seconds,
               audio_s=report.audio_seconds,
               x_realtime=report.audio_seconds / wall, clips_computed=report.clips_computed,
               tasks=report.tasks, state=report.state, run_id=report.run_id)
    if "work_wall_s" in row:
        row["x_realtime_work"] = report.audio_seconds / row["work_wall_s"]
    return row  # the store is deleted at the end (see main): deleting ~1000 files here would slow the next run


def cli_workflow_files(tmp: Path, anchors, clip_s: float, clips_per_shard: int) -> dict[str, Path]:
    """The workflow files of the whole-command rows: the anchors' job (the same parameters as
    ``anchor_workflow``), the shipped birds-16k.yaml as it is, and two variants of it that
    leave out the waveform store, then zstd too (what each costs)."""
    import yaml

    from fieldkit.config.workflow_files import bundled_workflows_dir

    shipped = bundled_workflows_dir() / "birds-16k.yaml"
    files = {"anchor": tmp / "anchor-job.yaml", "birds16k": shipped}
    files["anchor"].write_text(yaml.safe_dump(anchor_workflow(clip_s, clips_per_shard, anchors).to_dict()))
    doc = yaml.safe_load(shipped.read_text())
    doc["store"]["waveform"] = False
    files["birds16k-nowave"] = tmp / "birds-16k-nowave.yaml"
    files["birds16k-nowave"].write_text(yaml.safe_dump({**doc, "name": "birds-16k-nowave"}))
    doc["store"]["compressor"]["level"] = 0
    files["birds16k-nowave-zstd0"] = tmp / "birds-16k-nowave-zstd0.yaml"
    files["birds16k-nowave-zstd0"].write_text(yaml.safe_dump({**doc, "name": "birds-16k-nowave-zstd0"}))
    return files


def run_cli(method: str, ws_root: Path, workflow: Path, expect_audio_s: float) -> dict:
    """``fieldkit process WORKFLOW --new-run --json ...`` in a subprocess, as a user runs it:
    wall from spawn to exit (interpreter start and imports included), and the CPU seconds of
    the whole process tree (LocalCluster workers included: they are reaped before it exits)."""
    import subprocess

    _restore_env()
    cmd = [str(Path(sys.executable).parent / "fieldkit"), "-w", str(ws_root), "-v", "process", str(workflow),
           "--new-run", "--json", *CLI_METHODS[method][1]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, **CLI_ENV.get(method, {})})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    doc = json.loads(proc.stdout)
    if doc["state"] != "complete" or abs(doc["audio_seconds"] - expect_audio_s) > 1e-3 * expect_audio_s:
        raise SystemExit(f"{method}: state {doc['state']}, audio {doc['audio_seconds']} s (expected "
                         f"{expect_audio_s}): {doc['failures']}")
    shutil.rmtree(ws_root / doc["store"], ignore_errors=True)  # < 100 files each; the waveform ones are large
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"method": method, "wall_s": wall, "cpu_s": cpu, "audio_s": doc["audio_seconds"],
            "x_realtime": doc["audio_seconds"] / wall, "run_seconds": doc["seconds"],
            "task_seconds": doc["task_seconds"], "tasks": doc["tasks"], "clips_computed": doc["clips_computed"],
            "execution": doc.get("execution"), "execution_reason": doc.get("execution_reason"),
            "outside_run_s": wall - doc["seconds"], "argv": cmd[3:]}


# --------------------------------------------------------------------------- anchors
def run_anchor(method: str, anchors, corpus: Path, tmp: Path) -> dict:
    """One anchors.py method, run through its own CLI exactly as perf-anchors.md does.

    Not ``anchors.measure()`` from this process: measure() takes the peak RSS as the larger of
    the sampled tree RSS and the child's ru_maxrss, and a child's ru_maxrss starts at its
    parent's RSS (see _worker_memory_mb), which here is this ~300 MB driver. The environment
    is this script's original one (fieldkit's MALLOC_TRIM_THRESHOLD_ removed, see _restore_env).
    """
    import subprocess

    _restore_env()
    out = tmp / f"anchor-{method}.json"
    cmd = [sys.executable, anchors.__file__, str(corpus), "--methods", method, "--repeats", "1",
           "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"anchors.py {method} failed:\n{proc.stderr[-3000:]}")
    r = json.loads(out.read_text())["runs"][0]
    return {"method": method, "wall_s": r["loop_wall_s"], "audio_s": r["audio_s"],
            "x_realtime": r["audio_s"] / r["loop_wall_s"], "loop_cpu_s": r["loop_cpu_s"],
            "setup_wall_s": r["setup_wall_s"], "total_wall_s": r["total_wall_s"],
            "peak_rss_mb": r["peak_rss_mb"], "stages_s": r["stages_s"], "n_files": r["n_files"]}


def lhotse_available() -> str | None:
    """None if lhotse (+ lilcom) can be imported, else the reason."""
    import importlib.util
    missing = [m for m in ("lhotse", "torch", "lilcom") if importlib.util.find_spec(m) is None]
    return f"not installed ({', '.join(missing)} missing)" if missing else None


# --------------------------------------------------------------------------- summary
def _median(rows: list[dict], key: str):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def _max_worker(rows: list[dict], key: str) -> float | None:
    vals = [max(r[key]) for r in rows if r.get(key)]
    return statistics.median(vals) if vals else None


def summarize(by_method: dict[str, list[dict]]) -> list[dict]:
    out = []
    for method, rows in by_method.items():
        if not rows:
            continue
        s = {"method": method, "repeats": len(rows), "audio_s": rows[0]["audio_s"],
             "wall_s": _median(rows, "wall_s"),
             "wall_spread_s": [min(r["wall_s"] for r in rows), max(r["wall_s"] for r in rows)]}
        s["x_realtime"] = s["audio_s"] / s["wall_s"]
        if method.startswith("fieldkit"):
            s["peak_rss_per_worker_mb"] = _max_worker(rows, "peak_rss_per_worker_mb")
            for key in ("task_seconds", "cluster_start_s", "worker_import_s", "work_wall_s", "cluster_stop_s"):
                if rows[0].get(key) is not None:
                    s[key] = _median(rows, key)
            if s.get("work_wall_s"):
                s["x_realtime_work"] = s["audio_s"] / s["work_wall_s"]
                s["idle_rss_per_worker_mb"] = _max_worker(rows, "idle_rss_per_worker_mb")
            s["tasks"] = rows[0]["tasks"]
        elif method.startswith("cli-"):
            s.update(cpu_s=_median(rows, "cpu_s"), outside_run_s=_median(rows, "outside_run_s"),
                     task_seconds=_median(rows, "task_seconds"), tasks=rows[0]["tasks"],
                     execution=sorted({r["execution"] for r in rows}), execution_reason=rows[0]["execution_reason"])
        else:
            s["peak_rss_mb"] = _median(rows, "peak_rss_mb")
            s["setup_wall_s"] = _median(rows, "setup_wall_s")
            s["cpu_s"] = _median(rows, "loop_cpu_s")
        out.append(s)
    floor = next((s for s in out if s["method"] == "floor"), None)
    naive = next((s for s in out if s["method"] == "librosa-naive"), None)
    by = {s["method"]: s for s in out}
    for s in out:
        s["vs_floor"] = s["x_realtime"] / floor["x_realtime"] if floor else None
        s["vs_librosa_naive"] = s["x_realtime"] / naive["x_realtime"] if naive else None
        if s["method"] == "floor-mp2" and floor:
            s["speedup_2w_over_1w"] = s["x_realtime"] / floor["x_realtime"]
        if "-w2" in s["method"]:
            one = by.get(s["method"].replace("-w2", "-w1"))
            if one:
                s["speedup_2w_over_1w"] = s["x_realtime"] / one["x_realtime"]
                if s.get("x_realtime_work") and one.get("x_realtime_work"):
                    s["speedup_2w_over_1w_work"] = s["x_realtime_work"] / one["x_realtime_work"]
        if s.get("x_realtime_work") and floor:
            s["vs_floor_work"] = s["x_realtime_work"] / floor["x_realtime"]
        if s["method"].startswith("cli-") and floor and s.get("cpu_s") and floor.get("cpu_s"):
            s["vs_floor_cpu"] = floor["cpu_s"] / s["cpu_s"]  # same audio: CPU per audio second, inverted
        if s["method"].startswith("cli-anchor-w2"):
            one = by.get(s["method"].replace("-w2", "-w1"))
            if one:
                s["speedup_2w_over_1w"] = s["x_realtime"] / one["x_realtime"]
    return out


def print_cli_table(summary: list[dict]) -> None:
    """The whole-command rows beside the floor: absolute wall and CPU seconds, and ratios."""
    rows = [s for s in summary if s["method"].startswith("cli-") or s["method"] in ("floor", "floor-mp2")]
    if not any(s["method"].startswith("cli-") for s in rows):
        return
    print("\n| whole command | wall s (min-max) | CPU s | x RT | vs floor (wall) | vs floor (CPU) | 2w/1w |"
          " path | outside run_workflow s | tasks s |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for s in rows:
        lo, hi = s["wall_spread_s"]
        print(f"| {s['method']} | {s['wall_s']:.2f} ({lo:.2f}-{hi:.2f}) | {_f(s.get('cpu_s'), '.2f')} | "
              f"{s['x_realtime']:.0f} | {_f(s.get('vs_floor'), '.2f')} | {_f(s.get('vs_floor_cpu'), '.2f')} | "
              f"{_f(s.get('speedup_2w_over_1w'), '.2f')} | {'/'.join(s.get('execution') or []) or '-'} | "
              f"{_f(s.get('outside_run_s'), '.2f')} | {_f(s.get('task_seconds'), '.2f')} |")
    print("whole command = a subprocess of the installed `fieldkit -v process WORKFLOW --new-run --json` from "
          "spawn to exit (interpreter, imports, plan, store, cluster start/stop if any, catalogue rows); "
          "CPU = user+sys of its process tree; the floor's wall and CPU are its timed loop (imports and "
          "warm-up outside). 'outside run_workflow' = wall - the run's own seconds (interpreter start, "
          "imports, workspace open, JSON).")
    for s in rows:
        if s.get("execution_reason"):
            print(f"  {s['method']}: {s['execution_reason']}")


def _f(value, fmt: str, none: str = "-") -> str:
    return none if value is None else format(value, fmt)


def print_table(summary: list[dict], lhotse_note: str | None) -> None:
    print("\n| method | wall s (min-max) | x RT | vs floor | vs librosa-naive | 2w/1w | peak RSS MB |"
          " cluster start s + worker imports s | work s (x RT, vs floor) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for s in summary:
        lo, hi = s["wall_spread_s"]
        if s["method"].startswith("fieldkit"):
            rss = f"{_f(s.get('peak_rss_per_worker_mb'), '.0f')} per worker"
            if s.get("idle_rss_per_worker_mb"):
                rss += f" (idle {s['idle_rss_per_worker_mb']:.0f})"
        else:
            rss = f"{_f(s.get('peak_rss_mb'), '.0f')} process tree"
        work = start = "-"
        if s.get("cluster_start_s") is not None:
            start = f"{s['cluster_start_s']:.2f} + {s.get('worker_import_s') or 0:.2f}"
        if s.get("work_wall_s"):
            work = (f"{s['work_wall_s']:.2f} (x{s['x_realtime_work']:.0f}, {_f(s.get('vs_floor_work'), '.2f')}"
                    + (f", 2w/1w {s['speedup_2w_over_1w_work']:.2f}" if s.get("speedup_2w_over_1w_work") else "")
                    + ")")
        print(f"| {s['method']} | {s['wall_s']:.2f} ({lo:.2f}-{hi:.2f}) | {s['x_realtime']:.0f} | "
              f"{_f(s.get('vs_floor'), '.2f')} | {_f(s.get('vs_librosa_naive'), '.2f')} | "
              f"{_f(s.get('speedup_2w_over_1w'), '.2f')} | {rss} | {start} | "
              f"{work} |")
    if lhotse_note:
        print(f"| lhotse-j1 | {lhotse_note} | | | | | | | |")
    print("wall: anchors = their timed loop (imports + warm-up excluded, fresh subprocess each); "
          "fieldkit-wN = run_workflow(workers=N) whole (own LocalCluster start/stop, plan, store, "
          "Zarr writes, catalogue rows); fieldkit-wN-warm = cluster start + worker imports "
          "(client.run importing fieldkit.pipeline.tasks) + run_workflow(scheduler=...) + cluster stop, "
          "'work s' being the run_workflow call alone on warm workers. Peak RSS: anchors = process "
          "tree (anchors.py's own measure); fieldkit = VmHWM of each worker process (max over workers), "
          "'idle' = after start + imports, before the run.")


def acceptance(summary: list[dict], hours: float = 2.0) -> list[dict]:
    by = {s["method"]: s for s in summary}
    checks = []

    def add(name: str, value, target: float, op: str = ">=") -> None:
        if value is None:
            return
        ok = value >= target if op == ">=" else value < target
        checks.append({"check": name, "value": round(value, 3), "target": f"{op} {target}", "pass": ok})

    p1, p2 = by.get("fieldkit-w1-warm"), by.get("fieldkit-w2-warm")
    naive = by.get("librosa-naive")
    if p1:
        add("fieldkit 1 worker vs floor throughput (warm workers)", p1.get("vs_floor_work"), 0.8)
        if naive:
            add("fieldkit 1 worker vs librosa-naive throughput (warm workers)",
                p1["x_realtime_work"] / naive["x_realtime"], 5.0)
    if p2:
        add("fieldkit 2 workers / 1 worker (warm workers)", p2.get("speedup_2w_over_1w_work"), 1.5)
    if by.get("floor-mp2"):
        add("control: floor Pool(2) / floor (what 2 processes can gain right now)",
            by["floor-mp2"].get("speedup_2w_over_1w"), 1.5)
    c1, c2, birds = by.get("cli-anchor-w1"), by.get("cli-anchor-w2"), by.get("cli-birds16k")
    if c1:
        add(f"whole command: anchor job 1 worker vs floor ({hours:g} h)", c1.get("vs_floor"),
            0.95 if hours >= 10 else 0.8)
    if c1 and c2:
        add(f"whole command: anchor job 2 workers / 1 worker ({hours:g} h; the target is for 10 h)",
            c2.get("speedup_2w_over_1w"), 1.6)
    if birds:
        add(f"whole command: shipped birds-16k.yaml vs floor ({hours:g} h)", birds.get("vs_floor"), 0.6)
    w1, w2 = by.get("fieldkit-w1"), by.get("fieldkit-w2")
    if w1:  # information: the whole command with a cold cluster on a ~2 s job
        add("(whole command) fieldkit 1 worker vs floor", w1.get("vs_floor"), 0.8)
        add("(whole command) fieldkit 1 worker vs librosa-naive", w1.get("vs_librosa_naive"), 5.0)
    if w2:
        add("(whole command) fieldkit 2 workers / 1 worker", w2.get("speedup_2w_over_1w"), 1.5)
    for s in summary:
        if s["method"].startswith("fieldkit") and s.get("peak_rss_per_worker_mb"):
            add(f"{s['method']} peak RSS per worker MB (perf-anchors goal)", s["peak_rss_per_worker_mb"], 150.0, "<")
    return checks


def print_checks(checks: list[dict]) -> None:
    print("\nacceptance:")
    for c in checks:
        print(f"  {'PASS' if c['pass'] else 'FAIL'}  {c['check']}: {c['value']} (target {c['target']})")


# --------------------------------------------------------------------------- setup helpers
def warm_page_cache(paths) -> int:
    total = 0
    for p in paths:
        with open(p, "rb") as fh:
            while chunk := fh.read(1 << 22):
                total += len(chunk)
    return total


def ingest(ws, card: Path, deployment: str) -> dict:
    from fieldkit.ingest.service import IngestRequest, ingest_card

    t0 = time.perf_counter()
    report = ingest_card(ws, IngestRequest(card, "bench", deployment))
    seconds = time.perf_counter() - t0
    if report.state != "complete":
        raise SystemExit(f"ingest of {card} ended {report.state!r}: {report.counts}")
    return {"card": str(card), "deployment": deployment, "seconds": seconds, **report.counts}


def environment(anchors) -> dict:
    env = anchors.environment()
    from importlib import metadata
    for dist in ("fieldkit", "psutil", "threadpoolctl"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = None
    env["python_executable"] = sys.executable
    env["machine"] = platform.machine()
    return env


# --------------------------------------------------------------------------- default mode
def bench_default(args, shared: Path, tmp: Path, result: dict) -> None:
    make_corpus, anchors = _import_shared(shared)
    from fieldkit.workspace import init_workspace

    n_files = args.n if args.n else (10 if args.quick else round(args.hours * 3600 / args.duration))
    # One file every 5 min as before while the corpus fits in 04:00-21:00 (birds-16k's time-of-day
    # window); back to back beyond that. Names only: a file's samples depend on its index alone.
    interval = 300.0 if n_files * 300.0 <= 17 * 3600 else args.duration
    corpus_args = ["--n", str(n_files), "--duration", str(args.duration), "--sr", str(ANCHOR_SR), "--bits", "16",
                   "--interval", str(interval)]
    t0 = time.perf_counter()
    if args.corpus:  # made beforehand with the same arguments (make_corpus is deterministic)
        corpus = args.corpus.resolve()
        made = json.loads((corpus / "corpus.json").read_text())
        if (made["n"], made["duration"], made["sr"], made["bits"], made["interval"]) != (
                n_files, args.duration, ANCHOR_SR, 16, interval):
            raise SystemExit(f"{corpus}/corpus.json was made with other arguments than {corpus_args}")
    else:
        corpus = tmp / "corpus"
        make_corpus.main([str(corpus), *corpus_args])
    audio_s = n_files * args.duration
    result["corpus"] = {"dir": str(corpus), "files": n_files, "seconds_each": args.duration,
                        "sample_rate": ANCHOR_SR, "bits": 16, "audio_s": audio_s,
                        "make_s": time.perf_counter() - t0}
    print(f"corpus: {n_files} x {args.duration:g} s at 48 kHz/16-bit = {audio_s / 3600:.2f} h "
          f"(made in {result['corpus']['make_s']:.1f} s)", flush=True)

    ws = init_workspace(tmp / "ws")
    result["ingest"] = ingest(ws, corpus, "anchor-corpus")
    print(f"ingest: {result['ingest']['seconds']:.1f} s, {result['ingest'].get('ok')} ok", flush=True)
    wavs = sorted(corpus.glob("*.WAV")) + sorted(ws.paths.archive.rglob("*.WAV"))
    cli_files = cli_workflow_files(tmp, anchors, args.duration, args.clips_per_shard)
    warm_page_cache(wavs)

    workflow = anchor_workflow(args.duration, args.clips_per_shard, anchors)
    zstd_workflow = anchor_workflow(args.duration, args.clips_per_shard, anchors, level=1)
    result["workflow"] = workflow.to_dict()

    lhotse_note = lhotse_available()
    # floor-mp2 (the floor on a multiprocessing Pool of 2) is the control for 2w/1w: what two
    # processes gain on this machine at that moment (1.56-1.62x on a quiet machine).
    methods = (["floor", "floor-mp2", "librosa-naive"] + ([] if lhotse_note else ["lhotse-j1"]) + list(FK_METHODS)
               + list(CLI_METHODS))
    if args.methods:
        wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
        methods = [m for m in methods if m in wanted]
    if any(m.startswith("fieldkit") for m in methods):
        # Untimed warm-up of the in-process API rows: driver-side imports and first-call costs
        # (the cli- rows are fresh processes: nothing of this one carries over to them).
        import distributed  # noqa: F401

        import fieldkit.pipeline.tasks  # noqa: F401
        from fieldkit.pipeline.driver import run_workflow
        t0 = time.perf_counter()
        report = run_workflow(ws, workflow, workflow_source="benchmarks/process.py (warm-up)", workers=2,
                              cluster="local", new_run=True)
        _restore_env()
        _check_report(report, audio_s, n_files)
        _drop_store(ws, report)
        print(f"warm-up fieldkit run: {time.perf_counter() - t0:.1f} s ({report.tasks} tasks)", flush=True)
    by_method: dict[str, list[dict]] = {m: [] for m in methods}
    repeats = 1 if args.quick and args.repeats is None else (args.repeats or 3)
    for rep in range(repeats):
        order = methods[rep % len(methods):] + methods[:rep % len(methods)]
        for m in order:
            if m.startswith("cli-"):
                row = run_cli(m, ws.root, cli_files[CLI_METHODS[m][0]], audio_s)
            elif m.startswith("fieldkit"):
                row = run_fieldkit(m, ws, zstd_workflow if m.endswith("-zstd1") else workflow, audio_s, n_files)
            else:
                row = run_anchor(m, anchors, corpus, tmp)
            row["repeat"] = rep
            row["loadavg"] = loadavg()
            by_method[m].append(row)
            result["runs"].append(row)
            extra = f"  tasks {row['task_seconds']:.2f} s" if "task_seconds" in row else ""
            if "cluster_start_s" in row:
                extra += (f"  start {row['cluster_start_s']:.2f} s  imports {row['worker_import_s']:.2f} s"
                         f"  work {row['work_wall_s']:.2f} s "
                         f"(x{row['x_realtime_work']:.0f})")
            rss = row.get("peak_rss_per_worker_mb", row.get("peak_rss_mb"))
            print(f"rep {rep} {m:20s} wall {row['wall_s']:7.2f} s  x{row['x_realtime']:7.1f} RT  "
                  f"rss {rss}{extra}  load {row['loadavg']}", flush=True)
    result["summary"] = summarize(by_method)
    result["lhotse"] = lhotse_note or "installed"
    print_table(result["summary"], lhotse_note and f"n/a: lhotse {lhotse_note}; not run")
    print_cli_table(result["summary"])
    result["acceptance"] = acceptance(result["summary"], audio_s / 3600)
    print_checks(result["acceptance"])

    if args.profile:
        result["profile"] = profile_task(ws, workflow, shared, tmp)
    ws.close()


# --------------------------------------------------------------------------- profile
def profile_task(ws, workflow, shared: Path, tmp: Path) -> dict:
    """cProfile of process_task on the plan's first task, in fresh subprocesses (BLAS 1 thread)
    with and without MALLOC_TRIM_THRESHOLD_=65536, next to the floor on the same files."""
    import pickle
    import subprocess

    from fieldkit.pipeline.plan import plan_run

    store = str(tmp / "profile.zarr")
    with ws.catalogue.read() as s:
        plan = plan_run(s, workflow, ws.paths.archive, store)
    spec_file = tmp / "profile-plan.pkl"
    with open(spec_file, "wb") as fh:
        pickle.dump({"layout": plan.layout, "coords": plan.coords, "task": plan.tasks[0],
                     "store": store, "shared": str(shared)}, fh)
    out = {}
    for label, trim in (("MALLOC_TRIM_THRESHOLD_=65536 (dask's default for workers)", "65536"),
                        ("MALLOC_TRIM_THRESHOLD_ unset (as in fieldkit's workers)", None)):
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
        if trim:
            env["MALLOC_TRIM_THRESHOLD_"] = trim
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--_profile-worker", str(spec_file)],
                              env=env, capture_output=True, text=True, check=False)
        print(f"\n=== profile: process_task on task 0, {label} ===")
        print(proc.stdout)
        if proc.returncode:
            print(proc.stderr[-3000:])
        out[label] = proc.stdout
    print("\n=== worker import cost (fresh interpreter, RSS after each import) ===")
    out["imports"] = import_costs()
    return out


_IMPORT_PROBE = """
import importlib, json, sys, time
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
rows = []
for name in sys.argv[1:]:
    t0 = time.perf_counter()
    importlib.import_module(name)
    rows.append([name, round(time.perf_counter() - t0, 3), round(rss(), 1)])
print(json.dumps(rows))
"""

#: What a worker needs for process_task's computation and write, vs what it imports.
_LEAN_IMPORTS = ("distributed", "numpy", "scipy.fft", "soxr", "soundfile", "zarr", "fieldkit.dsp.features",
                 "fieldkit.dsp.resample", "fieldkit.dsp.clips", "fieldkit.io.audio.stream")
_TASK_IMPORTS = ("distributed", "pandas", "xarray", "dask.array", "sqlalchemy", "fieldkit.catalogue.runs",
                 "fieldkit.store.zarr_store", "fieldkit.pipeline.tasks")


def import_costs() -> dict:
    """Seconds and RSS of a fresh interpreter importing what a worker imports for process_task
    (importing fieldkit.pipeline.tasks runs fieldkit/pipeline/__init__ -> driver -> catalogue,
    plan -> store -> zarr_store -> xarray, dask.array, pandas) vs what the task needs."""
    import subprocess

    out = {}
    for label, mods in (("lean (what process_task uses)", _LEAN_IMPORTS),
                        ("as a worker imports fieldkit.pipeline.tasks", _TASK_IMPORTS)):
        proc = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, *mods], capture_output=True, text=True,
                              check=False)
        rows = json.loads(proc.stdout) if proc.returncode == 0 else []
        out[label] = rows
        total = sum(r[1] for r in rows[1:])
        print(f"  {label}: after distributed {rows[0][2] if rows else '?'} MB; then "
              + ", ".join(f"{n} +{t:.2f} s ({m:.0f} MB)" for n, t, m in rows[1:])
              + f"; total after distributed {total:.2f} s, final RSS {rows[-1][2] if rows else '?'} MB")
    return out


def profile_worker(spec_file: str) -> int:
    import cProfile
    import io
    import pickle
    import pstats

    from threadpoolctl import threadpool_limits

    with open(spec_file, "rb") as fh:
        spec = pickle.load(fh)
    _, anchors = _import_shared(Path(spec["shared"]))
    from fieldkit.pipeline.tasks import process_task
    from fieldkit.store.zarr_store import create_store

    threadpool_limits(1)  # as dask's nanny does (OPENBLAS_NUM_THREADS=1)
    task, store = spec["task"], spec["store"]
    files = [i.path for i in task.items]
    audio = sum(i.frames_present / i.sample_rate_hz for i in task.items)

    def fresh_store() -> None:
        shutil.rmtree(store, ignore_errors=True)
        create_store(store, spec["layout"], spec["coords"], {})

    def time_task() -> float:
        fresh_store()
        t0 = time.perf_counter()
        process_task(task)
        return time.perf_counter() - t0

    def time_floor() -> float:
        t0 = time.perf_counter()
        for f in files:
            anchors.floor_file(f, None)
        return time.perf_counter() - t0

    time_task()
    time_floor()  # warm-up
    fk = [time_task() for _ in range(3)]
    fl = [time_floor() for _ in range(3)]
    print(f"task 0: {len(files)} files, {audio:.0f} s of audio; MALLOC_TRIM_THRESHOLD_="
          f"{os.environ.get('MALLOC_TRIM_THRESHOLD_')}")
    print(f"process_task  median {statistics.median(fk) * 1e3:7.1f} ms  (x{audio / statistics.median(fk):.0f} RT)"
          f"  runs {[round(x * 1e3) for x in fk]}")
    print(f"floor_file    median {statistics.median(fl) * 1e3:7.1f} ms  (x{audio / statistics.median(fl):.0f} RT)"
          f"  runs {[round(x * 1e3) for x in fl]}  (no write)")
    print(f"process_task / floor = {statistics.median(fk) / statistics.median(fl):.2f}")
    fresh_store()
    prof = cProfile.Profile()
    prof.enable()
    process_task(task)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(22)
    stats.sort_stats("cumulative").print_stats(r"fieldkit", 30)
    text = buf.getvalue()
    print("\n".join(line for line in text.splitlines() if line.strip()))
    return 0


# --------------------------------------------------------------------------- --long mode
def write_long_wav(path: Path, seconds: float, rate: int = LONG_SR, seed: int = 20240601,
                   block_s: int = 10) -> dict:
    """Seeded noise + level-drifting tones + chirps, 16-bit mono PCM, written block by block.

    Tones have whole-Hz frequencies, so each repeats every second: one 1-s table per tone,
    tiled, with a gain that changes per block (a slow level drift). Block ``i`` depends only on
    (seed, i), so the 1-minute file equals the first minute of the long one.
    """
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    freqs = rng.integers(800, 7000, 4)
    levels = rng.uniform(0.01, 0.05, 4)
    t1 = np.arange(rate) / rate
    tables = np.stack([np.sin(2 * np.pi * f * t1) for f in freqs]).astype(np.float32)  # (4, rate)
    n_total = round(seconds * rate)
    block = block_s * rate
    written = 0
    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, subtype="PCM_16", format="WAV") as fh:
        fh.artist = "AudioMoth 24F319055FD9A1C0"
        fh.comment = "benchmarks/process.py --long synthetic recording"
        while written < n_total:
            i = written // block
            n = min(block, n_total - written)
            brng = np.random.default_rng([seed, i])
            x = brng.standard_normal(n, dtype=np.float32)
            x *= np.float32(0.003)
            gains = (levels * (0.6 + 0.4 * np.sin(2 * np.pi * i * block_s / (37.0 + 11 * np.arange(4))))
                     ).astype(np.float32)
            x += np.tile(gains @ tables, -(-n // rate))[:n]
            if brng.random() < 0.7:  # a 0.3 s chirp in most blocks
                m = min(int(0.3 * rate), n)
                start = int(brng.integers(0, n - m + 1))
                tt = np.arange(m) / rate
                f0, f1 = brng.uniform(1500, 6000, 2)
                x[start:start + m] += (0.2 * np.hanning(m) * np.sin(
                    2 * np.pi * (f0 * tt + (f1 - f0) * tt * tt / (2 * 0.3)))).astype(np.float32)
            x *= np.float32(32768.0)
            fh.write(np.clip(np.rint(x), -32768, 32767).astype(np.int16))
            written += n
    return {"path": str(path), "seconds": n_total / rate, "rate": rate, "bits": 16,
            "bytes": path.stat().st_size, "write_s": time.perf_counter() - t0}


def bench_long(args, shared: Path, tmp: Path, result: dict) -> None:
    from fieldkit.pipeline.driver import run_workflow
    from fieldkit.workspace import init_workspace

    long_s = 3600.0 * args.long_hours
    files = {
        "short-1m": write_long_wav(tmp / "card-short" / "20240601_040000.WAV", 60.0),
        "long": write_long_wav(tmp / "card-long" / "20240601_050000.WAV", long_s),
    }
    for name, f in files.items():
        print(f"wrote {name}: {f['seconds']:.0f} s at {f['rate']} Hz, {f['bytes'] / 1e6:.0f} MB "
              f"in {f['write_s']:.1f} s", flush=True)
    result["long_files"] = files
    ws = init_workspace(tmp / "ws-long")
    result["ingest"] = [ingest(ws, Path(f["path"]).parent, name) for name, f in files.items()]
    for row in result["ingest"]:
        print(f"ingest {row['deployment']}: {row['seconds']:.1f} s", flush=True)
    warm_page_cache(sorted(ws.paths.archive.rglob("*.WAV")))

    rows = []
    order = ["short-1m", "long"]
    for rep in range(args.long_repeats):
        for name in (order if rep % 2 == 0 else order[::-1]):
            workflow = birds16k_workflow(name)
            cluster = OwnCluster(ws, 1)
            try:
                with WorkerHWMSampler() as sampler:
                    t0 = time.perf_counter()
                    report = run_workflow(ws, workflow, workflow_source="benchmarks/process.py --long",
                                          scheduler=cluster.address, new_run=True)
                    work = time.perf_counter() - t0
                peak = cluster.peak_rss_mb()
                ru_maxrss = cluster.ru_maxrss_mb()
            finally:
                stop = cluster.close()
            _check_report(report, files[name]["seconds"], None)
            row = {"file": name, "repeat": rep, "audio_s": report.audio_seconds, "clips": report.clips_computed,
                   "tasks": report.tasks, "cluster_start_s": cluster.start_s, "worker_import_s": cluster.import_s,
                   "work_wall_s": work, "bare_rss_mb": max(cluster.bare_rss_mb),
                   "cluster_stop_s": stop, "x_realtime_work": report.audio_seconds / work,
                   "idle_rss_mb": max(cluster.idle_rss_mb), "peak_rss_mb": max(peak),
                   "vmhwm_sampled_mb": max(sampler.peaks_mb(), default=None),
                   "ru_maxrss_mb_inflated": max(ru_maxrss),
                   "worker_malloc_trim_threshold": cluster.worker_trim_env, "loadavg": loadavg()}
            _drop_store(ws, report)
            rows.append(row)
            result["runs"].append(row)
            print(f"rep {rep} {name:9s} {row['audio_s']:7.0f} s audio  work {work:6.2f} s "
                  f"(x{row['x_realtime_work']:.0f} RT)  worker peak RSS {row['peak_rss_mb']:.1f} MB "
                  f"(idle {row['idle_rss_mb']:.1f}, sampled {row['vmhwm_sampled_mb']})  load {row['loadavg']}", flush=True)
    ws.close()

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in rows if r["file"] == name)

    short_peak, long_peak = med("short-1m", "peak_rss_mb"), med("long", "peak_rss_mb")
    summary = {name: {k: med(name, k) for k in ("audio_s", "work_wall_s", "x_realtime_work", "idle_rss_mb",
                                                  "peak_rss_mb", "cluster_start_s")} for name in order}
    summary["ratio_long_over_short_peak_rss"] = long_peak / short_peak
    result["summary"] = summary
    print("\n| file | audio s | clips | work s | x RT | worker idle RSS MB | worker peak RSS MB | peak - idle MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in order:
        s = summary[name]
        clips = next(r["clips"] for r in rows if r["file"] == name)
        print(f"| {name} ({LONG_SR // 1000} kHz 16-bit) | {s['audio_s']:.0f} | {clips} | {s['work_wall_s']:.2f} | "
              f"{s['x_realtime_work']:.0f} | {s['idle_rss_mb']:.1f} | {s['peak_rss_mb']:.1f} | "
              f"{s['peak_rss_mb'] - s['idle_rss_mb']:.1f} |")
    print(f"peak RSS ratio long / 1-minute: {summary['ratio_long_over_short_peak_rss']:.3f}")
    checks = [
        {"check": f"worker peak RSS for the {args.long_hours:g} h 96 kHz file (MB)", "value": round(long_peak, 1),
         "target": "< 300", "pass": long_peak < 300},
        {"check": "worker peak RSS long / 1-minute file", "value": round(long_peak / short_peak, 3),
         "target": "<= 1.2", "pass": long_peak <= 1.2 * short_peak},
    ]
    result["acceptance"] = checks
    print_checks(checks)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 10 files, 1 repeat (with --long: 0.25 h)")
    p.add_argument("--long", action="store_true", help="2 h 96 kHz file vs 1 min file: worker peak RSS")
    p.add_argument("--n", type=int, default=None, help="corpus files (default 120 = 2 h; 10 with --quick)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per corpus file (= clip length)")
    p.add_argument("--hours", type=float, default=2.0, help="corpus length in hours (default 2; 10 for the "
                   "10 h targets); --n overrides it")
    p.add_argument("--corpus", type=Path, default=None, help="a corpus made beforehand by make_corpus.py with "
                   "the arguments this run would use (checked against its corpus.json): skips making it")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 3; 1 with --quick)")
    p.add_argument("--methods", default=None, help="comma-separated subset of the methods")
    p.add_argument("--clips-per-shard", type=int, default=4,
                   help="store shard (= task) size in 60 s clips for the anchor workflow (default 4)")
    p.add_argument("--profile", action="store_true", help="cProfile process_task on one task")
    p.add_argument("--long-hours", type=float, default=None, help="length of the long file (default 2)")
    p.add_argument("--long-repeats", type=int, default=1)
    p.add_argument("--workdir", default=os.environ.get("FIELDKIT_BENCH_DIR", "/work"),
                   help="parent of the temporary folder (default /work; /tmp may be small)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--shared-bench", type=Path, default=None, help="folder of make_corpus.py and anchors.py")
    p.add_argument("--json", type=Path, default=None, help="write environment, runs and summary here")
    p.add_argument("--_profile-worker", dest="profile_worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.profile_worker:
        return profile_worker(args.profile_worker)
    if args.long_hours is None:
        args.long_hours = 0.25 if args.quick else 2.0

    shared = (args.shared_bench or _default_shared_bench()).resolve()
    _, anchors = _import_shared(shared)
    result = {"mode": "long" if args.long else "default", "argv": sys.argv[1:], "environment": environment(anchors),
              "loadavg_start": loadavg(), "runs": []}
    print(json.dumps(result["environment"]), flush=True)
    print(f"load average at start: {result['loadavg_start']} (2 vCPUs; other work on the machine adds noise)",
          flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="fkbench-process-", dir=args.workdir))
    started = time.perf_counter()
    try:
        if args.long:
            bench_long(args, shared, tmp, result)
        else:
            bench_default(args, shared, tmp, result)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    result["loadavg_end"] = loadavg()
    result["total_s"] = time.perf_counter() - started
    print(f"load average at end: {result['loadavg_end']}; whole benchmark {result['total_s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
