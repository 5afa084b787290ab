"""S3 ingest benchmark: `fieldkit ingest` into an S3 archive vs `s3fs put` + `sha256sum`.

Builds a seeded synthetic card (``--files`` unique WAVs of ``--seconds`` s at 16 kHz, 16-bit:
1 000 x 32 s = 1 000 x 1.02 MB by default), starts a real S3 server in its own process
(moto's standalone server, :func:`fieldkit.testing.s3server.start_s3_server`) and, in one run,
interleaved, times:

1. the anchor: ``s3fs`` ``put`` of the card folder (recursive; s3fs uploads many files
   concurrently) into a fresh prefix, then ``sha256sum`` of every card file - copying to object
   storage and hashing the source, with no verification of what was stored;
2. the installed ``fieldkit ingest`` (a subprocess, as a user runs it) of the same card into a
   fresh workspace whose archive is ``s3://BUCKET/PREFIX`` (two reads of the card, a
   create-only upload hashed while streaming, every object read back and re-hashed, metadata
   and QC of every file, catalogue rows, an MHL manifest).

The page cache is dropped (when permitted) before every timed run, so both start from a cold
card. Each run writes to its own fresh bucket, deleted afterwards (moto holds objects in memory).
Prints the median seconds of each, the ratio ingest / anchor (target <= 1.5), MB/s, and the CPU
seconds each spent in its own processes and in the S3 server (on a shared, loaded machine the
wall times follow the CPU each side needs).

Usage::

    python benchmarks/s3_ingest.py                       # 1 000 x ~1 MB, 2 interleaved repeats
    python benchmarks/s3_ingest.py --files 200 --repeats 1
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
from pathlib import Path

import numpy as np

from fieldkit.testing.riffwriter import wav_bytes
from fieldkit.testing.s3server import TEST_CREDENTIALS, S3Server, start_s3_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import settle  # noqa: E402 - the local ingest benchmark's page-cache drop, one home


def make_card(root: Path, files: int, seconds: float, rate: int = 16_000, seed: int = 11) -> int:
    """``files`` unique WAVs (tone + seeded noise); returns the total bytes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    t = np.arange(int(seconds * rate)) / rate
    total = 0
    for i in range(files):
        x = 0.2 * np.sin(2 * np.pi * (200 + i % 3000) * t) + 0.01 * rng.standard_normal(t.size)
        data = wav_bytes(x, rate)
        (root / f"{20240501 + i // 288 % 28:08d}_{(i % 288) * 5 // 60:02d}{(i % 288) * 5 % 60:02d}00_{i:05d}.WAV"
         ).write_bytes(data)
        total += len(data)
    return total


def server_cpu(server: S3Server) -> float:
    """CPU seconds (user + system) the S3 server process has used so far."""
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def empty_bucket(server: S3Server, bucket: str) -> None:
    client = server.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    client.delete_bucket(Bucket=bucket)


def anchor(server: S3Server, card: Path, bucket: str) -> float:
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=server.endpoint, skip_instance_cache=True)
    files = sorted(str(p) for p in card.rglob("*") if p.is_file())
    start = time.perf_counter()
    fs.put(str(card) + "/", f"{bucket}/anchor/", recursive=True)
    for i in range(0, len(files), 2000):
        subprocess.run(["sha256sum", *files[i:i + 2000]], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    stored = len(fs.find(f"{bucket}/anchor"))
    if stored != len(files):
        raise SystemExit(f"anchor stored {stored} objects, expected {len(files)}")
    return seconds


def fieldkit_ingest(server: S3Server, card: Path, bucket: str, ws: Path) -> tuple[float, dict]:
    exe = Path(sys.executable).with_name("fieldkit")
    subprocess.run([str(exe), "init", str(ws), "--archive", f"s3://{bucket}/archive",
                    "--storage-option", f"endpoint_url={server.endpoint}"], check=True, capture_output=True)
    start = time.perf_counter()
    done = subprocess.run([str(exe), "-w", str(ws), "ingest", str(card), "--site", "bench", "--deployment", "d1",
                           "--json"], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"fieldkit ingest failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    return seconds, {**report["counts"], "state": report["state"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=32.0, help="length of each file (16 kHz, 16-bit)")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved repeats (median reported)")
    ap.add_argument("--json", type=Path, help="also write the row as JSON")
    args = ap.parse_args(argv)
    os.environ.update({k: v for k, v in TEST_CREDENTIALS.items() if k not in os.environ})
    runs: dict[str, list[float]] = {"anchor": [], "fieldkit": []}
    cpu: dict[str, list[tuple[float, float]]] = {"anchor": [], "fieldkit": []}  # (client, server) seconds
    counts: dict = {}
    dropped = False
    server = start_s3_server()
    try:
        with tempfile.TemporaryDirectory(dir=os.environ.get("FIELDKIT_BENCH_DIR", "/work")) as tmp:
            work = Path(tmp)
            n_bytes = make_card(work / "card", args.files, args.seconds)
            for rep in range(args.repeats):
                for method in (["anchor", "fieldkit"] if rep % 2 == 0 else ["fieldkit", "anchor"]):
                    bucket = server.make_bucket()
                    dropped = settle()
                    before = (time.process_time() + children_cpu(), server_cpu(server))
                    if method == "anchor":
                        seconds = anchor(server, work / "card", bucket)
                    else:
                        seconds, counts = fieldkit_ingest(server, work / "card", bucket, work / f"ws-{rep}")
                        shutil.rmtree(work / f"ws-{rep}")
                    cpu[method].append((time.process_time() + children_cpu() - before[0],
                                        server_cpu(server) - before[1]))
                    empty_bucket(server, bucket)
                    runs[method].append(seconds)
                    print(f"  rep {rep} {method:9s} {seconds:7.2f} s  (CPU: client {cpu[method][-1][0]:.1f} s, "
                          f"S3 server {cpu[method][-1][1]:.1f} s)", flush=True)
    finally:
        server.stop()
    med = {k: statistics.median(v) for k, v in runs.items()}
    row = {"files": args.files, "bytes": n_bytes, "repeats": args.repeats, "page_cache_dropped": dropped,
           "load_average": [round(x, 2) for x in os.getloadavg()],
           "anchor_s3fs_put_sha256sum_s": round(med["anchor"], 3), "fieldkit_ingest_s": round(med["fieldkit"], 3),
           "runs_s": {k: [round(x, 3) for x in v] for k, v in runs.items()},
           "ratio": round(med["fieldkit"] / med["anchor"], 3),
           "cpu_s": {k: {"client": round(statistics.median(c for c, _ in v), 1),
                         "s3_server": round(statistics.median(srv for _, srv in v), 1)} for k, v in cpu.items()},
           "fieldkit_MB_per_s": round(n_bytes / med["fieldkit"] / 1e6, 1),
           "anchor_MB_per_s": round(n_bytes / med["anchor"] / 1e6, 1),
           "verified": counts.get("verified"), "state": counts.get("state")}
    print(json.dumps(row))
    print(f"{args.files} files, {n_bytes / 1e6:.0f} MB: s3fs put + sha256sum {med['anchor']:.2f} s, "
          f"fieldkit ingest {med['fieldkit']:.2f} s, ratio {row['ratio']:.2f} (target <= 1.5)")
    if args.json:
        args.json.write_text(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
