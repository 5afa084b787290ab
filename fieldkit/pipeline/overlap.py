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
the other cores run other workers.
"""

from __future__ import annotations

import queue
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
        Items held ahead of the consumer (>= 1), besides the one being produced.
    name : str
        The thread's name.
    """

    def __init__(self, source: Iterable[T], depth: int = 1, name: str = "fieldkit-read-ahead") -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, not {depth}")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._source = source
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _put(self, entry) -> bool:
        """Put ``entry``, waking up regularly to see whether the consumer has gone."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        iterator = iter(self._source)
        try:
            for item in iterator:
                if not self._put((item, None)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put((_END, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a generator's finally blocks (open files) run on this thread

    def __iter__(self) -> Iterator[T]:
        while True:
            item, error = self._queue.get()
            if item is _END:
                self._thread.join()
                if error is not None:
                    raise error
                return
            yield item

    def close(self) -> None:
        """Stop producing and join the thread (items not consumed are dropped)."""
        self._stop.set()
        while self._thread.is_alive():
            try:  # unblock a producer waiting on a full queue
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()

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
        Values held ahead of the consumer.
    """

    def __init__(self, source: Iterable[tuple[object, T]], order, depth: int = 1) -> None:
        self._rank = {key: i for i, key in enumerate(order)}
        self._ahead = ReadAhead(source, depth=depth, name="fieldkit-read-ahead")
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
