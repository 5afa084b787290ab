#!/usr/bin/env python3
"""`fieldkit process` with the archive and the store on an S3 server vs on local disk.

What one invocation does:

1. starts a private S3 server (moto's standalone server, its own process on 127.0.0.1:
   ``fieldkit.testing.s3server``; the same client code fieldkit uses against AWS);
2. builds the seeded 1 h corpus (``shared/bench/make_corpus.py --n 60``: 60 x 60 s, 48 kHz,
   16-bit), ingests it into a local workspace, copies that workspace, and moves the copy's
   archive into the bucket (object for object; the catalogue's paths are archive-relative), its
   ``stores_root`` on the bucket too;
3. times the installed ``fieldkit process WORKFLOW --new-run --json --workers 2 --cluster local``
   (``--paths auto``: with no option, the path a user gets by default)
   (a subprocess, spawn to exit) on both, interleaved over ``--repeats``, with birds-16k's
   parameters (3 s clips, waveform stored, mel/MFCC/chroma/centroid/bandwidth/rms, zstd 1);
   throughput = audio seconds / wall; the ratio S3 / local (target >= 0.6); beside each wall time,
   the CPU seconds of the command's process tree (driver and workers) and of the S3 server;
   before them, the server's own PUT/GET rate (5 MB objects, no compute): the run's bound;
4. lists the S3 store's objects: count and sizes per variable (object sizing for object storage);
5. counts the catalogue statements (INSERT/UPDATE/DELETE) the driver issues for one run;
6. measures the scheduler's overhead per task: ``--noop`` no-op tasks on a 2-worker LocalCluster;
7. with ``--long``: writes a 2 h 96 kHz 16-bit mono file (and a 1 min one made the same way),
   puts both in the bucket, processes each from S3 on a fresh 1-worker LocalCluster and reports
   the worker's peak RSS (VmHWM; target < 300 MB for the 2 h file).

Everything is printed and written as JSON to ``--out`` (default: stdout only).
Run from the repository root: ``python benchmarks/s3_process.py [--long] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import process as bench  # noqa: E402 - the processing benchmark's corpus, workflow and cluster helpers

FIELDKIT = Path(sys.executable).parent / "fieldkit"


def _s3_copy(base: Path, server, bucket: str) -> tuple[Path, Path]:
    """(local workspace, its copy with archive and stores on ``bucket``)."""
    from fieldkit.testing.s3workspace import copy_archive_to, use_s3_roots

    shutil.copytree(base / "local", base / "s3")
    t0 = time.perf_counter()
    copy_archive_to(base / "s3" / "archive", f"s3://{bucket}/archive", server.storage_options)
    print(f"archive copied to s3://{bucket}/archive in {time.perf_counter() - t0:.1f} s", flush=True)
    shutil.rmtree(base / "s3" / "archive")
    use_s3_roots(base / "s3", server.storage_options, archive=f"s3://{bucket}/archive",
                 stores=f"s3://{bucket}/stores")
    return base / "local", base / "s3"


def _cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (/proc/PID/stat), None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: How the command is run: a LocalCluster of 2 (the first measurements), and the default a user
#: gets without options (on 2 cores: in process, pipeline/execution.py).
PATHS = {"local2": ["--workers", "2", "--cluster", "local"], "auto": []}


def _run_cli(ws: Path, workflow: Path, server_pid: int | None = None, path: str = "local2") -> dict:
    """One timed ``fieldkit process``; besides wall time, the CPU seconds of the command's
    process tree (driver and workers) and of the S3 server over the same span."""
    server0, children0 = _cpu_s(server_pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([str(FIELDKIT), "-w", str(ws), "process", str(workflow), "--new-run", "--json",
                           *PATHS[path]], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    children1, server1 = resource.getrusage(resource.RUSAGE_CHILDREN), _cpu_s(server_pid)
    if done.returncode != 0:
        raise SystemExit(f"fieldkit process on {ws} failed ({done.returncode}): {done.stderr[-3000:]}")
    doc = json.loads(done.stdout)
    return {"wall_s": wall, "audio_s": doc["audio_seconds"], "clips": doc["clips_computed"], "tasks": doc["tasks"],
            "task_seconds": doc["task_seconds"], "run_seconds": doc["seconds"], "store": doc["store"],
            "execution": doc.get("execution"),
            "x_realtime": doc["audio_seconds"] / wall, "loadavg": bench.loadavg(),
            "cpu_s": round(children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime, 2),
            "server_cpu_s": None if server0 is None or server1 is None else round(server1 - server0, 2)}


def _object_sizes(server, bucket: str, prefix: str) -> dict:
    """Objects of one store under ``prefix``: per variable, count and sizes (bytes)."""
    client = server.client()
    sizes: dict[str, list[int]] = defaultdict(list)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix):].lstrip("/")
            name = rel.rsplit("/", 1)[0] if "/" in rel else "(group metadata)"
            sizes[name if "/c." in rel or "/" not in rel else name + " (metadata)"].append(obj["Size"])
    out = {}
    for name, values in sorted(sizes.items()):
        out[name] = {"objects": len(values), "median_bytes": int(statistics.median(values)),
                     "max_bytes": max(values), "total_bytes": sum(values)}
    everything = [v for values in sizes.values() for v in values]
    out["ALL"] = {"objects": len(everything), "median_bytes": int(statistics.median(everything)),
                  "max_bytes": max(everything), "total_bytes": sum(everything)}
    return out


def _catalogue_writes(ws_dir: Path, workflow) -> dict:
    """Statements the driver sends to the catalogue for one in-process run of ``workflow``."""
    from sqlalchemy import event

    from fieldkit.pipeline.driver import run_workflow
    from fieldkit.workspace import open_workspace

    counts: dict[str, int] = defaultdict(int)
    with open_workspace(ws_dir) as ws:
        def count(conn, cursor, statement, parameters, context, executemany):
            verb = statement.lstrip().split(None, 1)[0].upper()
            counts[verb] += 1
            if executemany:
                counts[f"{verb} rows (executemany)"] += len(parameters)

        event.listen(ws.catalogue.engine, "before_cursor_execute", count)
        report = run_workflow(ws, workflow, workflow_source="benchmarks/s3_process.py", new_run=True,
                              cluster="inprocess")
        counts["items (recording x channel)"] = report.n_recordings
        counts["tasks"] = report.tasks
    return dict(counts)


def _server_throughput(server, bucket: str, objects: int = 10, size: int = 5 << 20) -> dict:
    """The S3 server's own PUT and GET rate through fieldkit's adapter, no compute: the bound of
    a run whose bytes all pass through it (moto is one Python process sharing the machine)."""
    from fieldkit.io.storage import open_root

    root = open_root(f"s3://{bucket}/throughput", base=Path("."), options=server.storage_options)
    data = os.urandom(size)
    t0 = time.perf_counter()
    for i in range(objects):
        root.put_bytes(f"o{i}", data)
    t1 = time.perf_counter()
    for i in range(objects):
        root.read_bytes(f"o{i}")
    t2 = time.perf_counter()
    mb = objects * size / 1e6
    return {"put_mb_s": round(mb / (t1 - t0), 1), "get_mb_s": round(mb / (t2 - t1), 1), "objects": objects,
            "object_mb": size / 1e6}


def _noop() -> None:
    return None


def _scheduler_overhead(n: int) -> dict:
    """Wall per no-op task on a 2-worker LocalCluster (submit, schedule, run, gather)."""
    from distributed import Client, LocalCluster, wait

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        client.run(_noop)  # warm
        rows = []
        for _ in range(3):
            t0 = time.perf_counter()
            futures = [client.submit(_noop, pure=False) for _ in range(n)]
            wait(futures)
            rows.append((time.perf_counter() - t0) / n)
            del futures
    return {"tasks": n, "per_task_ms_runs": [round(r * 1e3, 3) for r in rows],
            "per_task_ms_median": round(statistics.median(rows) * 1e3, 3)}


def _long(base: Path, server, bucket: str, hours: float) -> dict:
    from fieldkit.pipeline.driver import run_workflow
    from fieldkit.workspace import init_workspace, open_workspace

    files = {"short-1m": bench.write_long_wav(base / "card-short" / "20240601_040000.WAV", 60.0),
             "long": bench.write_long_wav(base / "card-long" / "20240601_050000.WAV", 3600.0 * hours)}
    for name, f in files.items():
        print(f"wrote {name}: {f['seconds']:.0f} s at {f['rate']} Hz, {f['bytes'] / 1e6:.0f} MB", flush=True)
    (base / "long").mkdir()
    ws = init_workspace(base / "long" / "local")
    for name, f in files.items():
        bench.ingest(ws, Path(f["path"]).parent, name)
    ws.close()
    for f in files.values():
        Path(f["path"]).unlink()
    # a plain multipart upload: moto answered the conditional COMPLETE (If-None-Match) of this
    # 1.4 GB object with a 500 (measured); the condition is not what is measured here
    from fieldkit.io.storage import open_root
    from fieldkit.testing.s3workspace import use_s3_roots

    local_dir, s3_dir = base / "long" / "local", base / "long" / "s3"
    shutil.copytree(local_dir, s3_dir, ignore=shutil.ignore_patterns("archive"))
    root = open_root(f"s3://{bucket}/archive", base=base, options=server.storage_options)
    t0 = time.perf_counter()
    for path in sorted(p for p in (local_dir / "archive").rglob("*") if p.is_file()):
        root.fs.put_file(str(path), f"{bucket}/archive/{path.relative_to(local_dir / 'archive').as_posix()}")
    print(f"long files uploaded in {time.perf_counter() - t0:.1f} s", flush=True)
    use_s3_roots(s3_dir, server.storage_options, archive=f"s3://{bucket}/archive", stores=f"s3://{bucket}/stores")
    rows = {}
    with open_workspace(s3_dir) as ws:
        for name in ("short-1m", "long"):
            cluster = bench.OwnCluster(ws, 1)
            try:
                t0 = time.perf_counter()
                report = run_workflow(ws, bench.birds16k_workflow(name), workflow_source="benchmarks/s3_process.py",
                                      scheduler=cluster.address, new_run=True)
                wall = time.perf_counter() - t0
                peak = max(cluster.peak_rss_mb())
            finally:
                cluster.close()
            if report.state != "complete":
                raise SystemExit(f"the {name} run ended {report.state}: {report.failures}")
            rows[name] = {"audio_s": report.audio_seconds, "clips": report.clips_computed, "wall_s": wall,
                          "worker_peak_rss_mb": round(peak, 1), "idle_rss_mb": round(max(cluster.idle_rss_mb), 1)}
            print(f"{name}: {report.audio_seconds:.0f} s audio from S3 in {wall:.1f} s, worker peak RSS "
                  f"{peak:.1f} MB (idle {max(cluster.idle_rss_mb):.1f})", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60, help="corpus files of 60 s (default 60 = 1 h)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--paths", default="local2", help=f"comma-separated, of {', '.join(PATHS)}: how the command "
                   "runs (local2: --workers 2 --cluster local; auto: no option, the user's default)")
    p.add_argument("--workflow", choices=("birds16k", "anchor"), default="birds16k",
                   help="birds16k (waveform stored) or the anchors' job (features only)")
    p.add_argument("--noop", type=int, default=2000, help="no-op tasks for the scheduler overhead")
    p.add_argument("--long", action="store_true", help="also the 2 h 96 kHz worker peak RSS from S3")
    p.add_argument("--long-hours", type=float, default=2.0)
    p.add_argument("--long-only", action="store_true", help="only the 2 h 96 kHz worker peak RSS from S3")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--tmp", type=Path, default=Path("/work/tmp") if Path("/work").is_dir() else None)
    args = p.parse_args(argv)

    from fieldkit.testing.s3server import s3_server
    from fieldkit.workspace import init_workspace

    result: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "loadavg_start": bench.loadavg()}
    if args.tmp:
        args.tmp.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="fk-s3bench-", dir=args.tmp))
    try:
        with s3_server() as server:
            bucket = server.make_bucket()
            if args.long_only:
                result["long"] = _long(base, server, bucket, args.long_hours)
                return _write(result, args.out)
            make_corpus, anchors = bench._import_shared(bench._default_shared_bench())
            corpus = base / "corpus"
            make_corpus.main([str(corpus), "--n", str(args.n), "--duration", "60", "--sr", "48000", "--bits", "16",
                              "--interval", "300"])
            ws = init_workspace(base / "local")
            result["ingest"] = bench.ingest(ws, corpus, "anchor-corpus")
            ws.close()
            shutil.rmtree(corpus)
            local_dir, s3_dir = _s3_copy(base, server, bucket)
            # birds-16k (waveform stored: writes about as much as it reads) or the anchors' job
            # (features only: the store is ~1/20 of the audio read)
            workflow = (bench.birds16k_workflow("anchor-corpus") if args.workflow == "birds16k"
                        else bench.anchor_workflow(60.0, 8, anchors, level=1))
            result["workflow"] = args.workflow
            wf_file = base / "wf.yaml"
            wf_file.write_text(yaml.safe_dump(workflow.to_dict()))

            result["server_throughput"] = _server_throughput(server, bucket)
            print(f"S3 server alone: {result['server_throughput']}", flush=True)
            result["process"] = {}
            for path in args.paths.split(","):
                runs: dict[str, list[dict]] = {"local": [], "s3": []}
                for rep in range(args.repeats):
                    for where in (("local", "s3") if rep % 2 == 0 else ("s3", "local")):
                        row = _run_cli(local_dir if where == "local" else s3_dir, wf_file,
                                       server.process.pid if server.process is not None else None, path)
                        runs[where].append(row)
                        print(f"[{path}] rep {rep} {where:5s} wall {row['wall_s']:6.2f} s  x{row['x_realtime']:.0f} "
                              f"real time  tasks {row['tasks']} ({row['execution']})  CPU {row['cpu_s']} s "
                              f"(server {row['server_cpu_s']} s)  load {row['loadavg']}", flush=True)
                med = {w: statistics.median(r["x_realtime"] for r in rows) for w, rows in runs.items()}
                result["process"][path] = {"args": PATHS[path], "runs": runs, "x_realtime_median": med,
                                           "ratio_s3_over_local": med["s3"] / med["local"]}
                print(f"[{path}] throughput S3 / local: {med['s3'] / med['local']:.2f} (target >= 0.6)", flush=True)

            store = runs["s3"][-1]["store"]
            prefix = store.split("://", 1)[1].split("/", 1)[1]
            result["objects"] = _object_sizes(server, bucket, prefix)
            for name, row in result["objects"].items():
                print(f"  {name:32s} {row['objects']:5d} objects  median {row['median_bytes'] / 1e3:9.1f} kB  "
                      f"max {row['max_bytes'] / 1e6:7.2f} MB", flush=True)
            wf_small = bench.birds16k_workflow("anchor-corpus")
            result["catalogue_writes"] = _catalogue_writes(s3_dir, wf_small)
            print(f"catalogue statements of one run: {result['catalogue_writes']}", flush=True)
            result["scheduler_overhead"] = _scheduler_overhead(args.noop)
            print(f"scheduler overhead: {result['scheduler_overhead']}", flush=True)
            if args.long:
                result["long"] = _long(base, server, server.make_bucket(), args.long_hours)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return _write(result, args.out)


def _write(result: dict, out: Path | None) -> int:
    result["loadavg_end"] = bench.loadavg()
    if out:
        out.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    raise SystemExit(main())
