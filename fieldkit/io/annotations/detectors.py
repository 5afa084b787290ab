"""Detector and tool outputs as annotation tables: BirdNET CSV, Kaleidoscope ``id.csv``, OpenSoundscape.

Each layout is read as its tool documents and writes it (the sources are cited next to each
reader and in ``tests/test_detector_formats.py``); the rows come out in the same canonical frame
as every other annotation reader (:data:`fieldkit.io.annotations.rows.COLUMNS`), with the
detector's score in ``confidence``:

``birdnet-csv``    BirdNET-Analyzer ``--rtype csv``: ``Start (s),End (s),Scientific name,
                   Common name,Confidence,File`` (``CSV_HEADER`` in birdnet_analyzer/analyze.py);
                   the label is ``Common name`` unless ``--label-column`` says otherwise.
``kaleidoscope``   Wildlife Acoustics Kaleidoscope ``id.csv`` (``INDIR, FOLDER, IN FILE, CHANNEL,
                   OFFSET, DURATION, ... AUTO ID*, ... MANUAL ID``), and BirdNET's Kaleidoscope
                   export (``INDIR,FOLDER,IN FILE,OFFSET,DURATION,scientific_name,common_name,
                   confidence,...``): an event runs from ``OFFSET`` for ``DURATION`` seconds; the
                   label is ``MANUAL ID`` when a person set one, else ``AUTO ID*``.
``opensoundscape`` OpenSoundscape's one-hot clip tables (``AnnotationSet.clip_labels()`` saved
                   with its ``(file, start_time, end_time)`` index, and ``model.predict()``
                   scores): one row per clip, one column per class. 0/1 (or True/False) cells
                   give an event per 1; scores need ``min_confidence`` (an event per class
                   scoring at least that much).
"""

from __future__ import annotations

import math
import os

import pandas as pd

from fieldkit.io.annotations.rows import (
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
)

__all__ = ["BIRDNET_CSV_COLUMNS", "KALEIDOSCOPE_COLUMNS", "OPENSOUNDSCAPE_INDEX",
           "read_birdnet_csv", "read_kaleidoscope", "read_opensoundscape"]

BIRDNET_CSV_COLUMNS = {
    "label": ("Common name", "Scientific name", "Species Code"),
    "begin_s": ("Start (s)",), "end_s": ("End (s)",),
    "file_ref": ("File",), "confidence": ("Confidence",),
}
#: Kaleidoscope names its label columns ``AUTO ID*`` (``AUTO ID`` in older versions) and
#: ``MANUAL ID``; BirdNET's Kaleidoscope export uses ``common_name`` instead.
KALEIDOSCOPE_COLUMNS = {
    "manual": ("MANUAL ID", "MANUAL ID*"),
    "auto": ("AUTO ID*", "AUTO ID", "common_name", "scientific_name"),
    "offset": ("OFFSET",), "duration": ("DURATION",), "file_ref": ("IN FILE",),
    "folder": ("FOLDER",), "channel": ("CHANNEL",), "confidence": ("confidence",),
}
OPENSOUNDSCAPE_INDEX = ("file", "start_time", "end_time")


def read_birdnet_csv(source: str | os.PathLike[str], options: ReadOptions | None = None) -> pd.DataFrame:
    """Read BirdNET-Analyzer's CSV results (``Start (s),End (s),Scientific name,Common name,Confidence,File``).

    ``File`` is the analysed audio's path as BirdNET saw it (usually absolute); it is kept as
    ``file_ref`` and matched by name against the catalogue, never opened.

    Parameters
    ----------
    source : str or path-like
        The table's text, or its path.
    options : ReadOptions, optional
        ``label_column`` picks ``Scientific name`` instead of ``Common name``;
        ``min_confidence`` drops weaker detections.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`~fieldkit.io.annotations.rows.COLUMNS`.
    """
    options = options or ReadOptions()
    text, name = load_text(source)
    header, rows = delimited_rows(text, options.delimiter or ",")
    raws = raw_rows(header, rows, map_columns(header, BIRDNET_CSV_COLUMNS, options, name))
    return finish(raws, [], options, name)


def _kaleidoscope_columns(header: list[str], options: ReadOptions, name: str) -> dict[str, str | None]:
    found = {key: find_column(header, None, aliases) for key, aliases in KALEIDOSCOPE_COLUMNS.items()}
    if options.label_column:
        found["manual"], found["auto"] = None, find_column(header, options.label_column, ())
    if options.confidence_column:
        found["confidence"] = find_column(header, options.confidence_column, ())
    for key, option in (("offset", "OFFSET"), ("duration", "DURATION")):
        if found[key] is None:
            raise AnnotationError([RowProblem(1, key, f"no {option} column; columns found: "
                                              f"{', '.join(map(repr, header))}")], source=name)
    if found["manual"] is None and found["auto"] is None:
        wanted = options.label_column or "MANUAL ID or AUTO ID*"
        raise AnnotationError([RowProblem(1, "label", f"no {wanted} column; columns found: "
                                          f"{', '.join(map(repr, header))}")], source=name,
                              hint="Name the label column with --label-column NAME.")
    return found


def _end(offset: str, duration: str) -> str:
    """``OFFSET + DURATION`` as text; a duration that is no number passes through to be reported."""
    if _is_number(offset) and _is_number(duration):
        return repr(float(offset) + float(duration))
    return "" if _is_number(duration) else duration


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def read_kaleidoscope(source: str | os.PathLike[str], options: ReadOptions | None = None) -> pd.DataFrame:
    """Read a Kaleidoscope ``id.csv`` (or BirdNET's Kaleidoscope-style export).

    An event starts at ``OFFSET`` and lasts ``DURATION`` seconds of the file ``IN FILE`` (in
    ``FOLDER``); its label is ``MANUAL ID`` when set, else ``AUTO ID*`` (``extra["label_source"]``
    says which). Rows without any label (Kaleidoscope's unclassified files) are reported as bad
    rows. Kaleidoscope's ``CHANNEL`` is read as 0-based (an assumption: the vendor's guide was not
    at hand) and stored 1-based like Raven's.

    Parameters
    ----------
    source : str or path-like
        The table's text, or its path.
    options : ReadOptions, optional
        ``label_column`` forces one label column; ``min_confidence`` needs a ``confidence``
        column (BirdNET's export has one, Kaleidoscope's own classifiers do not).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`~fieldkit.io.annotations.rows.COLUMNS`.
    """
    options = options or ReadOptions()
    text, name = load_text(source)
    header, rows = delimited_rows(text, options.delimiter or ",")
    cols = _kaleidoscope_columns(header, options, name)
    used = {c for c in cols.values() if c}
    raws = []
    for line, cells in rows:
        by_name = dict(zip(header, cells + [""] * (len(header) - len(cells))))
        manual = by_name.get(cols["manual"] or "", "").strip()
        label = manual or by_name.get(cols["auto"] or "", "").strip()
        channel = by_name.get(cols["channel"] or "", "").strip()
        fields = {"begin_s": by_name[cols["offset"]],
                  "end_s": _end(by_name[cols["offset"]], by_name[cols["duration"]]),
                  "label": label, "file_ref": by_name.get(cols["file_ref"] or "", ""),
                  "channel": str(int(channel) + 1) if channel.isdigit() else channel,
                  "confidence": by_name.get(cols["confidence"] or "", "")}
        extra = {k: v for k, v in by_name.items() if k and k not in used}
        extra["label_source"] = "manual" if manual else "auto"
        if cols["folder"]:
            extra["FOLDER"] = by_name[cols["folder"]]
        raws.append(RawRow(line, fields, extra))
    return finish(raws, [], options, name)


def _one_hot_value(cell: str) -> float:
    text = cell.strip().casefold()
    if text in ("true", "false"):
        return float(text == "true")
    value = float(text)  # ValueError is reported by the caller with the line
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def read_opensoundscape(source: str | os.PathLike[str], options: ReadOptions | None = None) -> pd.DataFrame:
    """Read an OpenSoundscape one-hot table: ``file,start_time,end_time,<class>,<class>...``.

    The layout of ``AnnotationSet.clip_labels()`` and of ``CNN.predict()`` saved with
    ``to_csv()`` (a ``(file, start_time, end_time)`` multi-index, one column per class). When
    every class cell is 0 or 1 (or True/False), each 1 is an event of that class over the clip.
    Otherwise the cells are scores: ``options.min_confidence`` is required and each score at or
    above it is an event with that ``confidence``.

    Parameters
    ----------
    source : str or path-like
        The table's text, or its path.
    options : ReadOptions, optional

    Returns
    -------
    pandas.DataFrame
        Columns :data:`~fieldkit.io.annotations.rows.COLUMNS`; ``file_ref`` is the ``file`` cell.

    Raises
    ------
    AnnotationError
        The first three columns are not ``file, start_time, end_time``, there are no class
        columns, a cell is not a number, or scores come without ``min_confidence``.
    """
    options = options or ReadOptions()
    text, name = load_text(source)
    header, rows = delimited_rows(text, options.delimiter or ",")
    if [h.casefold() for h in header[:3]] != list(OPENSOUNDSCAPE_INDEX) or len(header) < 4:
        raise AnnotationError([RowProblem(1, "file", "expected the columns file, start_time, end_time "
                                          f"and one column per class; columns found: {', '.join(map(repr, header))}")],
                              source=name)
    classes = header[3:]
    values: list[tuple[int, list[str], list[float]]] = []
    problems = []
    for line, cells in rows:
        cells = cells + [""] * (len(header) - len(cells))
        try:
            values.append((line, cells, [_one_hot_value(c) for c in cells[3:len(header)]]))
        except ValueError:
            bad = next(c for c in cells[3:len(header)] if not _safe_number(c))
            problems.append(RowProblem(line, "class", f"not a 0/1 value or score: {bad.strip()!r}"))
    binary = all(v in (0.0, 1.0) for _, _, row in values for v in row)
    if not binary and options.min_confidence is None:
        raise AnnotationError([RowProblem(1, "class", "the class columns hold scores, not 0/1")],
                              source=name, hint="Pass --min-confidence SCORE to keep the classes "
                              "scoring at least SCORE in each clip.")
    raws = []
    for line, cells, row in values:
        for label, value in zip(classes, row):
            if binary and value == 1.0:
                raws.append(RawRow(line, {"file_ref": cells[0], "begin_s": cells[1], "end_s": cells[2],
                                          "label": label}, {}))
            elif not binary:
                raws.append(RawRow(line, {"file_ref": cells[0], "begin_s": cells[1], "end_s": cells[2],
                                          "label": label, "confidence": repr(value)}, {}))
    return finish(raws, problems, options, name)


def _safe_number(cell: str) -> bool:
    try:
        _one_hot_value(cell)
        return True
    except ValueError:
        return False
