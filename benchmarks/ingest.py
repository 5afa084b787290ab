"""Ingest benchmark: `fieldkit ingest` side by side with `cp -r` + `sha256sum` of source and copy.

Builds a seeded synthetic card (many small files and a few large ones), then in one run times:

1. the anchor: ``cp -r CARD DST`` then ``sha256sum`` of every source file and every copy (the
   shell habit fieldkit replaces), and the same followed by ``sync`` (cp itself never fsyncs);
2. ``fieldkit ingest`` of the same card into a fresh workspace (fsync on, verified copy: staged
   copy hashed while streaming, fsync, page-cache eviction and re-read of the copy, a second
   independent read of the source, catalogue rows, metadata and QC of every file, manifest).

Reports wall times (median of ``--repeats`` interleaved runs, min-max beside it), the ratio
ingest / anchor and files per second. Before every timed run the page cache is flushed and,
when permitted (root), dropped (``/proc/sys/vm/drop_caches``), so both start from the same cold
card; the previous run's output is deleted before the flush, so its deferred writeback and
discards are not charged to the next run. The disk of a shared VM is noisy (the anchor alone
varies 0.8-3 s for 2000 files from one invocation to the next): compare the ratios of one run.
Usage::

    python benchmarks/ingest.py                 # mixed card + 10 000 one-second files, 3 repeats
    python benchmarks/ingest.py --small 2000 --quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.testing.riffwriter import wav_bytes
from fieldkit.workspace import init_workspace


def make_card(root: Path, n_small: int, n_large: int, large_s: float, rate: int = 16_000, seed: int = 7) -> int:
    """Unique 1-s files (tone + seeded noise) and a few long ones; returns total bytes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    t = np.arange(rate) / rate
    total = 0
    for i in range(n_small):
        x = 0.2 * np.sin(2 * np.pi * (200 + i % 3000) * t) + 0.01 * rng.standard_normal(rate)
        day, rest = divmod(i, 288)
        name = f"{20240501 + day % 28:08d}_{(rest * 300) // 3600:02d}{(rest * 300) % 3600 // 60:02d}00_{i:05d}.WAV"
        data = wav_bytes(x, rate)
        (root / name).write_bytes(data)
        total += len(data)
    for i in range(n_large):
        x = 0.1 * rng.standard_normal(int(large_s * rate)).astype(np.float32)
        data = wav_bytes(x, rate)
        (root / f"LONG_{i:02d}.WAV").write_bytes(data)
        total += len(data)
    return total


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def settle() -> bool:
    """Flush dirty pages and drop the page cache (if permitted); True if the cache was dropped."""
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def anchor(card: Path, dst: Path, sync: bool) -> float:
    def run() -> None:
        subprocess.run(["cp", "-r", str(card), str(dst)], check=True)
        for folder in (card, dst):
            files = sorted(str(p) for p in folder.rglob("*") if p.is_file())
            for i in range(0, len(files), 2000):
                subprocess.run(["sha256sum", *files[i:i + 2000]], check=True, stdout=subprocess.DEVNULL)
        if sync:
            subprocess.run(["sync"], check=True)
    return timed(run)


def fieldkit_ingest(card: Path, ws_dir: Path) -> tuple[float, dict]:
    ws = init_workspace(ws_dir)
    result = {}

    def run() -> None:
        report = ingest_card(ws, IngestRequest(card, "bench", "d1"))
        result.update(report.counts, state=report.state)
    seconds = timed(run)
    ws.close()
    return seconds, result


def bench(label: str, card: Path, work: Path, n_files: int, n_bytes: int, repeats: int) -> dict:
    runs: dict[str, list[float]] = {"cp": [], "cp_sync": [], "fieldkit": []}
    counts: dict = {}
    dropped = False
    for rep in range(repeats):
        order = ["cp", "cp_sync", "fieldkit"]
        order = order[rep % 3:] + order[:rep % 3]
        for method in order:
            out = work / f"out-{method}"
            shutil.rmtree(out, ignore_errors=True)
            dropped = settle()
            if method == "fieldkit":
                seconds, counts = fieldkit_ingest(card, out)
            else:
                seconds = anchor(card, out, sync=method == "cp_sync")
            runs[method].append(seconds)
            print(f"  {label} rep {rep} {method:9s} {seconds:7.2f} s", flush=True)
    for method in runs:
        shutil.rmtree(work / f"out-{method}", ignore_errors=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {"card": label, "files": n_files, "bytes": n_bytes, "repeats": repeats, "page_cache_dropped": dropped,
            "cp_sha256sum_s": round(med["cp"], 3), "cp_sha256sum_sync_s": round(med["cp_sync"], 3),
            "fieldkit_ingest_s": round(med["fieldkit"], 3),
            "runs_s": {k: [round(x, 3) for x in v] for k, v in runs.items()},
            "ratio_vs_cp_sha256sum": round(med["fieldkit"] / med["cp"], 3),
            "ratio_vs_cp_sha256sum_sync": round(med["fieldkit"] / med["cp_sync"], 3),
            "fieldkit_files_per_s": round(n_files / med["fieldkit"], 1),
            "fieldkit_MB_per_s": round(n_bytes / med["fieldkit"] / 1e6, 1),
            "verified": counts.get("verified"), "state": counts.get("state")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=10_000, help="one-second files on the small-file card")
    ap.add_argument("--mixed-small", type=int, default=2_000)
    ap.add_argument("--large", type=int, default=3)
    ap.add_argument("--large-s", type=float, default=3600.0, help="length of each large file (s, 16 kHz)")
    ap.add_argument("--quick", action="store_true", help="mixed card only, smaller")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats per card (median reported)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("FIELDKIT_BENCH_DIR", "/work")) as tmp:
        work = Path(tmp)
        n_bytes = make_card(work / "mixed", args.mixed_small, args.large, args.large_s)
        rows.append(bench("mixed", work / "mixed", work, args.mixed_small + args.large, n_bytes, args.repeats))
        if not args.quick:
            n_bytes = make_card(work / "small", args.small, 0, 0)
            rows.append(bench(f"{args.small} x 1 s", work / "small", work, args.small, n_bytes, args.repeats))
    for row in rows:
        print(json.dumps(row))
    header = f"{'card':<11}{'files':>7}{'MB':>8}{'cp+sha':>9}{'+sync':>8}{'ingest':>9}{'ratio':>7}{'ratio*':>8}{'files/s':>9}"
    print(header)
    for r in rows:
        print(f"{r['card']:<11}{r['files']:>7}{r['bytes'] / 1e6:>8.0f}{r['cp_sha256sum_s']:>9.2f}"
              f"{r['cp_sha256sum_sync_s']:>8.2f}{r['fieldkit_ingest_s']:>9.2f}{r['ratio_vs_cp_sha256sum']:>7.2f}"
              f"{r['ratio_vs_cp_sha256sum_sync']:>8.2f}{r['fieldkit_files_per_s']:>9.0f}")
    print("ratio = ingest / (cp -r + sha256sum of both); ratio* = the same with sync after cp")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
