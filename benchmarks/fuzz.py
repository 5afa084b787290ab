"""Fuzz fieldkit's parsers of untrusted bytes (issue #14): RIFF walker, recorder parsers,
annotation readers, on mutations of the real files in ``tests/data``.

    .venv/bin/python benchmarks/fuzz.py                       # 100 000 inputs, seed 14, 2 workers
    .venv/bin/python benchmarks/fuzz.py --count 5000 --seed 3 --workers 1
    .venv/bin/python benchmarks/fuzz.py --replay 4711         # one input again, with its traceback

Prints the counts per target and per mutation, the number of uncaught exceptions and of inputs
over 1 s, and the slowest input; every crashing or slow input is written to ``--crash-dir``
(``.bin`` + ``.json``) for a regression test. Exit status 1 when anything crashed or was slow.
The engine is :mod:`fieldkit.testing.fuzz`; ``tests/io/test_fuzz.py`` runs a seeded slice.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fieldkit.testing import fuzz


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--first", type=int, default=0, help="index of the first input")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "data")
    parser.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"))
    parser.add_argument("--replay", type=int, default=None, help="run one input and show it")
    args = parser.parse_args(argv)
    if args.replay is not None:
        seeds = fuzz.load_seeds(args.data)
        item = fuzz.make_input(seeds, args.seed, args.replay)
        out = fuzz.run_targets(item.kind, item.data, item.seed_name)
        print(f"#{item.index} seed={item.seed_name} mutations={item.mutations} "
              f"{len(item.data)} bytes, {out.seconds:.4f} s")
        for target, exc, trace in out.crashes:
            print(f"{target}: {exc}\n{trace}")
        return 1 if out.crashes else 0
    print(f"load average {os.getloadavg()[0]:.2f}, {args.workers} worker(s)", flush=True)
    last = [time.monotonic()]

    def progress(done: int) -> None:
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            print(f"  {done}/{args.count}", flush=True)

    report = fuzz.run_fuzz(args.data, seed=args.seed, count=args.count, first=args.first,
                           workers=args.workers, crash_dir=args.crash_dir, progress=progress)
    print(fuzz.format_report(report))
    if report.crashes or report.slow:
        print(f"crashing/slow inputs written to {args.crash_dir}/")
    return 1 if report.crashes or report.slow else 0


if __name__ == "__main__":
    sys.exit(main())
