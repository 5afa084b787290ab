"""Overlapping a task's stages on the in-process path: audio read ahead, shard writes behind.

With one worker in the driver's process (:mod:`.execution`), a task reads and resamples a
recording, extracts features, then encodes and writes a shard, one after the other, on one core.
Much of that work runs in native code that releases the GIL (libsndfile's decoding, numpy's
reductions and casts, soxr's resampling, the FFT, BLAS, blosc's compression, file writes), so
threads can share it on a second core:

- :class:`ReadAhead` runs the audio side (read, clipping count, float conversion, resampling,
  clip cutting) on a thread, at most ``depth`` clip batches ahead of the feature extraction; a
  batch is one read block's clips, so memory stays bounded whatever the file length.
  :class:`KeyedStream` is one such thread for a whole run, handing each task its own batches,
  so that the audio of the next task is read while the last recording of this one is computed
  (a thread per task measured no gain: each task began and ended with one thread idle).
- :class:`WriteBehind` encodes and writes a full shard on a thread while the next one is being
  computed, at most one shard behind. On the in-process path one writer serves the whole run,
  so a task's last shard is written while the next task computes; the driver counts a task only
  once its shards are written (:meth:`WriteBehind.wait_for`) and fails the task a failed write
  belongs to. A shard's ``done`` flags are still set after its variables (resume is unchanged).

The stored values are those of the sequential path (the same functions on the same inputs, in
the same order per stream); the CPU seconds are about the same, the wall time shorter
(``docs/notes/performance.md``, "Overlapping the stages"). Dask workers do not use this: there
the other cores run other workers. With task threads (``--cluster inprocess --workers N``) each
task reads ahead and writes behind on its own.

The audio thread holds one *extraction batch* of clips ahead (``ReadAhead``'s ``cost``), not
one read block: birds-16k's features take 13 of its 3 s clips at a time while a read block
gives one or two, and held one block ahead the features waited for the audio block by block.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

__all__ = ["KeyedStream", "ReadAhead", "WriteBehind"]

T = TypeVar("T")

_END = object()


class ReadAhead(Generic[T]):
    """Iterate ``source`` on a background thread, at most ``depth`` items ahead of the consumer.

    An exception raised by ``source`` is raised by the iteration at the point where it occurred.
    :meth:`close` (also on leaving a ``with`` block) stops the producer at its next item and
    joins it, so no thread outlives the task.

    Parameters
    ----------
    source : iterable
        What to produce ahead (e.g. the clip batches of a task's recordings).
    depth : int
        What the producer may hold ahead of the consumer (>= 1), besides the item it is making:
        items, or with ``cost`` the sum of their costs (it always holds at least one item).
    name : str
        The thread's name.
    cost : callable, optional
        ``cost(item) -> int``, e.g. the clips of a batch: the consumer of a few clips per item
        that works on ``depth`` clips at a time then finds them ready instead of waiting for
        each in turn. Without it every item costs 1.
    """

    def __init__(self, source: Iterable[T], depth: int = 1, name: str = "fieldkit-read-ahead",
                 cost: Callable[[T], int] | None = None) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, not {depth}")
        self._items: collections.deque = collections.deque()
        self._held = 0  # the cost of the items in _items
        self._depth, self._cost = depth, cost
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._source = source
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _put(self, entry, cost: int = 1) -> bool:
        """Append ``entry`` once there is room, waking up regularly to see whether the consumer
        has gone."""
        with self._ready:
            while self._items and self._held >= self._depth and not self._stop.is_set():
                self._ready.wait(0.1)
            if self._stop.is_set():
                return False
            self._items.append((entry, cost))
            self._held += cost
            self._ready.notify_all()
            return True

    def _produce(self) -> None:
        iterator = iter(self._source)
        try:
            for item in iterator:
                if not self._put((item, None), 1 if self._cost is None else self._cost(item)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put((_END, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a generator's finally blocks (open files) run on this thread

    def _get(self):
        with self._ready:
            while not self._items:
                self._ready.wait()
            entry, cost = self._items.popleft()
            self._held -= cost
            self._ready.notify_all()
            return entry

    def __iter__(self) -> Iterator[T]:
        while True:
            item, error = self._get()
            if item is _END:
                self._thread.join()
                if error is not None:
                    raise error
                return
            yield item

    def close(self) -> None:
        """Stop producing and join the thread (items not consumed are dropped)."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()  # a producer waiting for room sees the stop
        self._thread.join()
        self._items.clear()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WriteBehind:
    """Run writes on one background thread, at most one behind the caller.

    :meth:`submit` first waits for the previous write, so one write runs while the caller
    computes the next, and at most two shards of stored values exist at a time. :meth:`join`
    waits for the last one.

    A task's own writer (``keep_errors=False``) re-raises a write's error in the task. The run's
    writer on the in-process path (``keep_errors=True``) outlives each task, so that a task's
    last shard is written while the next task computes; a failed write is then kept under the
    ``owner`` given to :meth:`submit` (its task) in :attr:`failures`, for the driver to account,
    and :meth:`wait_for` tells the driver when an owner's writes are all done.
    """

    def __init__(self, name: str = "fieldkit-write-behind", *, keep_errors: bool = False) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: tuple[Future, object] | None = None
        self._keep_errors = keep_errors
        self.failures: dict[object, BaseException] = {}

    def submit(self, write: Callable[..., None], *args, owner: object = None) -> None:
        """Wait for the previous write, then start ``write(*args)`` on the thread."""
        self.wait()
        self._pending = (self._pool.submit(write, *args), owner)

    def wait(self) -> None:
        """Wait for the write in flight, if any; re-raise (or keep) its error."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        future, owner = pending
        error = future.exception()
        if error is None:
            return
        if not self._keep_errors:
            raise error
        self.failures.setdefault(owner, error)

    def wait_for(self, owner: object) -> None:
        """Wait until no write of ``owner`` is in flight (writes run in submission order)."""
        if self._pending is not None and self._pending[1] == owner:
            self.wait()

    def join(self) -> None:
        """Wait for the last write (re-raising or keeping its error) and end the thread."""
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc) -> None:
        self.join()


class KeyedStream:
    """One read-ahead stream of ``(key, value)`` pairs for a run's tasks, in the order they run.

    The in-process path runs its tasks one after the other, so one :class:`ReadAhead` over all
    of them keeps the audio thread busy across task boundaries. :meth:`take` gives the values of
    one key (a task) as they arrive, dropping those of earlier keys (a task that failed half
    way); a key the stream has already passed (a retried task) gives None, and the caller then
    computes its values itself.

    Parameters
    ----------
    source : iterable of (key, value)
        Every key's values, keys in ``order``, each key's values consecutive.
    order : sequence
        The keys, in the order of ``source``.
    depth : int
        Values held ahead of the consumer (with ``cost``: their summed cost).
    cost : callable, optional
        ``cost(value)``, as :class:`ReadAhead`'s.
    """

    def __init__(self, source: Iterable[tuple[object, T]], order, depth: int = 1,
                 cost: Callable[[T], int] | None = None) -> None:
        self._rank = {key: i for i, key in enumerate(order)}
        self._ahead = ReadAhead(source, depth=depth, name="fieldkit-read-ahead",
                                cost=None if cost is None else (lambda pair: cost(pair[1])))
        self._stream = iter(self._ahead)
        self._next: tuple[object, T] | None = None
        self._passed = -1  # rank of the last key whose values were taken or dropped

    def take(self, key) -> Iterator[T] | None:
        """The values of ``key`` as they come, or None if the stream is past it."""
        rank = self._rank.get(key)
        if rank is None or rank <= self._passed:
            return None
        self._passed = rank
        return self._values(rank)

    def _values(self, rank: int) -> Iterator[T]:
        while True:
            if self._next is None:
                self._next = next(self._stream, None)
                if self._next is None:
                    return
            key, value = self._next
            if self._rank[key] < rank:  # what a failed task left: dropped
                self._next = None
                continue
            if self._rank[key] > rank:  # the next task's: kept for it
                return
            self._next = None
            yield value

    def close(self) -> None:
        """Stop the audio thread."""
        self._ahead.close()

    def __enter__(self) -> KeyedStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
