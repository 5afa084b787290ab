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
from fieldkit.dsp.resample import StreamingResampler
from fieldkit.errors import ProcessingError
from fieldkit.faults import crashpoint
from fieldkit.io.audio.stream import read_blocks, sample_format
from fieldkit.pipeline.extract import NONFINITE, ClipBatch, RowExtractor, clipped_fraction
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
    """

    def __init__(self, sink: ShardSink, region: slice, clips_per_shard: int,
                 extract: Callable[[ClipBatch, int], dict[str, np.ndarray]], batch_clips: int) -> None:
        self.sink, self.start, self.stop = sink, region.start, region.stop
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
            self.sink.write(shard.region, {name: joined([r[name] for r in shard.rows]) for name in shard.rows[0]})
            self.clips_computed += n
        self.shard = None


def warm_up() -> None:
    """Run on each worker before the first task: unpickling it imports this module (and only
    what it needs: not the driver, xarray or the catalogue)."""


def process_task(spec: TaskSpec) -> TaskResult:
    """Process one task's items and write its region; idempotent and resumable shard by shard."""
    started = time.perf_counter()
    sink = open_sink(spec.store_target())
    variables = sink.layout.variables()
    extractor = RowExtractor.for_store(spec.dsp, (v.name for v in variables), {v.name: v.dtype for v in variables})
    buffer = ShardBuffer(sink, slice(spec.region_start, spec.region_stop), spec.clips_per_shard,
                         extractor.extract, extractor.batch_clips)
    result = TaskResult(spec.region_start, spec.region_stop)
    for item in spec.items:
        crashpoint(f"task_recording_{item.recording_id}")  # E4's test kills the worker here
        try:
            _process_item(item, spec.dsp, buffer, result)
        except Exception as exc:  # noqa: BLE001 - the driver must learn which recording and step
            raise ProcessingError(f"processing recording {item.recording_id} ({item.where}) failed: "
                                  f"{type(exc).__name__}: {exc}",
                                  hint="Fix or quarantine the file, then run again with --resume.") from exc
    buffer.finish()
    result.clips_computed, result.clips_skipped = buffer.clips_computed, buffer.clips_skipped
    result.nonfinite_clips, result.nonfinite_values = buffer.nonfinite_clips, buffer.nonfinite_values
    result.seconds = time.perf_counter() - started
    return result


def _process_item(item: ItemSpec, dsp: DspSpec, buffer: ShardBuffer, result: TaskResult) -> None:
    ratio = item.sample_rate_hz / dsp.target_rate_hz
    channels = item.channels if item.channel < 0 else 1
    for clips, valid, clipped in item_clips(item, dsp.target_rate_hz, dsp.resample.quality, dsp.clip_len, dsp.hop,
                                            dsp.block_frames):
        buffer.add(ClipBatch(clips, valid, clipped_fraction(clipped, valid, ratio, channels)))
    result.items.append({"recording_id": item.recording_id, "channel": item.channel,
                         "clip_start": item.clip_start, "clips": item.n_clips})
    result.audio_seconds += item.frames_present / item.sample_rate_hz
