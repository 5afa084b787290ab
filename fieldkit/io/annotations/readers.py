"""Annotation tables (Raven selection tables, Audacity label tracks, CSV, detector outputs) → one validated frame.

Readers are registered by name (``raven``, ``audacity``, ``csv``, and the detector formats of
:mod:`fieldkit.io.annotations.detectors`: ``birdnet-csv``, ``kaleidoscope``, ``opensoundscape``);
:func:`sniff_format` picks one from a table's header::

    from fieldkit.io.annotations import readers as annotations
    frame, problems = annotations.read_annotations(Path("x.selections.txt"), "raven")
    read = annotations.get_reader("raven")   # UnknownNameError lists the known names on a miss
    annotations.sniff_format(text)           # UnknownLayoutError names the columns found

Every reader is a function of ``(text or path, options)``: a ``str`` is the table's *text*, a
``Path`` (any ``os.PathLike``) is read from disk (UTF-8, falling back to Windows-1252). It
returns a :class:`pandas.DataFrame` with the columns of :data:`COLUMNS`:

``source_line``  1-based line of the row in the file (the header is line 1)
``begin_s``, ``end_s``, ``low_hz``, ``high_hz``  times in seconds, frequencies in hertz (NaN
                 when the table has none)
``label``        the annotation, surrounding white space removed
``file_ref``     the audio file the row names (Raven ``Begin File``, CSV ``file``...) or None;
                 resolve it with :func:`resolve_file_ref`, never directly
``file_offset_s`` Raven ``File Offset (s)`` (NaN when absent); ``channel`` (nullable integer)
``confidence``   a detector's score (BirdNET ``Confidence``, an OpenSoundscape score), NaN if none
``extra``        a dict of every other column, values verbatim (heterogeneous annotator
                 columns never break an import: opensoundscape#735)

Rows are validated lazily with the pandera model :class:`fieldkit.model.tables.AnnotationImport`
plus a parse step (numbers, missing values); every bad row is reported with its line number.
Strict by default (:class:`AnnotationError`); with ``skip_bad_rows=True`` the good rows are
returned and the problems are in ``frame.attrs["problems"]``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pandas as pd

from fieldkit.errors import UnknownNameError, ValidationError
from fieldkit.io.annotations.detectors import (
    read_birdnet_csv,
    read_kaleidoscope,
    read_opensoundscape,
)
from fieldkit.io.annotations.paths import (
    FileRefError,
    NameLabels,
    labels_from_names,
    resolve_file_ref,
)
from fieldkit.io.annotations.rows import (
    COLUMNS,
    AnnotationError,
    RawRow,
    ReadOptions,
    RowProblem,
    delimited_rows,
    find_column,
    finish,
    load_text,
    map_columns,
    raw_rows,
    split_lines,
)

__all__ = [
    "COLUMNS", "CSV_COLUMNS", "RAVEN_COLUMNS", "AnnotationError", "FileRefError", "NameLabels",
    "ReadOptions", "RowProblem", "UnknownLayoutError",
    "get_reader", "labels_from_names", "read_annotations", "read_audacity", "read_csv",
    "read_raven", "reader_names", "register_reader", "resolve_file_ref", "sniff_format",
]

#: Column names per canonical field, tried in order (case-insensitive); options override them.
#: BirdNET-Analyzer's selection tables name the species ``Common Name`` / ``Species Code``
#: (birdnet_analyzer/analyze.py, ``RAVEN_TABLE_HEADER``) and the audio by absolute ``Begin Path``.
RAVEN_COLUMNS = {
    "label": ("Species", "Annotation", "label", "Call Type", "class", "Common Name",
              "Scientific Name", "Species Code"),
    "begin_s": ("Begin Time (s)",), "end_s": ("End Time (s)",),
    "low_hz": ("Low Freq (Hz)",), "high_hz": ("High Freq (Hz)",),
    "file_ref": ("Begin File", "Begin Path"), "file_offset_s": ("File Offset (s)",),
    "channel": ("Channel",), "confidence": ("Confidence", "Score"),
}
CSV_COLUMNS = {
    "label": ("label", "Species", "class", "Call Type", "Annotation"),
    "begin_s": ("onset_s", "begin_s", "start_s", "start", "begin", "onset", "Begin Time (s)"),
    "end_s": ("offset_s", "end_s", "stop_s", "end", "stop", "offset", "End Time (s)"),
    "low_hz": ("low_hz", "low_freq_hz", "f_low", "Low Freq (Hz)"),
    "high_hz": ("high_hz", "high_freq_hz", "f_high", "High Freq (Hz)"),
    "file_ref": ("file", "file_ref", "filename", "audio_file", "notated_path", "Begin File"),
    "file_offset_s": ("file_offset_s", "File Offset (s)"),
    "channel": ("channel",),
    "confidence": ("confidence", "score"),
}

Reader = Callable[["str | os.PathLike[str]", "ReadOptions | None"], pd.DataFrame]
_READERS: dict[str, Reader] = {}


def register_reader(name: str) -> Callable[[Reader], Reader]:
    """Register an annotation reader under ``name`` (decorator)."""

    def decorate(func: Reader) -> Reader:
        if name in _READERS and _READERS[name] is not func:
            raise ValueError(f"annotation reader {name!r} is already registered")
        _READERS[name] = func
        return func

    return decorate


def get_reader(name: str) -> Reader:
    """The reader registered as ``name``; :class:`UnknownNameError` lists the known ones."""
    try:
        return _READERS[name]
    except KeyError:
        raise UnknownNameError("annotation format", name, list(_READERS)) from None


def reader_names() -> tuple[str, ...]:
    """Registered reader names, sorted."""
    return tuple(sorted(_READERS))


def read_annotations(source: str | os.PathLike[str], fmt: str,
                     options: ReadOptions | None = None) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Read a table with the reader ``fmt``; return the rows and the problems skipped.

    Raises :class:`AnnotationError` on any bad row unless ``options.skip_bad_rows``.
    """
    frame = get_reader(fmt)(source, options)
    return frame, list(frame.attrs.get("problems", []))


def _one_per_selection(raws: list[RawRow], header: list[str]) -> list[RawRow]:
    """Raven writes one row per view; keep one per Selection, the Spectrogram view if any."""
    selection = find_column(header, None, ("Selection",))
    view = find_column(header, None, ("View",))
    if selection is None or view is None:
        return raws
    chosen: dict[str, RawRow] = {}
    for raw in raws:
        key = raw.extra[selection].strip()
        is_spectrogram = raw.extra[view].strip().lower().startswith("spectrogram")
        if key not in chosen or (is_spectrogram and not
                                 chosen[key].extra[view].strip().lower().startswith("spectrogram")):
            chosen[key] = raw
    return sorted(chosen.values(), key=lambda raw: raw.line)


@register_reader("raven")
def read_raven(source: str | os.PathLike[str], options: ReadOptions | None = None) -> pd.DataFrame:
    """Read a Raven (Pro/Lite) selection table.

    Tab-separated, LF or CRLF, a header row such as ``Selection View Channel Begin Time (s)
    End Time (s) Low Freq (Hz) High Freq (Hz) Species``; trailing tabs and short rows are
    tolerated, a header-only table gives zero rows. ``Waveform 1`` / ``Spectrogram 1``
    duplicates of one Selection collapse to one row (the Spectrogram view's). The label column
    is ``options.label_column`` or the first of :data:`RAVEN_COLUMNS` ``["label"]`` present
    (``Species``, ``Annotation``, ``label``, ``Call Type``; case-insensitive). ``Begin File``,
    ``File Offset (s)`` and ``Channel`` fill ``file_ref``, ``file_offset_s``, ``channel``.

    Parameters
    ----------
    source : str or path-like
        The table's text, or its path.
    options : ReadOptions, optional

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`; ``attrs["problems"]`` lists skipped rows.

    Raises
    ------
    AnnotationError
        A required column is missing (the message lists the columns found), or a row is bad.
    """
    options = options or ReadOptions()
    text, name = load_text(source)
    lines = split_lines(text)
    header = [h.strip() for h in lines[0].split("\t")] if lines else []
    rows = [(n, line.split("\t")) for n, line in enumerate(lines[1:], 2) if line.strip()]
    raws = raw_rows(header, rows, map_columns(header, RAVEN_COLUMNS, options, name))
    if {"common name", "species code"} <= {h.casefold() for h in header}:
        raws = [raw for raw in raws if not _birdnet_placeholder(raw)]
    return finish(_one_per_selection(raws, header), [], options, name)


def _birdnet_placeholder(raw: RawRow) -> bool:
    """BirdNET writes a ``nocall``/``nocall`` row for a file without detections, so that tables
    can be combined (birdnet_analyzer/analyze.py, ``generate_raven_table``): not an event."""
    cells = {k.casefold(): v.strip().casefold() for k, v in raw.extra.items()}
    label = raw.fields.get("label", "").strip().casefold()
    return cells.get("common name", label) == cells.get("species code", label) == "nocall"


def _defined_hz(cell: str) -> str:
    """Audacity writes -1 for an undefined edge of a spectral selection: make it empty."""
    try:
        return "" if float(cell) == -1.0 else cell
    except ValueError:
        return cell


def _audacity_raws(lines: list[str]) -> tuple[list[RawRow], list[RowProblem]]:
    """Label lines ``start TAB end TAB label``; ``\\ TAB low TAB high`` lines extend the last."""
    raws: list[RawRow] = []
    problems: list[RowProblem] = []
    for number, line in enumerate(lines, 1):
        cells = line.split("\t")
        if not line.strip():
            continue
        if cells[0].strip() == "\\":
            if not raws or raws[-1].line != number - 1:
                problems.append(RowProblem(number, "low_hz", "frequency line without a label line"))
                continue
            low, high = [_defined_hz(c) for c in (cells + ["", ""])[1:3]]
            raws[-1].fields.update(low_hz=low, high_hz=high)
        elif len(cells) < 2:
            problems.append(RowProblem(number, "end_s", "expected start<TAB>end<TAB>label"))
        else:
            fields = {"begin_s": cells[0], "end_s": cells[1], "label": "\t".join(cells[2:])}
            raws.append(RawRow(number, fields, {}))
    return raws, problems


@register_reader("audacity")
def read_audacity(source: str | os.PathLike[str], options: ReadOptions | None = None) -> pd.DataFrame:
    """Read an Audacity label track (File > Export > Labels).

    Lines ``0.101385<TAB>0.367520<TAB>SP``; a following ``\\<TAB>6441.06<TAB>12296.58`` line
    gives the label's low and high frequency in Hz (scikit-maad ``spinetail.txt``). Point
    labels (start == end) and labels with spaces or tabs are kept. There is no header, no
    channel and no file column; ``extra`` is empty.

    Parameters
    ----------
    source : str or path-like
        The label track's text, or its path.
    options : ReadOptions, optional
        Only ``skip_bad_rows`` applies.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`; ``attrs["problems"]`` lists skipped rows.
    """
    options = options or ReadOptions()
    text, name = load_text(source)
    raws, problems = _audacity_raws(split_lines(text))
    return finish(raws, problems, options, name)


@register_reader("csv")
def read_csv(source: str | os.PathLike[str], options: ReadOptions | None = None) -> pd.DataFrame:
    """Read a delimited table with a header row (crowsetta ``generic-seq`` and ``simple-csv``).

    Onset, offset and label columns default to ``onset_s, offset_s, label`` (the label column
    wins over crowsetta's ``annotation`` index column) and also accept
    ``begin_s/end_s``, ``start/end``, ``onset/offset`` (case-insensitive; see
    :data:`CSV_COLUMNS`); ``file``, ``filename`` or crowsetta's ``notated_path`` fill
    ``file_ref``. The delimiter is sniffed (``, ; TAB |``) unless given. Quoted fields may
    hold delimiters and line breaks; ``source_line`` is the line where the record starts.

    Parameters
    ----------
    source : str or path-like
        The table's text, or its path.
    options : ReadOptions, optional

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`; ``attrs["problems"]`` lists skipped rows.
    """
    options = options or ReadOptions()
    text, name = load_text(source)
    header, rows = delimited_rows(text, options.delimiter)
    raws = raw_rows(header, rows, map_columns(header, CSV_COLUMNS, options, name))
    return finish(raws, [], options, name)


register_reader("birdnet-csv")(read_birdnet_csv)
register_reader("kaleidoscope")(read_kaleidoscope)
register_reader("opensoundscape")(read_opensoundscape)


class UnknownLayoutError(ValidationError):
    """A table's header matches none of the annotation layouts fieldkit reads."""

    def __init__(self, source: str, found: list[str]) -> None:
        self.found = found
        shown = ", ".join(repr(h) for h in found[:20]) or "(none)"
        super().__init__(
            f"{source}: unknown annotation layout; columns found: {shown}. Expected one of: "
            + "; ".join(f"{name} ({what})" for name, what in LAYOUTS.items()) + ".",
            hint="Pass --format NAME if the table is one of these with other column names, "
                 "with --label-column / --begin-column / --end-column.")


#: What each format's header looks like (the words of :class:`UnknownLayoutError`).
LAYOUTS = {
    "raven": "tab-separated, 'Selection', 'Begin Time (s)', 'End Time (s)' (Raven, BirdNET tables)",
    "birdnet-csv": "'Start (s)', 'End (s)', 'Common name', 'Confidence', 'File'",
    "kaleidoscope": "'IN FILE', 'OFFSET', 'DURATION', 'AUTO ID*' / 'MANUAL ID'",
    "opensoundscape": "'file', 'start_time', 'end_time', then one column per class",
    "csv": "a label column ('label', 'Species'...) with onset/offset ('onset_s', 'start'...)",
    "audacity": "no header: start<TAB>end<TAB>label lines",
}


def _numeric(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def sniff_format(text: str, source: str = "<text>") -> str:
    """The reader for a table, decided from its first line (its header).

    Parameters
    ----------
    text : str
        The table's text (its first few kilobytes suffice).
    source : str
        The file's name, for the error message.

    Returns
    -------
    str
        ``raven``, ``birdnet-csv``, ``kaleidoscope``, ``opensoundscape``, ``csv`` or ``audacity``.

    Raises
    ------
    UnknownLayoutError
        The header fits none of :data:`LAYOUTS`; the message names the columns found.
    """
    text = text.removeprefix("\ufeff")
    first = next((line for line in split_lines(text) if line.strip()), "")
    tabs = first.split("\t")
    if len(tabs) >= 2 and _numeric(tabs[0]) and _numeric(tabs[1]):
        return "audacity"
    if "\t" in first and find_column(tabs, None, ("Selection", "Begin Time (s)")):
        return "raven"
    header, _ = delimited_rows(text[:65536], None)
    folded = [h.casefold() for h in header]
    if {"start (s)", "end (s)"} <= set(folded):
        return "birdnet-csv"
    if {"in file", "offset", "duration"} <= set(folded):
        return "kaleidoscope"
    if folded[:3] == ["file", "start_time", "end_time"]:
        return "opensoundscape"
    has = {key: find_column(header, None, CSV_COLUMNS[key]) for key in ("label", "begin_s", "end_s")}
    if all(has.values()):
        return "csv"
    raise UnknownLayoutError(source, [h for h in header if h] or [first[:80]])
