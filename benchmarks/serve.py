"""``fieldkit serve`` latency on a catalogue of 10 000 recordings.

Builds a workspace whose catalogue holds ``--recordings`` recordings (default 10 000):

* ``--real`` (default 12) come from a real ingest of a synthetic AudioMoth card (10 s files at
  32 kHz), so that their spectrograms are rendered from real archived files;
* the rest are **synthetic rows** written with the catalogue's own write functions
  (``writes.ensure_site``/``ensure_deployment``/``ensure_device``/``ensure_card``/
  ``create_session``/``insert_recordings``/``insert_inventory``): 4 sites x 5 deployments, one
  file every 5 minutes, 95 % ok, 3 % truncated, 2 % quarantined, QC values and a card sighting
  each. Their archive files do not exist; only the table pages and the recording pages read them.

Then starts ``fieldkit serve`` as its own process (``fieldkit.testing.serving.running_server``)
and times sequential requests from this process (wall time, connection included):

* recordings page: the default first page; filtered (site + status + QC) and sorted pages; a deep
  page (offset 9 000); a free-text search;
* a recording page (random ids);
* after one request of each kind to warm up (the server's first imports, the page cache);
* a spectrogram: ``cold`` = first request of a real file (rendered from the archive and written to
  the cache), ``warm`` = the same again (served from the cache);
* the overview (timelines of 10 000 recordings).

Reports p50/p95 wall time in ms for each, and whether the table pages meet the target p95 <
300 ms; beside them, for the table and recording pages, the server process's CPU time per request
over a further batch of 50 (from ``/proc/PID/stat``): on a shared machine the wall times follow
the load average, the CPU time much less.
Usage::

    python benchmarks/serve.py                    # 10 000 recordings, 200 requests per table page kind
    python benchmarks/serve.py --requests 50 --json out.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from fieldkit.catalogue import writes
from fieldkit.ingest.service import IngestRequest, ingest_card
from fieldkit.testing.cards import audiomoth_card
from fieldkit.testing.serving import running_server
from fieldkit.workspace import init_workspace

TARGET_P95_MS = 300.0


def synthetic_rows(ws, n: int, seed: int = 11) -> None:
    """``n`` recordings, their devices, deployments and card sightings, through the write functions."""
    rng = random.Random(seed)
    start = dt.datetime(2024, 4, 1, tzinfo=dt.timezone.utc)
    with ws.catalogue.write() as s:
        card = writes.ensure_card(s, "bench-card")
        deployments = []
        for site_no in range(4):
            site = writes.ensure_site(s, f"site-{site_no}")
            for dep_no in range(5):
                dep_id, _ = writes.ensure_deployment(s, site, f"dep-{site_no}-{dep_no}", "+00:00", "UTC")
                device = writes.ensure_device(s, "Open Acoustic Devices", "AudioMoth", f"24E1440{site_no}{dep_no:02d}")
                session = writes.create_session(s, card_id=card, deployment_id=dep_id, state="complete",
                                                source_root="/media/card", inventory_fingerprint=f"{site_no}{dep_no}")
                deployments.append((dep_id, device, session, f"site-{site_no}/dep-{site_no}-{dep_no}"))
        rows, sightings = [], []
        for i in range(n):
            dep_id, device, session, folder = deployments[i % len(deployments)]
            status = "ok" if i % 100 < 95 else ("truncated" if i % 100 < 98 else "quarantined")
            when = start + dt.timedelta(minutes=5 * (i // len(deployments)))
            sha = f"{rng.getrandbits(256):064x}"
            name = f"{when:%Y%m%d_%H%M%S}.WAV"
            rows.append({
                "sha256": sha, "size_bytes": 5_760_044, "archive_path": f"{folder}/{name}", "deployment_id": dep_id,
                "device_id": device, "format": "wav", "sample_rate_hz": rng.choice((48_000, 48_000, 96_000, 384_000)),
                "channels": 1, "bit_depth": 16, "subtype": "PCM_16", "frames_declared": 2_880_000,
                "frames_present": 2_880_000 if status == "ok" else 1_000_000, "duration_s": 60.0,
                "start_time_utc": when, "time_source": "audiomoth_comment", "time_discrepancy_s": 0.0,
                "times": {"time_source": "audiomoth_comment", "candidates": []}, "status": status,
                "reason": None if status == "ok" else ("truncated_data" if status == "truncated" else "bad_header"),
                "peak_dbfs": -rng.uniform(0.0, 40.0), "clipped_samples": rng.choice((0,) * 19 + (12,)),
                "dc_offset": rng.uniform(-0.02, 0.02), "silent_fraction": rng.uniform(0.0, 1.0),
            })
            sightings.append((session, name, sha))
        ids = writes.insert_recordings(s, rows)
        for session in {x[0] for x in sightings}:
            writes.insert_inventory(s, session, [
                {"raw_path": name.encode(), "display_path": name, "size_bytes": 5_760_044, "state": "verified",
                 "sha256": sha, "recording_id": ids[sha][0]} for sess, name, sha in sightings if sess == session])


def build(root: Path, n: int, real: int) -> dict:
    """The workspace; returns the real recordings' ids and timings of the build."""
    t0 = time.perf_counter()
    ws = init_workspace(root / "ws")
    audiomoth_card(root / "card", start=dt.datetime(2024, 5, 1, 22, 0), count=real, seconds=10.0,
                   sample_rate_hz=32_000)
    report = ingest_card(ws, IngestRequest(root / "card", "real-site", "real-deployment", timezone="+00:00"))
    t1 = time.perf_counter()
    synthetic_rows(ws, n - report.counts["verified"])  # the card's CONFIG.TXT is a (sidecar) row too
    t2 = time.perf_counter()
    from fieldkit.catalogue import queries

    with ws.catalogue.read() as s:
        real_ids = [r.id for r in queries.list_recordings(s, queries.RecordingFilter(deployment="real-deployment"))
                    if r.status == "ok"]
        total = len(queries.list_recordings(s))
    ws.close()
    return {"workspace": root / "ws", "real_ids": real_ids, "recordings": total, "ingest_s": t1 - t0,
            "synthetic_s": t2 - t1, "verified": report.counts.get("verified")}


def timed_get(url: str) -> float:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        assert response.status == 200, (url, response.status)
    return (time.perf_counter() - t) * 1000.0


def summary(ms: list[float]) -> dict:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(p95, 1),
            "max_ms": round(ordered[-1], 1)}


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_ms(base: str, pid: int, targets: list[str]) -> float:
    """The server's CPU time per request over a batch: what a request costs, whatever the load."""
    before = cpu_s(pid)
    for target in targets:
        timed_get(base + target)
    return round((cpu_s(pid) - before) * 1000.0 / len(targets), 1)


def measure(base: str, built: dict, requests: int, pid: int, seed: int = 5) -> dict:
    rng = random.Random(seed)
    n = built["recordings"]
    table = {
        "recordings (first page)": lambda: "recordings",
        "recordings (filtered, sorted)": lambda: (f"recordings?site=site-{rng.randrange(4)}&status=ok&qc=clipped"
                                                  f"&sort={rng.choice(['duration', 'peak', 'start', 'path'])}"
                                                  f"&order={rng.choice(['asc', 'desc'])}"),
        "recordings (page 180: offset 8 950)": lambda: "recordings?page=180",
        "recordings (search)": lambda: f"recordings?q={rng.randrange(10, 30)}0000",
        "recording page": lambda: f"recordings/{rng.randrange(1, n + 1)}",
    }
    timings: dict[str, list[float]] = {name: [] for name in table}
    for target in ("recordings", "recordings/1", "", "recordings"):  # the server's first imports, the page cache
        timed_get(base + target)
    for i in range(requests):
        for name, target in table.items():
            timings[name].append(timed_get(base + target()))
    cold = [timed_get(base + f"spectrogram/{rid}") for rid in built["real_ids"]]
    warm = [timed_get(base + f"spectrogram/{rng.choice(built['real_ids'])}") for _ in range(requests)]
    overview = [timed_get(base) for _ in range(max(5, requests // 10))]
    out = {name: {**summary(ms), "server_cpu_ms": server_cpu_ms(base, pid, [table[name]() for _ in range(50)])}
           for name, ms in timings.items()}
    out["spectrogram (cold: rendered)"] = summary(cold)
    out["spectrogram (warm: cached)"] = summary(warm)
    out["overview (every deployment's timeline)"] = summary(overview)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recordings", type=int, default=10_000)
    p.add_argument("--real", type=int, default=12, help="Recordings from a real ingest (spectrograms).")
    p.add_argument("--requests", type=int, default=200, help="Requests per kind of table page.")
    p.add_argument("--json", type=Path, default=None, help="Write the results here too.")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fieldkit-bench-serve-", dir=os.environ.get("TMPDIR")) as tmp:
        built = build(Path(tmp), args.recordings, args.real)
        print(f"catalogue: {built['recordings']} recordings ({built['verified']} from a real ingest in "
              f"{built['ingest_s']:.1f} s, the rest synthetic rows in {built['synthetic_s']:.1f} s); "
              f"load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
        with running_server(built["workspace"], log_dir=Path(tmp)) as server:
            results = measure(server.base, built, args.requests, server.process.pid)
    width = max(map(len, results))
    print(f"{'request':<{width}}  {'n':>4}  {'p50 ms':>8}  {'p95 ms':>8}  {'max ms':>8}  {'server CPU ms':>13}")
    for name, r in results.items():
        cpu = f"{r['server_cpu_ms']:>13.1f}" if "server_cpu_ms" in r else f"{'':>13}"
        print(f"{name:<{width}}  {r['n']:>4}  {r['p50_ms']:>8.1f}  {r['p95_ms']:>8.1f}  {r['max_ms']:>8.1f}  {cpu}")
    tables = {k: v for k, v in results.items() if k.startswith("recordings")}
    worst = max(v["p95_ms"] for v in tables.values())
    verdict = "meets" if worst < TARGET_P95_MS else "misses"
    print(f"table pages: worst p95 {worst:.1f} ms {verdict} the target p95 < {TARGET_P95_MS:.0f} ms; "
          f"load average {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"recordings": built["recordings"], "results": results,
                                         "target_p95_ms": TARGET_P95_MS, "worst_table_p95_ms": worst}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
