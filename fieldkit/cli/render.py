"""Output helpers: humans read stderr (rich), programs read exactly one JSON document on stdout."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

__all__ = ["err", "emit_json", "emit_error", "table", "to_jsonable"]

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


def table(title: str, rows: Sequence[Mapping[str, Any]], columns: Iterable[str]) -> None:
    """Render rows as a rich table on stderr (or say there are none)."""
    from rich.table import Table

    columns = list(columns)
    if not rows:
        err.print(f"[dim]{title}: none[/dim]")
        return
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    err.print(t)
