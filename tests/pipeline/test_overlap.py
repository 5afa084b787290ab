"""The in-process path's overlap (pipeline/overlap.py): audio read ahead on one thread, shards
written behind on another. The stored bytes are those of the sequential task, the read-ahead is
bounded, errors arrive where they happened, and no thread outlives a task."""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fieldkit.config.workflow import Workflow
from fieldkit.errors import ProcessingError
from fieldkit.pipeline.overlap import KeyedStream, ReadAhead, WriteBehind
from fieldkit.pipeline.plan import plan_run
from fieldkit.pipeline.tasks import process_task, run_batches
from fieldkit.store.zarr_store import create_store
from tests.pipeline.conftest import WORKFLOW


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("fieldkit-")}


# --------------------------------------------------------------------------- ReadAhead
def test_read_ahead_yields_every_item_in_order():
    assert list(ReadAhead(iter(range(1000)), depth=3)) == list(range(1000))
    assert not _threads()


def test_read_ahead_is_bounded():
    """The producer holds at most ``depth`` items beside the one it is making: with a consumer
    that does not read, it stops there."""
    made = []

    def source():
        for i in range(100):
            made.append(i)
            yield i

    with ReadAhead(source(), depth=2) as ahead:
        time.sleep(0.3)  # ample time to run ahead, were it not bounded
        assert len(made) == 3  # two queued, the third waiting for room
        stream = iter(ahead)
        assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
        time.sleep(0.3)
        assert len(made) == 8
    assert not _threads()


def test_read_ahead_by_cost_holds_up_to_depth_and_at_least_one_item():
    """With ``cost`` (a batch's clips), the producer holds items until their cost reaches
    ``depth`` (an extraction batch of clips), and always one, however costly."""
    made = []

    def source():
        for size in (2, 2, 2, 20, 1, 1):
            made.append(size)
            yield size

    with ReadAhead(source(), depth=5, cost=lambda size: size) as ahead:
        time.sleep(0.3)
        assert made == [2, 2, 2, 20]  # 6 >= 5 held: the 20-clip batch waits for room
        stream = iter(ahead)
        assert [next(stream) for _ in range(3)] == [2, 2, 2]
        time.sleep(0.3)
        assert made == [2, 2, 2, 20, 1]  # the 20 alone is over depth: held, nothing more
        assert list(stream) == [20, 1, 1]
    assert not _threads()


def test_read_ahead_raises_the_sources_error_where_it_happened():
    def source():
        yield 1
        yield 2
        raise ValueError("bad block")

    got = []
    with pytest.raises(ValueError, match="bad block"), ReadAhead(source()) as ahead:
        for item in ahead:
            got.append(item)
    assert got == [1, 2]
    assert not _threads()


def test_closing_early_stops_the_producer_and_runs_its_cleanup():
    closed = threading.Event()

    def source():
        try:
            for i in range(10**9):
                yield i
        finally:
            closed.set()  # a generator's finally (an open file) runs on close

    with ReadAhead(source(), depth=1) as ahead:
        for item in ahead:
            if item == 3:
                break
    assert closed.is_set() and not _threads()


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        ReadAhead([], depth=0)


# --------------------------------------------------------------------------- KeyedStream
def test_a_keyed_stream_gives_each_key_its_values_across_keys():
    source = [(k, f"{k}{i}") for k in "abc" for i in range(3)]
    with KeyedStream(source, "abc") as stream:
        assert list(stream.take("a")) == ["a0", "a1", "a2"]
        b = stream.take("b")
        assert next(b) == "b0"  # the task of b fails here: the rest of b is dropped for c
        assert list(stream.take("c")) == ["c0", "c1", "c2"]
        assert stream.take("b") is None and stream.take("a") is None  # passed: a retry reads itself
        assert stream.take("z") is None  # not in the run
    assert not _threads()


def test_a_key_skipped_entirely_is_dropped():
    source = [(k, i) for k in "abc" for i in range(2)]
    with KeyedStream(source, "abc", depth=1) as stream:
        assert list(stream.take("c")) == [0, 1]
        assert stream.take("a") is None
    assert not _threads()


# --------------------------------------------------------------------------- WriteBehind
def test_write_behind_runs_one_write_at_a_time_and_reraises_its_error():
    running, peak, done = [0], [0], []
    lock = threading.Lock()

    def write(i: int) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        if i == 3:
            raise OSError("disk full")
        done.append(i)

    writer = WriteBehind()
    for i in range(3):
        writer.submit(write, i)
    writer.submit(write, 3)
    with pytest.raises(OSError, match="disk full"):
        writer.submit(write, 4)  # waits for write 3 first, and reports it
    writer.join()
    assert done == [0, 1, 2] and peak[0] == 1
    assert not _threads()


def test_join_waits_for_the_last_write():
    done = []
    writer = WriteBehind()
    writer.submit(lambda: (time.sleep(0.1), done.append(1)))
    writer.join()
    assert done == [1] and not _threads()


# --------------------------------------------------------------------------- process_task
def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("waveform", [True, False])
def test_a_task_stores_the_same_bytes_with_and_without_overlap(processed, tmp_path, waveform):
    """Every task of a plan (real, synthetic and clipped recordings; 16-, 24-bit and float;
    shards of 2 clips, so a task writes several shards behind its features), run once
    sequentially and once overlapped into two stores: every stored object is byte-identical."""
    ws, _ = processed
    workflow = Workflow.from_dict({**WORKFLOW, "store": {"clips_per_chunk": 2, "clips_per_shard": 2,
                                                         "waveform": waveform}})
    stores = {}
    for overlap in (False, True):
        store = tmp_path / f"overlap-{overlap}.zarr"
        with ws.catalogue.read() as session:
            plan = plan_run(session, workflow, ws.paths.archive, str(store))
        create_store(store, plan.layout, plan.coords, {})
        results = [process_task(task, overlap=overlap) for task in plan.tasks]
        assert sum(r.clips_computed for r in results) == plan.layout.n_clips
        stores[overlap] = (_snapshot(store), [(r.items, r.audio_seconds, r.nonfinite_clips) for r in results])
    assert any(t.region_stop - t.region_start > 2 for t in plan.tasks)  # several shards per task
    assert stores[True][1] == stores[False][1]
    assert stores[True][0].keys() == stores[False][0].keys()
    for key, data in stores[False][0].items():
        assert stores[True][0][key] == data, key
    assert not _threads()


@pytest.mark.parametrize("overlap", [False, True], ids=["one-thread-each", "overlap-each"])
def test_two_task_threads_store_the_same_bytes_as_one_task_at_a_time(processed, tmp_path, overlap):
    """``--cluster inprocess --workers 2``: the plan's tasks run two at a time on the client's
    task threads (each reading ahead and writing behind on its own with the overlap); every
    stored object equals the one-task-at-a-time path's, and no thread outlives the client."""
    from fieldkit.pipeline.execution import inprocess_client

    ws, _ = processed
    workflow = Workflow.from_dict({**WORKFLOW, "store": {"clips_per_chunk": 2, "clips_per_shard": 2,
                                                         "waveform": True}})
    stores = {}
    for threads in (1, 2):
        store = tmp_path / f"threads-{threads}.zarr"
        with ws.catalogue.read() as session:
            plan = plan_run(session, workflow, ws.paths.archive, str(store))
        create_store(store, plan.layout, plan.coords, {})
        with inprocess_client(threads) as client:
            task_fn = functools.partial(process_task, overlap=overlap and threads > 1)
            futures = [client.submit(task_fn, task) for task in plan.tasks]
            results = [f.result() for f in client.as_completed(futures)]
            if threads > 1:
                assert {t.name for t in threading.enumerate()} & {"fieldkit-task_0", "fieldkit-task_1"}
        assert sum(r.clips_computed for r in results) == plan.layout.n_clips
        stores[threads] = (_snapshot(store), [(r.items, r.audio_seconds, r.nonfinite_clips) for r in results])
    assert len(plan.tasks) >= 3
    assert stores[2][1] == stores[1][1]
    assert stores[2][0].keys() == stores[1][0].keys()
    for key, data in stores[1][0].items():
        assert stores[2][0][key] == data, key
    assert not _threads()


def test_an_unreadable_recording_fails_its_task_with_its_name_and_no_thread_left(processed, tmp_path):
    ws, _ = processed
    workflow = Workflow.from_dict(WORKFLOW)
    store = tmp_path / "broken.zarr"
    with ws.catalogue.read() as session:
        plan = plan_run(session, workflow, ws.paths.archive, str(store))
    create_store(store, plan.layout, plan.coords, {})
    task = plan.tasks[0]
    item = task.items[-1]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"\0" * 4096)
    task = type(task)(**{**task.__dict__, "items": (*task.items[:-1], type(item)(**{**item.__dict__,
                                                                                     "path": str(broken)}))})
    with pytest.raises(ProcessingError, match=f"recording {item.recording_id} .*broken.wav"):
        process_task(task, overlap=True)
    assert not _threads()


def test_the_runs_audio_stream_stores_the_same_bytes_and_keeps_a_failure_in_its_task(processed, tmp_path):
    """The driver's in-process path: one audio thread for every task of the run. A recording
    that cannot be read fails its own task (its error named), the tasks after it store what the
    sequential path stores, and the failed task run again reads its audio itself."""
    ws, _ = processed
    workflow = Workflow.from_dict({**WORKFLOW, "store": {"clips_per_chunk": 2, "clips_per_shard": 2}})
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"\0" * 4096)
    snapshots = {}
    for mode in ("sequential", "stream"):
        store = tmp_path / f"{mode}.zarr"
        with ws.catalogue.read() as session:
            plan = plan_run(session, workflow, ws.paths.archive, str(store))
        create_store(store, plan.layout, plan.coords, {})
        tasks = list(plan.tasks)
        assert len(tasks) >= 3
        first = tasks[0]
        bad = type(first.items[0])(**{**first.items[0].__dict__, "path": str(broken)})
        tasks[0] = type(first)(**{**first.__dict__, "items": (bad, *first.items[1:])})
        if mode == "sequential":
            for task in tasks[1:]:
                process_task(task)
        else:
            with KeyedStream(run_batches(tasks), [t.region_start for t in tasks]) as stream:
                with pytest.raises(ProcessingError, match=f"recording {bad.recording_id} .*broken.wav"):
                    process_task(tasks[0], overlap=True, stream=stream)
                for task in tasks[1:]:
                    process_task(task, overlap=True, stream=stream)
                with pytest.raises(ProcessingError, match="broken.wav"):  # a retry: read by the task
                    process_task(tasks[0], overlap=True, stream=stream)
        snapshots[mode] = _snapshot(store)
    assert snapshots["stream"] == snapshots["sequential"]
    assert not _threads()


def test_the_runs_writer_keeps_errors_by_owner_and_says_when_an_owner_is_written():
    done = []

    def write(i: int) -> None:
        time.sleep(0.02)
        if i == 1:
            raise OSError("disk full")
        done.append(i)

    with WriteBehind(keep_errors=True) as writer:
        writer.submit(write, 0, owner="a")
        writer.submit(write, 1, owner="b")  # fails: kept for b, not raised in the next submit
        writer.submit(write, 2, owner="c")
        writer.wait_for("b")  # nothing of b in flight: returns at once
        writer.wait_for("c")
        assert done == [0, 2]
    assert list(writer.failures) == ["b"] and isinstance(writer.failures["b"], OSError)
    assert not _threads()


def test_a_shard_that_fails_behind_its_task_fails_that_task_and_resume_finishes_it(tmp_path, monkeypatch):
    """In process, the run's writer stores a task's shards behind it (its last one while the
    next task computes). A write that fails there is kept for the task that owns it: that task
    is a failure (named, with the error), the run is failed, a resume computes exactly the shard
    that was never stored, and the store then equals a one-thread run's."""
    import datetime as dt

    from fieldkit.ingest.service import IngestRequest, ingest_card
    from fieldkit.pipeline import tasks as task_module
    from fieldkit.pipeline.driver import run_workflow
    from fieldkit.store.zarr_store import open_store
    from fieldkit.testing.cards import audiomoth_card
    from fieldkit.workspace import init_workspace, open_workspace

    audiomoth_card(tmp_path / "card", start=dt.datetime(2024, 5, 3, 22, 0), count=4, seconds=5.0,
                   sample_rate_hz=48_000, utc_offset_minutes=120, era="1.6.0")
    init_workspace(tmp_path / "ws")
    ws = open_workspace(tmp_path / "ws")
    ingest_card(ws, IngestRequest(tmp_path / "card", "Wood", "N3", timezone="+02:00"))
    workflow = Workflow.from_dict({**WORKFLOW, "store": {"clips_per_chunk": 4, "clips_per_shard": 4}})
    real_write = task_module.ShardBuffer._write

    def failing(self, region, rows):
        if region.start == 4:
            raise OSError("no space left on device")
        real_write(self, region, rows)

    monkeypatch.setattr(task_module.ShardBuffer, "_write", failing)
    failed = run_workflow(ws, workflow, workflow_source="test", cluster="inprocess")
    assert failed.execution == "inprocess" and failed.state == "failed"
    [failure] = failed.failures
    assert failure["clips"][0] <= 4 < failure["clips"][1] and "no space left on device" in failure["message"]
    assert "writing clips" in failure["message"]
    monkeypatch.setattr(task_module.ShardBuffer, "_write", real_write)
    resumed = run_workflow(ws, workflow, workflow_source="test", cluster="inprocess", resume=failed.run_id)
    assert resumed.state == "complete"
    assert resumed.clips_computed == 4  # the shard that was never stored, nothing else
    serial_ws = open_workspace(tmp_path / "ws", flags={"dask": {"overlap": False}})
    reference = run_workflow(serial_ws, workflow, workflow_source="test", cluster="inprocess", new_run=True)
    a, b = open_store(ws.root / resumed.store).load(), open_store(ws.root / reference.store).load()
    try:
        for name in [*a.data_vars, *a.coords]:
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    finally:
        a.close(), b.close()
    assert not _threads()
