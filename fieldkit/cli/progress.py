"""Rich progress bars on stderr; silent under --json or without a terminal.

One class serves every long command: a bar of items (files, tasks) and a bar of their weight
(bytes copied, clips written), driven by the services' ``start / advance / finish`` protocol.
"""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.markup import escape
from rich.text import Text

from fieldkit.cli.render import err

__all__ = ["TwoBarProgress", "FileProgress", "TaskProgress"]


class _ForKind(ProgressColumn):
    """A column shown only on the bar of one kind ("items" or "weight"): rich applies every column
    to every bar, and a bar of files must not read in bytes or bytes/s."""

    def __init__(self, kind: str, column: ProgressColumn) -> None:
        super().__init__()
        self.kind, self.column = kind, column

    def render(self, task: Task) -> Text:
        return self.column.render(task) if task.fields.get("kind") == self.kind else Text("")


class TwoBarProgress:
    """Items and their weight, e.g. files and bytes, or tasks and clips."""

    def __init__(self, label: str, items: str, weight: str, *, weight_is_bytes: bool, enabled: bool = True) -> None:
        self.enabled = enabled and err.is_terminal
        self.label, self.items, self.weight, self.weight_is_bytes = label, items, weight, weight_is_bytes
        self._progress: Progress | None = None

    def _columns(self) -> list:
        if not self.weight_is_bytes:
            return [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        # the items bar counts items ("3/11"); only the weight bar reads in bytes and bytes/s
        return [TextColumn("{task.description}"), BarColumn(), _ForKind("items", MofNCompleteColumn()),
                _ForKind("weight", DownloadColumn()), _ForKind("weight", TransferSpeedColumn()),
                TimeRemainingColumn()]

    def start(self, items: int, weight: int) -> None:
        if not self.enabled:
            return
        self._progress = Progress(*self._columns(), console=err)
        self._items = self._progress.add_task(f"{self.label} {self.items}", total=items, kind="items")
        self._weight = self._progress.add_task(f"{self.label} {self.weight}", total=weight, kind="weight")
        self._progress.start()

    def advance(self, name: str, weight: int) -> None:
        if self._progress is not None:
            self._progress.update(self._items, advance=1)
            self._progress.update(self._weight, advance=weight)

    def waiting(self, message: str) -> None:
        """Say what the run waits for (batch jobs to start a worker), above the bars."""
        if self.enabled:
            err.print(f"[dim]{escape(message)}[/dim]", soft_wrap=True)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def FileProgress(label: str, enabled: bool = True) -> TwoBarProgress:  # noqa: N802 - reads as a class
    """Files and bytes (ingest, verify)."""
    return TwoBarProgress(label, "files", "bytes", weight_is_bytes=True, enabled=enabled)


def TaskProgress(label: str, enabled: bool = True) -> TwoBarProgress:  # noqa: N802
    """Tasks and clips (process)."""
    return TwoBarProgress(label, "tasks", "clips", weight_is_bytes=False, enabled=enabled)
