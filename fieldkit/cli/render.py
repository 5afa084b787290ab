"""Output helpers: humans read stderr (rich), programs read exactly one JSON document on stdout.

Tables go to stderr like every human line. On a terminal they are rich tables; when stderr is not a
terminal (a pipe, a file, a test) or with ``--format tsv`` they are tab-separated lines that no
width can wrap. Either way numbers are rounded for humans and units sit in the headers; ``--json``
keeps full precision.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

__all__ = ["err", "emit_json", "emit_error", "table", "to_jsonable", "TableFormat", "FORMAT", "header",
           "human", "human_counts", "human_size"]

err = Console(stderr=True, highlight=False)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (Path, dt.date, dt.timedelta)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(document), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def emit_error(error: str, code: int, *, hint: str | None = None, path: str | None = None,
               json_out: bool = False) -> None:
    """Report an error: one line on stderr and, with ``--json``, one JSON document on stdout.

    Parameters
    ----------
    error : str
        The message: what was expected, what was found.
    code : int
        The exit code the command ends with (README's table).
    hint : str, optional
        The next step for the user.
    path : str, optional
        The file, folder or URL the error is about.
    json_out : bool
        Whether the command was given ``--json``; the document is ``{"error", "code", "hint", "path"}``.
    """
    err.print(f"[bold red]error:[/bold red] {escape(error)}" + (f" {escape(hint)}" if hint else ""), soft_wrap=True)
    if json_out:
        emit_json({"error": error, "code": code, "hint": hint, "path": path})


class TableFormat(str, enum.Enum):
    """How :func:`table` prints: a rich table, or tab-separated lines."""

    table = "table"
    tsv = "tsv"


#: The one ``--format`` option of every command that prints a table (default: a rich table on a
#: terminal, TSV otherwise).
FORMAT = typer.Option(None, "--format", case_sensitive=False, show_default=False,
                      help="table or tsv (default: table on a terminal, tsv when stderr is redirected).")

#: Column-name endings that carry a unit: (ending, unit shown in the header).
_UNITS = (("_s", "s"), ("_hz", "Hz"), ("_bytes", "MB"), ("_utc", "UTC"))
#: Columns holding paths: never wrapped on a terminal (a folded path cannot be copied).
_PATHS = ("path", "file", "card", "store", "out_dir")
#: Cells up to this long are values (numbers, times, states) that never wrap; longer text folds.
_SHORT = 24
#: The fraction of a second of an ISO 8601 time, before its zone.
_SUBSECOND = re.compile(r"\.\d+(?=Z$|[+-]\d\d:\d\d$|$)")


def header(column: str) -> str:
    """The header of a column: its name in words, with its unit (``duration_s`` → ``duration s``).

    Parameters
    ----------
    column : str
        The key of the rows (as in ``--json``).

    Returns
    -------
    str
        E.g. ``sample rate Hz``, ``size MB`` for ``size_bytes``, ``n clips`` for ``n_clips``.
    """
    for ending, unit in _UNITS:
        if column.endswith(ending):
            return f"{column[: -len(ending)].replace('_', ' ')} {unit}"
    return column.replace("_", " ")


def _significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, never in exponent form, never dropping integer digits."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def human(value: Any, column: str = "") -> str:
    """A value as a human reads it in a table cell or a summary line (``--json`` keeps the raw value).

    Parameters
    ----------
    value : Any
        A cell: number, bool, date, mapping, list or text; ``None`` is empty.
    column : str
        Its column key, whose unit ending decides the rounding: ``*_s`` to 0.1 s, ``*_bytes`` in MB
        (0.1), ``latitude``/``longitude`` to 5 decimals (about a metre), other floats to 3
        significant digits.

    Returns
    -------
    str
        The text; mappings as ``key value, ...`` and lists as ``a, b`` (never a Python repr).
    """
    if hasattr(value, "item") and callable(value.item):  # numpy scalars, numpy bools included
        value = value.item()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return human_counts(value)
    if isinstance(value, (list, tuple, set)):
        return ", ".join(human(v) for v in value)
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if isinstance(value, (int, float)):
        if column.endswith("_bytes"):
            return f"{value / 1e6:.1f}"
        if column in ("latitude", "longitude"):
            return f"{value:.5f}"
        if isinstance(value, int):
            return str(value)
        if column.endswith("_s"):
            return f"{value:.1f}"
        return _significant(value)
    if isinstance(value, str) and column.endswith(("_at", "_utc")):
        return _SUBSECOND.sub("", value)  # a time to the second; --json keeps the microseconds
    return str(value)


def human_size(n_bytes: int | float) -> str:
    """A size for humans: ``3.5 MB`` below a gigabyte, else ``1.23 GB`` (decimal units, as disks are sold).

    Parameters
    ----------
    n_bytes : int or float
        The size in bytes (``--json`` prints this number).

    Returns
    -------
    str
        The size with its unit.
    """
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes < 1e9 else f"{n_bytes / 1e9:.2f} GB"


def human_counts(counts: Mapping[Any, Any]) -> str:
    """A mapping as a phrase: ``{'train': 7, 'test': 3}`` → ``train 7, test 3``.

    Parameters
    ----------
    counts : Mapping
        Names and values, printed in their order.

    Returns
    -------
    str
        ``name value`` pairs joined by commas; ``none`` for an empty mapping.
    """
    return ", ".join(f"{k} {human(v)}" for k, v in counts.items()) or "none"


def table(title: str, rows: Sequence[Mapping[str, Any]], columns: Iterable[str],
          fmt: TableFormat | str | None = None) -> None:
    """Print rows on stderr: a rich table on a terminal, else (or with ``fmt="tsv"``) tab-separated lines.

    Parameters
    ----------
    title : str
        What the rows are; a ``# title`` line in TSV (so that several tables in one output stay apart).
    rows : sequence of mappings
        The rows, keyed by column (the ``--json`` keys).
    columns : iterable of str
        The keys to show, in order; headers are :func:`header` of each, cells :func:`human`.
    fmt : TableFormat or str, optional
        The user's ``--format``; None chooses by whether stderr is a terminal.

    Notes
    -----
    In TSV nothing is wrapped, cut or marked up: tabs and newlines inside a cell become spaces. On
    a terminal, paths and short values (up to 24 characters: numbers, times, states) never wrap
    (``no_wrap``); their headers wrap by word; only longer free text folds. A path gets the width the
    other columns leave (at least 24 characters); a longer one shows "…" and its end, the file name.
    On a terminal too narrow for the short values, rich shortens cells with "…": ``--format tsv``
    and ``--json`` always give every value whole.
    """
    columns = list(columns)
    tsv = (TableFormat(fmt) is TableFormat.tsv) if fmt else not err.is_terminal
    cells = [[human(row.get(c), c) for c in columns] for row in rows]
    if tsv:
        lines = [f"# {title}" + ("" if rows else ": none"), "\t".join(header(c) for c in columns)]
        lines += ["\t".join(" ".join(cell.replace("\t", " ").splitlines()) for cell in line) for line in cells]
        err.file.write("\n".join(lines) + "\n")
        err.file.flush()
        return
    if not rows:
        err.print(f"[dim]{escape(title)}: none[/dim]")
        return
    from rich.table import Table

    t = Table(title=escape(title), title_justify="left")
    widths = [max([len(cell) for cell in column_cells] or [0]) for column_cells in zip(*cells)]
    paths = {i for i, col in enumerate(columns) if col.endswith(_PATHS)}
    free = {i for i, w in enumerate(widths) if i not in paths and w > _SHORT}
    # Short cells (numbers, times, states) never wrap; their headers wrap by word. If they do not all
    # fit beside the paths (24 characters each) and the free text (20), the widest lose characters
    # first ("…"), so that a narrow id column is never squeezed away.
    short = {i: max(widths[i], _longest_word(header(c))) for i, c in enumerate(columns) if i not in paths | free}
    frame = 3 * len(columns) + 1  # borders and padding
    while short and sum(short.values()) > err.width - frame - 24 * len(paths) - 20 * len(free):
        widest = max(short, key=short.__getitem__)
        if short[widest] <= 4:
            break
        short[widest] -= 1
    room = max(24, (err.width - frame - sum(short.values()) - 20 * len(free)) // max(1, len(paths)))
    for i, col in enumerate(columns):
        if i in short:
            t.add_column(escape("\n".join(textwrap.wrap(header(col), short[i]))), width=short[i], no_wrap=True,
                         overflow="ellipsis")
        else:
            t.add_column(escape(header(col)), no_wrap=i in paths, overflow="ellipsis" if i in paths else "fold")
    for line in cells:
        t.add_row(*(escape(_tail(cell, room) if i in paths else cell) for i, cell in enumerate(line)))
    err.print(t)


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def _tail(path: str, width: int) -> str:
    """The end of a path that is too long for its cell ("…" + its last ``width - 1`` characters).

    The file name is what a reader looks for, so a long path loses its start, not its end.
    """
    return path if len(path) <= width else "…" + path[-(width - 1):]
