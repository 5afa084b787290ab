"""Annotations out, for the tools people label and train with: Raven, Audacity, OpenSoundscape.

Each writer takes plain :class:`OutAnnotation` rows and writes the tool's documented layout, so
that reading the file back with the matching reader (:mod:`fieldkit.io.annotations.readers`)
gives the same annotations (the round trip is tested):

``raven``          one selection table per audio file, ``<stem>.Table.1.selections.txt``:
                   ``Selection View Channel Begin Time (s) End Time (s) Low Freq (Hz)
                   High Freq (Hz) Begin File File Offset (s) Species`` (+ ``Confidence``
                   when any row has one); one ``Spectrogram 1`` row per selection.
``audacity``       one label track per audio file, ``<stem>.labels.txt``: ``start TAB end TAB
                   label`` lines, each followed by ``\\ TAB low TAB high`` when any label of
                   the file has a band (-1 for an unknown edge, as Audacity writes it).
``opensoundscape`` one one-hot CSV for all files, ``labels.csv``: ``file,start_time,end_time``
                   then one 0/1 column per label (``AnnotationSet.clip_labels()``'s layout);
                   events with the same file and times share a row. It has no frequency band
                   or confidence, so those do not travel.

Times and frequencies are written with ``repr`` (the shortest text that reads back to the same
float). Tabs and line breaks inside labels cannot be represented in these formats and are
replaced by spaces.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from fieldkit.errors import UnknownNameError

__all__ = [
    "WRITERS",
    "OutAnnotation",
    "write_annotations",
    "write_audacity",
    "write_opensoundscape",
    "write_raven",
    "writer_names",
]

RAVEN_OUT_HEADER = ("Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                    "High Freq (Hz)", "Begin File", "File Offset (s)", "Species")


class OutAnnotation(NamedTuple):
    """One annotation to write: the audio file's name, times (s), label, band (Hz), channel, score."""

    file: str
    begin_s: float
    end_s: float
    label: str
    low_hz: float | None = None
    high_hz: float | None = None
    channel: int | None = None
    confidence: float | None = None


def _num(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))


def _clean(label: str) -> str:
    return label.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _by_file(rows: Iterable[OutAnnotation]) -> dict[str, list[OutAnnotation]]:
    grouped: dict[str, list[OutAnnotation]] = defaultdict(list)
    for row in rows:
        grouped[row.file].append(row)
    return {f: sorted(r, key=lambda a: (a.begin_s, a.end_s, a.label)) for f, r in sorted(grouped.items())}


def _stem(file: str) -> str:
    name = PurePosixPath(file).name
    return name.rsplit(".", 1)[0] if "." in name else name


def write_raven(rows: Iterable[OutAnnotation], out_dir: Path) -> list[Path]:
    """Write one Raven selection table per audio file into ``out_dir``; return the paths."""
    written = []
    for file, items in _by_file(rows).items():
        scored = any(a.confidence is not None for a in items)
        lines = ["\t".join(RAVEN_OUT_HEADER + (("Confidence",) if scored else ()))]
        for n, a in enumerate(items, 1):
            cells = [str(n), "Spectrogram 1", str(a.channel or 1), _num(a.begin_s), _num(a.end_s),
                     _num(a.low_hz), _num(a.high_hz), PurePosixPath(file).name, _num(a.begin_s),
                     _clean(a.label)]
            lines.append("\t".join(cells + ([_num(a.confidence)] if scored else [])))
        path = out_dir / f"{_stem(file)}.Table.1.selections.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def _edge(value: float | None) -> str:
    return "-1" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))


def write_audacity(rows: Iterable[OutAnnotation], out_dir: Path) -> list[Path]:
    """Write one Audacity label track per audio file into ``out_dir``; return the paths."""
    written = []
    for file, items in _by_file(rows).items():
        # a frequency line after every label once any has a band: readers such as scikit-maad's
        # read_audacity_annot take label and frequency lines as strict pairs
        banded = any(a.low_hz is not None or a.high_hz is not None for a in items)
        lines = []
        for a in items:
            lines.append(f"{_num(a.begin_s)}\t{_num(a.end_s)}\t{_clean(a.label)}")
            if banded:
                lines.append(f"\\\t{_edge(a.low_hz)}\t{_edge(a.high_hz)}")
        path = out_dir / f"{_stem(file)}.labels.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def write_opensoundscape(rows: Iterable[OutAnnotation], out_dir: Path) -> list[Path]:
    """Write one OpenSoundscape one-hot CSV (``labels.csv``) into ``out_dir``; return its path."""
    rows = list(rows)
    labels = sorted({_clean(a.label) for a in rows})
    clips: dict[tuple[str, float, float], set[str]] = defaultdict(set)
    for a in rows:
        clips[(PurePosixPath(a.file).name, float(a.begin_s), float(a.end_s))].add(_clean(a.label))
    path = out_dir / "labels.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["file", "start_time", "end_time", *labels])
        for (file, begin, end), present in sorted(clips.items()):
            writer.writerow([file, repr(begin), repr(end), *(int(x in present) for x in labels)])
    return [path]


WRITERS: dict[str, Callable[[Iterable[OutAnnotation], Path], list[Path]]] = {
    "raven": write_raven, "audacity": write_audacity, "opensoundscape": write_opensoundscape,
}


def writer_names() -> tuple[str, ...]:
    """The formats annotations can be written in."""
    return tuple(WRITERS)


def write_annotations(rows: Iterable[OutAnnotation], fmt: str, out_dir: Path) -> list[Path]:
    """Write ``rows`` in the format ``fmt`` into the folder ``out_dir`` (created if needed).

    Parameters
    ----------
    rows : iterable of OutAnnotation
    fmt : str
        ``raven``, ``audacity`` or ``opensoundscape``.
    out_dir : Path

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    UnknownNameError
        ``fmt`` is not a writer; the message lists them.
    """
    if fmt not in WRITERS:
        raise UnknownNameError("annotation export format", fmt, list(WRITERS))
    out_dir.mkdir(parents=True, exist_ok=True)
    return WRITERS[fmt](rows, out_dir)
