"""plan_regions: every task owns whole shards; items are contiguous and in order."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit.errors import ConfigError
from fieldkit.store.allocation import plan_regions


def check_plan(counts: list[int], shard: int, plan) -> None:
    # tasks: disjoint, in order, covering [0, n_clips), each aligned to shards
    assert plan.tasks[0].clips.start == 0 if plan.tasks else plan.n_clips == 0
    for before, after in zip(plan.tasks, plan.tasks[1:]):
        assert before.clips.stop == after.clips.start
    if plan.tasks:
        assert plan.tasks[-1].clips.stop == plan.n_clips
    for task in plan.tasks:
        assert task.clips.start % shard == 0
        assert task.clips.stop % shard == 0 or task.clips.stop == plan.n_clips
        assert task.clips.stop > task.clips.start
    # items: their own sizes, in input order, inside their task, padding only at task ends
    assert [s.stop - s.start for s in plan.item_clips] == counts
    ends = [s.stop for s in plan.item_clips if s.stop > s.start]
    assert ends == sorted(ends)
    for task in plan.tasks:
        ranges = [plan.item_clips[i] for i in task.items]
        assert ranges[0].start == task.clips.start
        for a, b in itertools.pairwise(ranges):
            assert a.stop == b.start
        assert task.clips.stop - ranges[-1].stop < shard
    assert sorted(i for t in plan.tasks for i in t.items) == [i for i, n in enumerate(counts) if n]


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, 300), max_size=40), shard=st.integers(1, 64),
       min_clips=st.none() | st.integers(1, 200))
def test_plans_are_aligned_disjoint_and_complete(counts, shard, min_clips):
    check_plan(counts, shard, plan_regions(counts, shard, min_clips_per_task=min_clips))


def test_short_files_are_grouped_with_little_padding():
    plan = plan_regions([20] * 200, 128)  # a night of 1-minute AudioMoth files, 3 s clips
    check_plan([20] * 200, 128, plan)
    assert plan.n_padding_clips / plan.n_clips < 0.1  # (every file on its own shard: 84 %)
    assert all(len(task.items) > 1 for task in plan.tasks)


def test_a_long_recording_is_one_task_and_the_last_shard_may_be_partial():
    plan = plan_regions([14400, 7], 128)  # 12 h of 3 s clips, then a short file
    assert [t.clips for t in plan.tasks] == [slice(0, 14464), slice(14464, 14471)]
    assert plan.item_clips == (slice(0, 14400), slice(14464, 14471))
    assert plan.n_clips == 14471 and plan.n_padding_clips == 64


def test_a_task_ending_on_a_shard_boundary_needs_no_padding():
    plan = plan_regions([64, 64, 128, 10], 128)
    assert [t.clips for t in plan.tasks] == [slice(0, 128), slice(128, 256), slice(256, 266)]
    assert plan.n_padding_clips == 0


def test_empty_inputs_and_empty_items():
    assert plan_regions([], 8).n_clips == 0 and plan_regions([], 8).tasks == ()
    plan = plan_regions([0, 5, 0], 8)
    assert plan.item_clips == (slice(0, 0), slice(0, 5), slice(5, 5))
    assert [t.items for t in plan.tasks] == [(1,)]


@pytest.mark.parametrize(("counts", "shard", "expected"), [
    ([3, -1], 8, r"item 1 has -1"),
    ([3], 0, r"clips_per_shard = 0"),
    ([3.5], 8, r"item 0 has 3\.5"),
])
def test_bad_inputs(counts, shard, expected):
    with pytest.raises(ConfigError, match=expected):
        plan_regions(counts, shard)
