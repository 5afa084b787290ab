"""Output helpers: humans read stderr (rich), programs read exactly one JSON document on stdout."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = ["err", "emit_json", "table", "to_jsonable"]

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
