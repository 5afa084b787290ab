"""Plan every recording's clip range so that each task owns whole shards (docs/reliability.md, E3).

The choice: **several recordings per task, one writer per shard.** Items (recordings, or
shard-sized segments of very long recordings) are laid out on the ``clip`` axis in the order
given, back to back. Consecutive items are grouped into a task until the task holds at least
``min_clips_per_task`` clips *and* ends close to a shard boundary (at most
``clips_per_shard // 8`` clips short of it), or until it reaches ``max_clips_per_task``. The
task's region is then padded up to the next shard boundary with *padding clips*
(``valid_samples = 0``, ``recording_id = -1``), so the next task starts on a shard boundary.
The last task is not padded: the array ends with it (its last shard is a partial one).

Why not "every recording starts on a shard boundary": with one-minute AudioMoth files (20 clips
of 3 s) and 128-clip shards, that wastes 84 % of the store in padding. Grouping keeps padding to
at most one shard per task (typically a few clips), and gives tasks of several files, which is
also what docs/notes/performance.md recommends for per-task overhead. A task may write its region
in several shard-aligned pieces (``write_region`` accepts any shard-aligned slice), so a long
group never needs to sit in memory at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fieldkit.errors import ConfigError

__all__ = ["RegionPlan", "TaskRegion", "plan_regions"]


@dataclass(frozen=True)
class TaskRegion:
    """One task's shard-aligned region and the items it writes.

    Attributes
    ----------
    clips : slice
        ``[start, stop)`` on the ``clip`` axis, padding included; start is a shard boundary,
        stop is one too, or the end of the array.
    items : tuple of int
        Indices (into the planner's input) of the items written by this task, in order.
    """

    clips: slice
    items: tuple[int, ...]


@dataclass(frozen=True)
class RegionPlan:
    """Where every item goes.

    Attributes
    ----------
    n_clips : int
        Length of the ``clip`` axis, padding included.
    item_clips : tuple of slice
        Per input item, its ``[start, stop)`` clip range (empty for items with 0 clips).
    tasks : tuple of TaskRegion
        Non-overlapping, shard-aligned regions covering ``[0, n_clips)`` in order.
    """

    n_clips: int
    item_clips: tuple[slice, ...]
    tasks: tuple[TaskRegion, ...]

    @property
    def n_padding_clips(self) -> int:
        """Clips that belong to no item."""
        return self.n_clips - sum(s.stop - s.start for s in self.item_clips)


def _check_counts(counts: Sequence[int], clips_per_shard: int) -> None:
    if isinstance(clips_per_shard, bool) or not isinstance(clips_per_shard, int) \
            or clips_per_shard < 1:
        raise ConfigError(f"clips_per_shard = {clips_per_shard!r} is invalid; expected an "
                          "integer >= 1.")
    bad = [(i, n) for i, n in enumerate(counts)
           if isinstance(n, bool) or not isinstance(n, int) or n < 0]
    if bad:
        raise ConfigError(f"clip counts must be integers >= 0; item {bad[0][0]} has "
                          f"{bad[0][1]!r}.")


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class _Planner:
    """Greedy grouping; one pass over the items."""

    def __init__(self, shard: int, min_clips: int, max_clips: int) -> None:
        self.shard, self.min_clips, self.max_clips = shard, min_clips, max_clips
        self.tolerance = shard // 8
        self.end = 0
        self.task_start = 0
        self.task_items: list[int] = []
        self.item_clips: list[slice] = []
        self.tasks: list[TaskRegion] = []

    def add(self, index: int, n: int) -> None:
        self.item_clips.append(slice(self.end, self.end + n))
        if n == 0:
            return
        self.end += n
        self.task_items.append(index)
        size, pad = self.end - self.task_start, _round_up(self.end, self.shard) - self.end
        if size >= self.max_clips or (size >= self.min_clips and pad <= self.tolerance):
            self.close(pad=True)

    def close(self, pad: bool) -> None:
        if not self.task_items:
            return
        if pad:
            self.end = _round_up(self.end, self.shard)
        self.tasks.append(TaskRegion(slice(self.task_start, self.end), tuple(self.task_items)))
        self.task_start, self.task_items = self.end, []


def plan_regions(n_clips_per_recording: Sequence[int], clips_per_shard: int, *,
                 min_clips_per_task: int | None = None,
                 max_clips_per_task: int | None = None) -> RegionPlan:
    """Assign each item a clip range so that every task writes whole shards only.

    Parameters
    ----------
    n_clips_per_recording : sequence of int
        Clips of each item (a recording, or a segment of one), >= 0, in store order.
    clips_per_shard : int
        Shard length along ``clip`` (``StoreLayout.clips_per_shard``).
    min_clips_per_task : int, optional
        A task closes once it holds at least this many clips and ends within
        ``clips_per_shard // 8`` clips of a shard boundary; default ``clips_per_shard``.
    max_clips_per_task : int, optional
        A task closes once it holds at least this many clips, wherever it ends; default
        ``4 * min_clips_per_task``. One item is never split, so a task can exceed it by one item.

    Returns
    -------
    RegionPlan
        Item ranges (contiguous, in input order) and task regions (shard-aligned, disjoint,
        covering every clip). Trailing padding is never added: the last task ends the array.
    """
    counts = list(n_clips_per_recording)
    _check_counts(counts, clips_per_shard)
    min_clips = clips_per_shard if min_clips_per_task is None else max(1, min_clips_per_task)
    max_clips = 4 * min_clips if max_clips_per_task is None else max(1, max_clips_per_task)
    planner = _Planner(clips_per_shard, min_clips, max(min_clips, max_clips))
    for index, n in enumerate(counts):
        planner.add(index, n)
    planner.close(pad=False)
    return _without_trailing_padding(planner)


def _without_trailing_padding(planner: _Planner) -> RegionPlan:
    """The array ends with the last item: trim the padding the last close may have added."""
    n_clips = max((s.stop for s in planner.item_clips), default=0)
    tasks = list(planner.tasks)
    if tasks:
        tasks[-1] = TaskRegion(slice(tasks[-1].clips.start, n_clips), tasks[-1].items)
    items = tuple(s if s.stop <= n_clips else slice(n_clips, n_clips) for s in planner.item_clips)
    return RegionPlan(n_clips=n_clips, item_clips=items, tasks=tuple(tasks))
