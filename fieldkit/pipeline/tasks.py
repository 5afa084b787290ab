"""The Dask task: read → count clipping on the original samples → resample → cut clips →
extract stored rows (:mod:`.extract`) → write one shard-aligned region of the store.

Memory stays flat whatever the file length: audio streams through in blocks, features are
computed as clips complete, and a task holds at most one shard of stored values before writing
it. On a resumed run a shard that is already complete in the store is skipped (its
features are not computed again); the audio is still streamed through, because resampling and
clip cutting are sequential.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import numpy as np

from fieldkit.dsp.bitdepth import to_float32
from fieldkit.dsp.clipping import clip_thresholds
from fieldkit.dsp.clips import ClipCutter, ClippedCounter, joined
from fieldkit.dsp.features import FEATURE_GROUP_FRAMES
from fieldkit.dsp.resample import StreamingResampler
from fieldkit.dsp.stft import frame_count
from fieldkit.errors import ProcessingError
from fieldkit.faults import crashpoint
from fieldkit.io.audio.stream import read_blocks, sample_format
from fieldkit.pipeline.extract import NONFINITE, ClipBatch, RowExtractor, clipped_fraction
from fieldkit.pipeline.overlap import KeyedStream, ReadAhead, WriteBehind
from fieldkit.pipeline.spec import DspSpec, ItemSpec, TaskResult, TaskSpec
from fieldkit.store.regions import open_sink, padding_arrays
from fieldkit.store.sinks import ShardSink

__all__ = ["ShardBuffer", "process_task", "item_clips", "warm_up"]


def _clipped_frames(block: np.ndarray, channel: int, thresholds) -> np.ndarray | None:
    """Clipped samples per frame of the channels used, or None when the block has none."""
    chans = block if channel < 0 else block[channel:channel + 1]
    if chans.size == 0 or (chans.max() < thresholds.high and chans.min() > thresholds.low):
        return None  # the usual case: two reductions instead of two masks and a sum
    return ((chans >= thresholds.high) | (chans <= thresholds.low)).sum(axis=0)


def item_clips(item: ItemSpec, target_rate_hz: int, quality: str, clip_len: int, hop: int,
               block_frames: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(clips, valid_samples, clipped_original_samples)`` as clips complete."""
    fmt = sample_format(item.subtype)
    ratio = item.sample_rate_hz / target_rate_hz
    cutter = ClipCutter(clip_len, hop, item.n_clips)
    clipped = ClippedCounter(clip_len * ratio, hop * ratio, item.n_clips)
    thresholds = clip_thresholds(fmt.dtype, fmt.bits)
    resampler = None if ratio == 1 else StreamingResampler(item.sample_rate_hz, target_rate_hz, 1, quality)
    source = item.source()  # a path, or a ranged-read object of the archive URL: blocks, never the whole file
    with source if hasattr(source, "close") else contextlib.nullcontext():
        yield from _clips_of_blocks(read_blocks(source, item.frames_present, block_frames, subtype=item.subtype),
                                    item, fmt, cutter, clipped, thresholds, resampler)


def _clips_of_blocks(blocks, item: ItemSpec, fmt, cutter: ClipCutter, clipped: ClippedCounter, thresholds,
                     resampler) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    done = 0
    for block in blocks:
        per_frame = _clipped_frames(block, item.channel, thresholds)
        if per_frame is None:
            clipped.skip(block.shape[1])
        else:
            clipped.update(per_frame)
        x = to_float32(block, fmt.bits)
        mono = x.mean(axis=0, dtype=np.float32) if item.channel < 0 else x[item.channel]
        clips, valid = cutter.feed(mono if resampler is None else resampler.process(mono))
        if len(clips):  # the resampler lags its input: these clips' original ranges are all read
            yield clips, valid, clipped.counts()[done:done + len(clips)]
            done += len(clips)
    tail = [cutter.feed(resampler.process(np.zeros(0, np.float32), last=True))] if resampler is not None else []
    for clips, valid in (*tail, cutter.finish()):
        if len(clips):
            yield clips, valid, clipped.counts()[done:done + len(clips)]
            done += len(clips)


class _Shard:
    """The shard being filled: its rows so far, or none when it is complete in the store."""

    __slots__ = ("region", "skip", "rows")

    def __init__(self, region: slice, skip: bool) -> None:
        self.region = region
        self.skip = skip  # complete in the store already (resume): counted, not computed
        self.rows: list[dict[str, np.ndarray]] = []


class ShardBuffer:
    """Owns a task's region of a store: buffers clips, has them extracted a batch at a time into
    the shard being filled, writes each shard when full, and skips shards already complete.

    Batches of about ``batch_clips`` (so short clips are still vectorised) never straddle a
    shard: a worker holds one shard of *stored values* (features, plus the clips only when
    the waveform is stored), not one shard of clips. A shard already complete in the store
    (resume) is counted, not extracted. Padding clips up to the region's end carry the store's
    fill values.

    Parameters
    ----------
    sink : ShardSink
        Where the shards go.
    region : slice
        The task's shard-aligned ``[start, stop)`` clips.
    clips_per_shard : int
        Clips of a shard (the last one of the store may be shorter).
    extract : callable
        ``extract(batch, first_clip) -> rows``, e.g. :meth:`RowExtractor.extract`.
    batch_clips : int
        Clips to extract at once (>= 1).
    writer : WriteBehind, optional
        Writes each full shard on a background thread while the next one is computed; the
        caller joins it at the task's end. Without it, shards are written here.
    """

    def __init__(self, sink: ShardSink, region: slice, clips_per_shard: int,
                 extract: Callable[[ClipBatch, int], dict[str, np.ndarray]], batch_clips: int,
                 writer: WriteBehind | None = None) -> None:
        self.sink, self.start, self.stop = sink, region.start, region.stop
        self.writer = writer  # shards are written on its thread (in process), else here
        self.clips_per_shard, self.extract, self.batch_clips = clips_per_shard, extract, batch_clips
        self.cursor = region.start  # first clip not yet extracted or counted
        self.waiting: list[ClipBatch] = []
        self.n_waiting = 0
        self.shard: _Shard | None = None
        self.clips_computed = 0
        self.clips_skipped = 0
        self.nonfinite_clips = 0  # clips flagged by nonfinite_count, and their NaN/Inf values
        self.nonfinite_values = 0

    def add(self, batch: ClipBatch) -> None:
        """Take the next clips of the region; extract and write what fills a batch or a shard."""
        if not len(batch.clips):
            return
        if self.cursor + self.n_waiting + len(batch.clips) > self.stop:
            raise ProcessingError(f"task for clips [{self.start}, {self.stop}) produced more "
                                  "clips than planned; the plan and the audio disagree.")
        self.waiting.append(batch)
        self.n_waiting += len(batch.clips)
        while self.n_waiting and self.n_waiting >= min(self.batch_clips, self._left()):
            self._extract(min(self.n_waiting, self._left()))

    def finish(self) -> None:
        """Extract what is waiting, then fill the region up to its end with padding clips."""
        while self.n_waiting:
            self._extract(min(self.n_waiting, self._left()))
        while self.cursor < self.stop:
            n = self._left()
            self._append(None if self._current().skip else padding_arrays(self.sink.layout, n), n)

    def _current(self) -> _Shard:
        """The shard holding the cursor; whether it is complete is asked once, when it opens."""
        if self.shard is None:
            region = slice(self.cursor, min(self.cursor + self.clips_per_shard, self.stop))
            self.shard = _Shard(region, self.sink.is_complete(region))
        return self.shard

    def _left(self) -> int:
        """Clips the current shard still needs."""
        return self._current().region.stop - self.cursor

    def _take(self, n: int) -> ClipBatch:
        whole = self.waiting[0] if len(self.waiting) == 1 else ClipBatch(*map(np.concatenate, zip(*self.waiting)))
        self.waiting = [ClipBatch(*(a[n:] for a in whole))] if len(whole.clips) > n else []
        self.n_waiting -= n
        return ClipBatch(*(a[:n] for a in whole))

    def _extract(self, n: int) -> None:
        """Rows for the next ``n`` waiting clips (all in the current shard)."""
        batch = self._take(n)
        self._append(None if self._current().skip else self.extract(batch, self.cursor), n)

    def _append(self, rows: dict[str, np.ndarray] | None, n: int) -> None:
        shard = self._current()
        if rows is not None:
            shard.rows.append(rows)
            self._count_nonfinite(rows.get(NONFINITE))
        self.cursor += n
        if self.cursor == shard.region.stop:
            self._flush(shard)

    def _count_nonfinite(self, counts: np.ndarray | None) -> None:
        if counts is not None and counts.any():  # padding rows hold 0: never counted
            self.nonfinite_clips += int(np.count_nonzero(counts))
            self.nonfinite_values += int(counts.sum(dtype=np.int64))

    def _flush(self, shard: _Shard) -> None:
        n = shard.region.stop - shard.region.start
        if shard.skip:
            self.clips_skipped += n
        else:
            rows = shard.rows
            if self.writer is None:
                self._write(shard.region, rows)
            else:
                self.writer.submit(self._write, shard.region, rows, owner=self.start)
            self.clips_computed += n
        self.shard = None

    def _write(self, region: slice, rows: list[dict[str, np.ndarray]]) -> None:
        self.sink.write(region, {name: joined([r[name] for r in rows]) for name in rows[0]})


def warm_up(roots: tuple = ()) -> None:
    """Run on each worker before the first task: unpickling it imports this module (and only
    what it needs: not the driver, xarray or the catalogue); with object-store ``roots``
    (:class:`~fieldkit.io.storage.Root`), also their S3 clients and the object-store sink, which
    the first task would otherwise make (docs/scaling.md)."""
    if any(not root.is_local for root in roots):
        import fieldkit.store.objects  # noqa: F401 - zarr and the sink, imported once here
    for root in roots:
        root.warm()


def process_task(spec: TaskSpec, *, overlap: bool = False, stream: KeyedStream | None = None,
                 writer: WriteBehind | None = None) -> TaskResult:
    """Process one task's items and write its region; idempotent and resumable shard by shard.

    Parameters
    ----------
    spec : TaskSpec
        The task.
    overlap : bool
        Read and resample the audio on one thread ahead of the feature extraction, and write
        each full shard on another behind it (:mod:`.overlap`): for the in-process path, where
        no other worker uses the second core. The stored values are the same either way.
    stream : KeyedStream, optional
        The run's audio thread (in process): this task's batches, keyed by ``region_start``,
        prepared while the previous task computed its features. A task it has already passed
        (a retry) reads its audio itself.
    writer : WriteBehind, optional
        The run's shard writer (in process, ``keep_errors``): the task returns while its last
        shard may still be being written, and a failed write is kept in ``writer.failures``
        under the task's ``region_start``; the driver counts the task once it is written
        (``writer.wait_for``). Without it, ``overlap`` gives the task a writer of its own,
        joined (a write's error raised) before it returns.

    Returns
    -------
    TaskResult
        Clips computed and skipped, flagged values, seconds and audio seconds.
    """
    started = time.perf_counter()
    sink = open_sink(spec.store_target())
    variables = sink.layout.variables()
    extractor = RowExtractor.for_store(spec.dsp, (v.name for v in variables), {v.name: v.dtype for v in variables})
    own_writer = WriteBehind() if overlap and writer is None else None
    writer = writer or own_writer
    buffer = ShardBuffer(sink, slice(spec.region_start, spec.region_stop), spec.clips_per_shard,
                         extractor.extract, extractor.batch_clips, writer)
    result = TaskResult(spec.region_start, spec.region_stop)
    ahead = None if stream is None else stream.take(spec.region_start)
    if ahead is not None:  # the run's audio thread prepared this task's batches
        source = contextlib.nullcontext(_raised(ahead))
    elif overlap:
        source = ReadAhead(_task_batches(spec), depth=read_ahead_clips(spec.dsp, spec.clips_per_shard),
                           cost=batch_clips_of)
    else:
        source = contextlib.nullcontext(_task_batches(spec))
    try:
        with source as stream:
            for item, batch in stream:
                if batch is None:  # the item's last clips are in the buffer
                    result.items.append({"recording_id": item.recording_id, "channel": item.channel,
                                         "clip_start": item.clip_start, "clips": item.n_clips})
                    result.audio_seconds += item.frames_present / item.sample_rate_hz
                else:
                    try:
                        buffer.add(batch)
                    except Exception as exc:  # noqa: BLE001 - the driver must learn which recording and step
                        raise _failed(item, exc) from exc
        buffer.finish()
    finally:
        if own_writer is not None:
            own_writer.join()  # the task ends with its shards stored (or raises a write's error)
    result.clips_computed, result.clips_skipped = buffer.clips_computed, buffer.clips_skipped
    result.nonfinite_clips, result.nonfinite_values = buffer.nonfinite_clips, buffer.nonfinite_values
    result.seconds = time.perf_counter() - started
    return result


#: Clip batches (each one read block's clips) the audio thread may hold ahead of the features,
#: at least: it holds up to one extraction batch of clips (:func:`read_ahead_clips`).
READ_AHEAD_BATCHES = 1


def read_ahead_clips(dsp: DspSpec, clips_per_shard: int) -> int:
    """Clips the audio thread may hold ahead of the features: one extraction batch.

    The features take clips ``RowExtractor.batch_clips`` at a time, never more than a shard
    (13 of birds-16k's 3 s clips), while a read block gives one or two of them: held one block
    ahead, the features waited for the audio block by block before each extraction (~1 s of a
    5 s run). One batch of clips ahead costs no more memory than the batch the features hold
    anyway (4 bytes per sample of a clip at the target rate).
    """
    frames = frame_count(dsp.clip_len, dsp.features)
    return max(READ_AHEAD_BATCHES, min(FEATURE_GROUP_FRAMES // max(1, frames), clips_per_shard))


def batch_clips_of(value) -> int:
    """A read-ahead value's clips (an ``(item, batch)`` pair; an item's end or an error: 0)."""
    if isinstance(value, tuple) and value[1] is not None:
        return len(value[1].clips)
    return 0


def _task_batches(spec: TaskSpec) -> Iterator[tuple[ItemSpec, ClipBatch | None]]:
    """``(item, batch)`` for each batch of clips of each item in turn, then ``(item, None)``
    once the item is done; a failure names the recording and the step."""
    dsp = spec.dsp
    for item in spec.items:
        crashpoint(f"task_recording_{item.recording_id}")  # E4's test kills the worker here
        try:
            yield from ((item, batch) for batch in _item_batches(item, dsp))
        except Exception as exc:  # noqa: BLE001 - the driver must learn which recording and step
            raise _failed(item, exc) from exc
        yield item, None


def run_batches(tasks) -> Iterator[tuple[int, tuple[ItemSpec, ClipBatch | None] | Exception]]:
    """Every task's ``(item, batch)`` pairs as :func:`_task_batches` gives them, keyed by the
    task's ``region_start``, for a :class:`KeyedStream` over the run; a task whose audio fails
    gives its error (raised by the task) and the next task starts."""
    for task in tasks:
        try:
            for pair in _task_batches(task):
                yield task.region_start, pair
        except Exception as exc:  # noqa: BLE001 - raised in the task that owns it
            yield task.region_start, exc


def _raised(values: Iterator) -> Iterator:
    for value in values:
        if isinstance(value, Exception):
            raise value
        yield value


def _failed(item: ItemSpec, exc: Exception) -> ProcessingError:
    return ProcessingError(f"processing recording {item.recording_id} ({item.where}) failed: "
                           f"{type(exc).__name__}: {exc}",
                           hint="Fix or quarantine the file, then run again with --resume.")


def _item_batches(item: ItemSpec, dsp: DspSpec) -> Iterator[ClipBatch]:
    ratio = item.sample_rate_hz / dsp.target_rate_hz
    channels = item.channels if item.channel < 0 else 1
    for clips, valid, clipped in item_clips(item, dsp.target_rate_hz, dsp.resample.quality, dsp.clip_len, dsp.hop,
                                            dsp.block_frames):
        yield ClipBatch(clips, valid, clipped_fraction(clipped, valid, ratio, channels))
