"""Rich progress bars on stderr (files and bytes); silent under --json or without a terminal."""

from __future__ import annotations

from rich.progress import (
    BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn,
)

from fieldkit.cli.render import err

__all__ = ["FileProgress", "TaskProgress"]


class FileProgress:
    """Implements the services' ``Progress`` protocol with two rich bars: files and bytes."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.enabled = enabled and err.is_terminal
        self.label = label
        self._progress: Progress | None = None

    def start(self, files: int, total_bytes: int) -> None:
        if not self.enabled:
            return
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                                  console=err, transient=False)
        self._files = self._progress.add_task(f"{self.label} files", total=files)
        self._bytes = self._progress.add_task(f"{self.label} bytes", total=total_bytes)
        self._progress.start()

    def advance(self, name: str, size_bytes: int) -> None:
        if self._progress is not None:
            self._progress.update(self._files, advance=1)
            self._progress.update(self._bytes, advance=size_bytes)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class TaskProgress:
    """Progress of a processing run: tasks done and clips written."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.enabled = enabled and err.is_terminal
        self.label = label
        self._progress: Progress | None = None

    def start(self, tasks: int, clips: int) -> None:
        if not self.enabled:
            return
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeRemainingColumn(), console=err)
        self._tasks = self._progress.add_task(f"{self.label} tasks", total=tasks)
        self._clips = self._progress.add_task(f"{self.label} clips", total=clips)
        self._progress.start()

    def advance(self, name: str, clips: int) -> None:
        if self._progress is not None:
            self._progress.update(self._tasks, advance=1)
            self._progress.update(self._clips, advance=clips)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
