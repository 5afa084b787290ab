"""CLI start-up benchmark: ``fieldkit --help``, ``catalog recordings`` and ``--version`` vs ``python -c pass``.

Runs the installed console script (default: ``fieldkit`` beside this interpreter, i.e. the
project venv's) in a fresh process each time, with the environment passed through (so
``PYTHONPATH`` selects a worktree), ``--runs`` times per command, interleaved so that a burst of
load on the shared machine hits every command alike, after one untimed warm-up each (byte-code
caches). ``catalog recordings`` runs on an empty workspace made by ``fieldkit init``. Prints the
median wall time, min-max, the median CPU time of the process (user + system: steadier than the
wall time on a loaded machine), the ratio to ``python -c pass`` and whether the command meets
the issue's target (under 0.3 s; 3.0 s before issue #11). ``--importtime`` adds each command's
largest imports (``python -X importtime``), the place to look when a number regresses.

With ``PYTHONDONTWRITEBYTECODE=1`` in the environment (as on the shared machine) fieldkit's own
modules are compiled at every start; ``--bytecode-cache`` measures what an installed fieldkit
does instead (pip compiles at install): the children cache byte code under the temporary folder
(``PYTHONPYCACHEPREFIX``), so nothing is written beside the sources.

Usage::

    python benchmarks/cli_startup.py                    # 20 runs each, table
    python benchmarks/cli_startup.py --runs 5 --json -  # JSON on stdout
    python benchmarks/cli_startup.py --importtime --bytecode-cache
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.3


#: The children's environment: this one, passed through (PYTHONPATH selects a worktree).
ENV = os.environ.copy()


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU time of one run of ``argv``, in seconds; a failing command stops the benchmark."""
    cpu0, t0 = _children_cpu_s(), time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, check=False)
    seconds, cpu = time.perf_counter() - t0, _children_cpu_s() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return seconds, cpu


def commands(fieldkit: Path, workspace: Path) -> dict[str, list[str]]:
    """The rows of the table: a label and the command line it times."""
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "fieldkit --help": [str(fieldkit), "--help"],
        "fieldkit catalog recordings": [str(fieldkit), "-w", str(workspace), "catalog", "recordings"],
        "fieldkit --version": [str(fieldkit), "--version"],
    }


def measure(rows: dict[str, list[str]], runs: int) -> dict[str, list[tuple[float, float]]]:
    """``runs`` interleaved (wall, CPU) timings of every row, after one untimed warm-up each."""
    for argv in rows.values():
        timed(argv)
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in rows}
    for _ in range(runs):
        for label, argv in rows.items():
            times[label].append(timed(argv))
    return times


def summary(times: dict[str, list[tuple[float, float]]]) -> list[dict]:
    base = statistics.median(wall for wall, _ in times["python -c pass"])
    out = []
    for label, pairs in times.items():
        values = [wall for wall, _ in pairs]
        median = statistics.median(values)
        row = {"command": label, "median_s": round(median, 4), "min_s": round(min(values), 4),
               "max_s": round(max(values), 4), "cpu_s": round(statistics.median(c for _, c in pairs), 4),
               "x_python": round(median / base, 1), "runs": len(values)}
        if label.startswith("fieldkit"):
            row["under_target"] = median < TARGET_S
        out.append(row)
    return out


def print_table(rows: list[dict]) -> None:
    print(f"{'command':<30} {'median s':>9} {'min-max s':>15} {'cpu s':>7} {'x python':>9}  target < {TARGET_S} s")
    for r in rows:
        verdict = "" if "under_target" not in r else ("ok" if r["under_target"] else "MISSED")
        print(f"{r['command']:<30} {r['median_s']:>9.3f} {r['min_s']:>7.3f}-{r['max_s']:<7.3f} {r['cpu_s']:>7.3f} "
              f"{r['x_python']:>9.1f}  {verdict}")


def largest_imports(argv: list[str], top: int = 8) -> list[tuple[str, float]]:
    """The ``top`` imports of ``argv`` by cumulative time (``-X importtime``), in seconds."""
    script = argv[0] if argv[0] != sys.executable else None
    cmd = [sys.executable, "-X", "importtime", *([script] if script else []), *argv[1:]]
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=False)
    found = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            if not name.startswith("  "):  # top-level imports only: their costs do not overlap
                found.append((name.strip(), int(cumulative) / 1e6))
    return sorted(found, key=lambda item: -item[1])[:top]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="timed runs per command (default 20)")
    ap.add_argument("--fieldkit", type=Path, default=Path(sys.executable).parent / "fieldkit",
                    help="the console script to time (default: beside this Python)")
    ap.add_argument("--json", help="also write the rows as JSON to this file ('-': stdout, no table)")
    ap.add_argument("--importtime", action="store_true", help="also list each command's largest imports")
    ap.add_argument("--bytecode-cache", action="store_true",
                    help="cache byte code (in the temporary folder) even under PYTHONDONTWRITEBYTECODE")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fieldkit-cli-startup-") as tmp:
        if args.bytecode_cache:
            ENV.pop("PYTHONDONTWRITEBYTECODE", None)
            ENV["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        workspace = Path(tmp) / "ws"
        timed([str(args.fieldkit), "init", str(workspace)])
        rows = commands(args.fieldkit, workspace)
        times = measure(rows, args.runs)
        result = {"fieldkit": str(args.fieldkit), "runs": args.runs, "load_average": os.getloadavg(),
                  "bytecode_cache": not ENV.get("PYTHONDONTWRITEBYTECODE"),
                  "target_s": TARGET_S, "rows": summary(times)}
        if args.importtime:
            result["largest_imports"] = {label: largest_imports(cmd) for label, cmd in rows.items()
                                         if label.startswith("fieldkit")}

    if args.json == "-":
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.fieldkit}, {args.runs} runs each, byte-code cache {'on' if result['bytecode_cache'] else 'off'}, "
          f"load average {', '.join(f'{x:.2f}' for x in result['load_average'])}")
    print_table(result["rows"])
    for label, imports in result.get("largest_imports", {}).items():
        print(f"\n{label}: " + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in imports))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
