"""A seeded mutation fuzzer for fieldkit's parsers of untrusted bytes (issue #14).

The seeds are the real third-party files in ``tests/data`` (WAV files and annotation tables)
plus a few files built with :mod:`fieldkit.testing.riffwriter` that carry every metadata chunk
the recorder parsers read (``guan``, ``LIST/INFO`` with an AudioMoth comment, ``wamd``,
``bext``, ``iXML``, RF64 ``ds64``), so that each parser sees well-formed input to mutate.
Every input is a pure function of ``(seed, index)``: a crash found in a long run is reproduced
by :func:`make_input` alone.

Targets and what each may raise (everything else is a crash):

``riff``         :func:`fieldkit.io.riff.chunks.walk_riff` + :func:`~fieldkit.io.riff.verdict.judge_layout`;
                 :class:`~fieldkit.errors.AudioFormatError` when the bytes are not RIFF at all
``recorders``    :func:`fieldkit.io.recorders.reader.read_recorder_metadata` (every registered
                 source), then each pure parser (GUANO, LIST/INFO, AudioMoth comment,
                 OpenSoundscape wrapper, ``wamd``, ``bext``, iXML, file names, CONFIG.TXT)
                 directly on the mutated chunk bodies and text; nothing may raise
``annotations``  the ``raven``, ``audacity`` and ``csv`` readers;
                 :class:`~fieldkit.errors.FieldkitError` subclasses (``AnnotationError``);
                 and the Song Meter summary parser on the same text (it never raises)

A parser may raise only fieldkit's own typed errors (:class:`~fieldkit.errors.FieldkitError`);
any other exception, or one input taking more than :data:`SLOW_S`, is reported with the input
written to the crash folder. Run it with ``benchmarks/fuzz.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fieldkit.errors import FieldkitError
from fieldkit.testing.mutations import FuzzInput, Seed, load_seeds, make_input

__all__ = [
    "SLOW_S",
    "FuzzReport",
    "Seed",
    "load_seeds",
    "make_input",
    "minimise",
    "run_fuzz",
    "run_targets",
]

#: An input whose targets together take longer than this counts as slow. Measured as CPU time
#: of the process (``time.process_time``): the machine the fuzzer runs on is shared, and wall
#: time there measures the neighbours; the wall time is reported too.
SLOW_S = 1.0
#: A single input is stopped (and reported as a hang) after this many seconds.
HANG_S = 10.0
# --- targets ------------------------------------------------------------------------------------


def _decode_table(data: bytes) -> str:
    """Decode a table the way ``fieldkit.io.annotations.rows.load_text`` decodes a file."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _riff(data: bytes, name: str) -> object:
    from fieldkit.io.riff.chunks import walk_riff
    from fieldkit.io.riff.verdict import judge_layout

    layout = walk_riff(io.BytesIO(data), len(data))
    judge_layout(layout)
    return layout


def _recorders(data: bytes, name: str) -> None:
    from fieldkit.errors import AudioFormatError
    from fieldkit.io.recorders import audiomoth, bwf, filenames, guano, info, wamd
    from fieldkit.io.recorders.reader import read_recorder_metadata
    from fieldkit.io.riff.chunks import METADATA_BODY_CAP_BYTES, read_chunk_body, walk_riff

    try:
        layout = walk_riff(io.BytesIO(data), len(data))
    except AudioFormatError:
        layout = None
    stem = name.rsplit("/", 1)[-1]
    read_recorder_metadata(io.BytesIO(data), stem, layout)
    # the pure parsers directly, on every body, past the guards of the sources
    fileobj = io.BytesIO(data)
    for chunk in layout.chunks if layout is not None else ():
        body = read_chunk_body(fileobj, chunk, cap_bytes=METADATA_BODY_CAP_BYTES)
        if chunk.chunk_id == "guan":
            guano.parse_guano(body)
        elif chunk.chunk_id == "LIST":
            _, fields, _ = info.parse_list_info(body)
            for value in fields.values():
                audiomoth.parse_audiomoth_comment(value)
                audiomoth.parse_opso_metadata(value)
        elif chunk.chunk_id == "wamd":
            wamd.parse_wamd(body)
        elif chunk.chunk_id == "bext":
            bwf.parse_bext(body)
        elif chunk.chunk_id == "iXML":
            bwf.parse_ixml(body)
    text = data[:512].decode("latin-1")
    filenames.parse_filename_time(text[:40], audiomoth=True)
    filenames.parse_filename_time(text[:40] + ".WAV")
    audiomoth.parse_config_txt(data[:8192])
    try:  # documented: ValueError when the text is no ISO 8601 timestamp at all
        guano.read_guano_timestamp(text[:40])
    except ValueError:
        pass


def _annotations(data: bytes, name: str) -> None:
    from fieldkit.io.annotations.readers import read_annotations
    from fieldkit.io.annotations.rows import ReadOptions
    from fieldkit.io.recorders.songmeter import parse_songmeter_summary

    parse_songmeter_summary(data)  # a comma-separated table, as a Song Meter summary is
    text = _decode_table(data)
    # strict or lenient by the input (both paths are fuzzed, each input pays for one)
    options = ReadOptions(skip_bad_rows=len(data) % 2 == 0)
    for fmt in ("raven", "audacity", "csv"):
        try:
            read_annotations(text, fmt, options)
        except FieldkitError:
            pass


def _config(data: bytes, name: str) -> None:
    from fieldkit.io.recorders.audiomoth import parse_config_txt
    from fieldkit.io.recorders.songmeter import parse_songmeter_summary

    parse_config_txt(data)
    parse_config_txt(_decode_table(data))
    parse_songmeter_summary(data)


#: Targets per seed kind; a target may raise only what its name maps to.
_TARGETS: dict[str, dict[str, Callable[[bytes, str], object]]] = {
    "wav": {"riff": _riff, "recorders": _recorders},
    "table": {"annotations": _annotations},
    "config": {"recorders": _config},
}
_ALLOWED: dict[str, tuple[type[BaseException], ...]] = {
    "riff": (FieldkitError,), "recorders": (), "annotations": (FieldkitError,),
}


class _Hang(Exception):
    """Raised by the alarm when one input runs longer than :data:`HANG_S`."""


def _alarm(signum: int, frame: object) -> None:
    raise _Hang(f"input ran longer than {HANG_S} s")


@dataclass
class Outcome:
    """What running the targets on one input gave."""

    seconds: float
    wall_seconds: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    crashes: list[tuple[str, str, str]] = field(default_factory=list)  # target, type, traceback


def run_targets(kind: str, data: bytes, name: str) -> Outcome:
    """Run every target of ``kind`` on ``data``; an exception not allowed is a crash.

    Parameters
    ----------
    kind : str
        ``wav``, ``table`` or ``config``.
    data : bytes
        The input.
    name : str
        The seed's name (the recorder parsers read the file name too).

    Returns
    -------
    Outcome
    """
    out = Outcome(0.0)
    start, wall = time.process_time(), time.perf_counter()
    for target, func in _TARGETS[kind].items():
        out.counts[target] += 1
        try:
            func(data, name)
        except _ALLOWED[target]:
            pass
        except Exception as exc:  # noqa: BLE001 - the point of a fuzzer: report, never stop
            out.crashes.append((target, type(exc).__name__, traceback.format_exc()))
    out.seconds = time.process_time() - start
    out.wall_seconds = time.perf_counter() - wall
    return out


# --- driver -------------------------------------------------------------------------------------


@dataclass
class FuzzReport:
    """Counts of one run (the fields :func:`format_report` prints)."""

    seed: int
    inputs: int = 0
    per_target: Counter[str] = field(default_factory=Counter)
    per_mutation: Counter[str] = field(default_factory=Counter)
    crashes: list[dict[str, object]] = field(default_factory=list)
    slow: list[dict[str, object]] = field(default_factory=list)
    slowest: dict[str, object] = field(default_factory=dict)
    max_wall_s: float = 0.0
    seconds: float = 0.0

    def merge(self, other: FuzzReport) -> None:
        self.inputs += other.inputs
        self.per_target.update(other.per_target)
        self.per_mutation.update(other.per_mutation)
        self.crashes += other.crashes
        self.slow += other.slow
        self.max_wall_s = max(self.max_wall_s, other.max_wall_s)
        if other.slowest.get("seconds", -1.0) > self.slowest.get("seconds", -1.0):  # type: ignore[operator]
            self.slowest = other.slowest


_WORKER_SEEDS: list[Seed] = []


def _init_worker(seeds: list[Seed]) -> None:
    _WORKER_SEEDS[:] = seeds
    signal.signal(signal.SIGALRM, _alarm)
    # warm up: the first call of a reader imports pandas/pandera/scipy lazily (seconds), which
    # is no property of the input that happens to come first
    for item in seeds:
        run_targets(item.kind, item.data, item.name)


def _run_range(args: tuple[int, int, int, str | None]) -> FuzzReport:
    seed, first, stop, crash_dir = args
    report = FuzzReport(seed)
    for index in range(first, stop):
        item = make_input(_WORKER_SEEDS, seed, index)
        signal.setitimer(signal.ITIMER_REAL, HANG_S)
        try:
            outcome = run_targets(item.kind, item.data, item.seed_name)
        except _Hang as exc:
            outcome = Outcome(HANG_S, Counter({"hang": 1}),
                              [("hang", type(exc).__name__, traceback.format_exc())])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        report.inputs += 1
        report.per_target.update(outcome.counts)
        report.per_mutation.update(item.mutations)
        report.max_wall_s = max(report.max_wall_s, outcome.wall_seconds)
        where = {"index": index, "seed_file": item.seed_name, "mutations": list(item.mutations),
                 "seconds": round(outcome.seconds, 4),
                 "wall_seconds": round(outcome.wall_seconds, 4), "bytes": len(item.data)}
        if outcome.seconds > report.slowest.get("seconds", -1.0):  # type: ignore[operator]
            report.slowest = where
        if outcome.seconds > SLOW_S:
            report.slow.append(where)
            _save(crash_dir, item, {**where, "problem": "slow"})
        for target, exc_type, trace in outcome.crashes:
            found = {**where, "target": target, "exception": exc_type, "traceback": trace}
            report.crashes.append(found)
            _save(crash_dir, item, found)
    return report


def _save(crash_dir: str | None, item: FuzzInput, found: dict[str, object]) -> None:
    if crash_dir is None:
        return
    folder = Path(crash_dir)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(item.data).hexdigest()[:16]
    stem = f"{item.kind}-{found.get('target', found.get('problem'))}-{digest}"
    (folder / f"{stem}.bin").write_bytes(item.data)
    (folder / f"{stem}.json").write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")


def _ranges(seed: int, first: int, count: int, crash_dir: str | None,
            step: int = 250) -> Iterator[tuple[int, int, int, str | None]]:
    for start in range(first, first + count, step):
        yield seed, start, min(start + step, first + count), crash_dir


def run_fuzz(data_dir: str | Path, *, seed: int = 14, count: int = 100_000, first: int = 0,
             workers: int = 1, crash_dir: str | Path | None = None,
             progress: Callable[[int], None] | None = None) -> FuzzReport:
    """Generate ``count`` inputs from ``(seed, first...)`` and run every target on each.

    Parameters
    ----------
    data_dir : path-like
        ``tests/data`` (the seeds).
    seed : int
        The run's seed.
    count, first : int
        How many inputs, starting at which index.
    workers : int
        Processes (1: in this process).
    crash_dir : path-like, optional
        Where each crashing or slow input is written (``.bin`` + ``.json``).
    progress : callable, optional
        Called with the number of inputs done after each batch.

    Returns
    -------
    FuzzReport
    """
    seeds = load_seeds(data_dir)
    folder = None if crash_dir is None else str(crash_dir)
    report = FuzzReport(seed)
    start = time.perf_counter()
    jobs = list(_ranges(seed, first, count, folder))
    if workers <= 1:
        _init_worker(seeds)
        results: Iterator[FuzzReport] = map(_run_range, jobs)
        for part in results:
            report.merge(part)
            if progress:
                progress(report.inputs)
    else:
        with multiprocessing.get_context("fork").Pool(
                workers, initializer=_init_worker, initargs=(seeds,)) as pool:
            for part in pool.imap_unordered(_run_range, jobs):
                report.merge(part)
                if progress:
                    progress(report.inputs)
    report.seconds = time.perf_counter() - start
    return report


def minimise(kind: str, data: bytes, name: str, target: str, exception: str,
             budget: int = 2000) -> bytes:
    """Shrink a crashing input while it still raises ``exception`` in ``target`` (ddmin-style).

    Parameters
    ----------
    kind, data, name : as for :func:`run_targets`.
    target, exception : str
        The crash to keep.
    budget : int
        At most this many runs.

    Returns
    -------
    bytes
        The smallest input found that still crashes the same way.
    """
    def crashes(candidate: bytes) -> bool:
        out = run_targets(kind, candidate, name)
        return any(t == target and e == exception for t, e, _ in out.crashes)

    chunk = max(len(data) // 2, 1)
    runs = 0
    while chunk >= 1 and runs < budget:
        pos, shrunk = 0, False
        while pos < len(data) and runs < budget:
            candidate = data[:pos] + data[pos + chunk:]
            runs += 1
            if candidate != data and crashes(candidate):
                data, shrunk = candidate, True
            else:
                pos += chunk
        if not shrunk:
            chunk //= 2
    return data


def format_report(report: FuzzReport) -> str:
    """The run's figures as the lines ``benchmarks/fuzz.py`` prints."""
    lines = [(f"seed {report.seed}: {report.inputs} inputs in {report.seconds:.1f} s "
              f"({report.inputs / max(report.seconds, 1e-9):.0f}/s)"),
             "per target: " + ", ".join(f"{k} {v}" for k, v in sorted(report.per_target.items())),
             "per mutation: " + ", ".join(f"{k} {v}"
                                          for k, v in sorted(report.per_mutation.items())),
             f"uncaught exceptions: {len(report.crashes)}",
             (f"inputs over {SLOW_S:g} s (CPU): {len(report.slow)}; "
              f"longest wall time of one input: {report.max_wall_s:.3f} s"),
             f"slowest input: {json.dumps(report.slowest)}"]
    for crash in report.crashes[:20]:
        lines.append(f"  CRASH #{crash['index']} {crash['target']} {crash['exception']} "
                     f"seed={crash['seed_file']} mutations={crash['mutations']}")
    return "\n".join(lines)
