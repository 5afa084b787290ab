"""The shared half of the annotation readers: column mapping, parsing, validation, errors.

A reader (:mod:`fieldkit.io.annotations.readers`) turns its format into :class:`RawRow` objects (line
number, canonical fields as text, other columns verbatim); :func:`finish` converts the numbers,
validates every row lazily with the pandera model :class:`fieldkit.model.tables.AnnotationImport`,
and either raises one :class:`AnnotationError` listing every bad row or, with
``skip_bad_rows``, keeps the good rows and records the problems in ``frame.attrs["problems"]``.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pandera.pandas as pa

from fieldkit.errors import ValidationError
from fieldkit.model.tables import AnnotationImport

__all__ = [
    "COLUMNS", "AnnotationError", "RawRow", "ReadOptions", "RowProblem",
    "delimited_rows", "find_column", "finish", "load_text", "map_columns", "raw_rows", "split_lines",
]

COLUMNS = ("source_line", "begin_s", "end_s", "low_hz", "high_hz", "label", "file_ref",
           "file_offset_s", "channel", "confidence", "extra")
FLOATS = ("begin_s", "end_s", "low_hz", "high_hz", "file_offset_s", "confidence")
REQUIRED = ("begin_s", "end_s", "label")


class RowProblem(NamedTuple):
    """One reason a row was refused: ``(line, column, reason)``; line 1 is the header."""

    line: int
    column: str
    reason: str


class AnnotationError(ValidationError):
    """An annotation table has bad rows (or a bad header); ``.problems`` lists them all."""

    MAX_SHOWN = 10

    def __init__(self, problems: list[RowProblem], *, source: str = "<text>",
                 hint: str | None = None) -> None:
        self.problems, self.source = sorted(problems), source
        shown = "; ".join(f"line {p.line}, {p.column}: {p.reason}"
                          for p in self.problems[:self.MAX_SHOWN])
        more = len(self.problems) - self.MAX_SHOWN
        shown += f"; and {more} more" if more > 0 else ""
        rows = len({p.line for p in self.problems})
        super().__init__(
            f"{source}: {rows} bad row{'s' * (rows != 1)} ({shown}).",
            hint=hint or "Fix these rows, or pass --skip-bad-rows to import only the good ones.",
        )


@dataclass(frozen=True)
class ReadOptions:
    """How to read an annotation table (saved next to the import so it can be repeated).

    Attributes
    ----------
    label_column, begin_column, end_column, file_column, confidence_column : str or None
        Column names to use instead of the aliases (case-insensitive); ``--label-column`` etc.
    delimiter : str or None
        CSV delimiter; None sniffs one of ``, ; TAB |``.
    skip_bad_rows : bool
        Return the good rows (problems in ``frame.attrs["problems"]``) instead of raising.
    label_aliases : tuple of str or None
        Label column names tried in order when ``label_column`` is None; None uses the
        format's own list (Raven: ``Species`` first, CSV: ``label`` first).
    min_confidence : float or None
        Keep only rows whose confidence (BirdNET ``Confidence``, an OpenSoundscape score) is at
        least this; rows without a confidence value (manual annotations) are kept. A table
        without any confidence is refused, so a threshold is never silently ignored.
    """

    label_column: str | None = None
    begin_column: str | None = None
    end_column: str | None = None
    file_column: str | None = None
    delimiter: str | None = None
    skip_bad_rows: bool = False
    label_aliases: tuple[str, ...] | None = None
    min_confidence: float | None = None
    confidence_column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples become lists)."""
        data = asdict(self)
        if self.label_aliases is not None:
            data["label_aliases"] = list(self.label_aliases)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReadOptions:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        if data.get("label_aliases") is not None:
            data["label_aliases"] = tuple(data["label_aliases"])
        return cls(**data)


class RawRow(NamedTuple):
    """A row before parsing: its line, canonical fields as text, other columns verbatim."""

    line: int
    fields: dict[str, str]
    extra: dict[str, str]


def load_text(source: str | os.PathLike[str]) -> tuple[str, str]:
    """``(text, name for messages)``; a ``str`` is text, a path-like is read from disk."""
    if not isinstance(source, os.PathLike):
        return source.removeprefix("\ufeff"), "<text>"
    data = Path(source).read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding), str(source)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), str(source)


def split_lines(text: str) -> list[str]:
    """Lines split at LF, CRLF or CR only (``str.splitlines`` would also split at U+2028...)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def find_column(header: list[str], wanted: str | None, aliases: tuple[str, ...]) -> str | None:
    """The header name matching ``wanted`` (or the first alias present), case-insensitively."""
    folded: dict[str, str] = {}
    for name in header:
        folded.setdefault(name.strip().casefold(), name)
    for candidate in (wanted,) if wanted else aliases:
        if candidate.strip().casefold() in folded:
            return folded[candidate.strip().casefold()]
    return None


def _missing_column(column: str, tried: tuple[str, ...], header: list[str], option: str,
                    source: str) -> AnnotationError:
    found = ", ".join(repr(h) for h in header if h) or "(none)"
    reason = f"no {column} column (tried {', '.join(map(repr, tried))}); columns found: {found}"
    return AnnotationError([RowProblem(1, column, reason)], source=source,
                           hint=f"Name the column with {option} NAME.")


def map_columns(header: list[str], aliases: dict[str, tuple[str, ...]], options: ReadOptions,
                source: str) -> dict[str, str]:
    """Map canonical field → header name; begin, end and label must be present.

    ``aliases`` holds the format's names per canonical field, ``label`` included; options
    override them.
    """
    wanted = {"begin_s": options.begin_column, "end_s": options.end_column,
              "label": options.label_column, "file_ref": options.file_column,
              "confidence": options.confidence_column}
    table = {**aliases, "label": options.label_aliases or aliases["label"]}
    mapping: dict[str, str] = {}
    for canonical, names in table.items():
        found = find_column(header, wanted.get(canonical), names)
        if found is not None:
            mapping[canonical] = found
        elif canonical in REQUIRED or wanted.get(canonical):
            tried = (wanted[canonical],) if wanted.get(canonical) else names
            option = "--" + canonical.removesuffix("_s").replace("_ref", "") + "-column"
            raise _missing_column(canonical, tried, header, option, source)
    return mapping


def raw_rows(header: list[str], rows: list[tuple[int, list[str]]],
             mapping: dict[str, str]) -> list[RawRow]:
    """Split each row into canonical fields and ``extra`` (unnamed trailing cells dropped)."""
    used = set(mapping.values())
    out = []
    for line, cells in rows:
        cells = cells + [""] * (len(header) - len(cells))
        by_name = dict(zip(header, cells))
        extra = {k: v for k, v in by_name.items() if k and k not in used}
        extra |= {f"column {i + 1}": v for i, v in enumerate(cells) if i >= len(header) and v}
        out.append(RawRow(line, {c: by_name[h] for c, h in mapping.items()}, extra))
    return out


def _number(text: str) -> float | None:
    """A finite float, None for an empty cell; ValueError with a reason otherwise."""
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number: {text.strip()!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text.strip()!r}")
    return value


def _channel(text: str) -> int | None:
    value = _number(text)
    if value is not None and not value.is_integer():
        raise ValueError(f"not a channel number: {text.strip()!r}")
    return None if value is None else int(value)


def _parse(raw: RawRow) -> tuple[dict[str, Any], list[RowProblem]]:
    """One row's typed values and the problems found while converting them."""
    values: dict[str, Any] = {"source_line": raw.line, "extra": raw.extra}
    problems = []
    for column in FLOATS + ("channel",):
        try:
            convert = _channel if column == "channel" else _number
            values[column] = convert(raw.fields.get(column, ""))
        except ValueError as err:
            problems.append(RowProblem(raw.line, column, str(err)))
    for column in ("begin_s", "end_s"):
        if column in values and values[column] is None:
            problems.append(RowProblem(raw.line, column, "missing value"))
    values["label"] = raw.fields.get("label", "").strip()
    values["file_ref"] = raw.fields.get("file_ref", "").strip() or None
    return values, problems


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The output frame with fixed dtypes (also when empty)."""
    def get(column: str) -> list[Any]:
        return [row[column] for row in rows]

    return pd.DataFrame({
        "source_line": pd.Series(get("source_line"), dtype="int64"),
        **{c: pd.Series(get(c), dtype="float64") for c in ("begin_s", "end_s", "low_hz", "high_hz")},
        "label": pd.Series(get("label"), dtype="str"),
        "file_ref": pd.Series(get("file_ref"), dtype="object"),
        "file_offset_s": pd.Series(get("file_offset_s"), dtype="float64"),
        "channel": pd.Series(get("channel"), dtype="Int64"),
        "confidence": pd.Series(get("confidence"), dtype="float64"),
        "extra": pd.Series(get("extra"), dtype="object"),
    }, columns=list(COLUMNS))


def _reason(check: str, value: Any, row: pd.Series) -> tuple[str, str]:
    """(column, reason) for a pandera failure; an empty column means the failing column."""
    if check.startswith("greater_than_or_equal_to"):
        return "", f"must be >= 0 (got {value})"
    if check.startswith("str_length"):
        return "", "empty label"
    if "before begin_s" in check:
        return "end_s", f"end_s ({row['end_s']}) is before begin_s ({row['begin_s']})"
    return "", f"{check} failed (got {value!r})"


def _schema_problems(frame: pd.DataFrame) -> list[RowProblem]:
    """Every row failing :class:`AnnotationImport`, validated lazily."""
    try:
        AnnotationImport.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        problems = set()
        for case in err.failure_cases.itertuples(index=False):
            if pd.isna(case.index):
                continue
            row = frame.loc[int(case.index)]
            column, reason = _reason(str(case.check), case.failure_case, row)
            problems.add(RowProblem(int(row["source_line"]), column or str(case.column), reason))
        return sorted(problems)
    return []


def finish(raws: list[RawRow], problems: list[RowProblem], options: ReadOptions,
           source: str) -> pd.DataFrame:
    """Parse and validate; raise on problems unless ``skip_bad_rows``.

    ``problems`` are those the reader found while splitting the text (not modified).
    """
    problems = list(problems)
    rows = []
    for raw in raws:
        values, row_problems = _parse(raw)
        problems.extend(row_problems)
        if not row_problems:
            rows.append(values)
    frame = _frame(rows)
    problems = sorted(set(problems) | set(_schema_problems(frame)))
    if problems and not options.skip_bad_rows:
        raise AnnotationError(problems, source=source)
    bad = {p.line for p in problems}
    frame = frame[~frame["source_line"].isin(bad)].reset_index(drop=True)
    frame, below = _apply_min_confidence(frame, options.min_confidence, source)
    frame.attrs["problems"] = problems
    frame.attrs["below_confidence"] = below
    return frame


def _apply_min_confidence(frame: pd.DataFrame, threshold: float | None,
                          source: str) -> tuple[pd.DataFrame, int]:
    """Drop rows scored below ``threshold``; unscored rows stay. Returns (kept, dropped count)."""
    if threshold is None or frame.empty:
        return frame, 0
    scores = frame["confidence"]
    if scores.isna().all():
        raise AnnotationError(
            [RowProblem(1, "confidence", "--min-confidence was given but the table has no "
                        "confidence values")], source=source,
            hint="Leave out --min-confidence, or name the score column with --confidence-column.")
    below = scores.notna() & (scores < threshold)
    return frame[~below].reset_index(drop=True), int(below.sum())


def _sniff(text: str, delimiter: str | None) -> str:
    if delimiter:
        return delimiter
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def delimited_rows(text: str, delimiter: str | None) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-blank rows (with the line each starts on) of a delimited table."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff(text, delimiter))
    header = [h.strip() for h in next(reader, [])]
    rows, start = [], reader.line_num + 1
    for cells in reader:
        if any(c.strip() for c in cells):
            rows.append((start, cells))
        start = reader.line_num + 1
    return header, rows
