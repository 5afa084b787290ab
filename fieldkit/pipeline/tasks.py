"""The Dask task: read → count clipping on the original samples → resample → cut clips →
features → write one shard-aligned region of the store.

Memory stays flat whatever the file length: audio streams through in blocks, features are
computed as clips complete, and a task holds at most one shard of stored values before writing
it. On a resumed run a shard that is already complete in the store is skipped (its
features are not computed again); the audio is still streamed through, because resampling and
clip cutting are sequential.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from fieldkit.dsp.bitdepth import to_float32, to_int16
from fieldkit.dsp.clipping import clip_thresholds
from fieldkit.dsp.clips import ClipCutter, ClippedCounter, clip_qc, joined
from fieldkit.dsp.features import FEATURE_GROUP_FRAMES, compute_features
from fieldkit.config.params import BitDepthParams, FeatureParams
from fieldkit.dsp.stft import frame_count
from fieldkit.dsp.resample import StreamingResampler
from fieldkit.errors import ProcessingError
from fieldkit.io.audio.stream import read_blocks, sample_format
from fieldkit.pipeline.spec import ItemSpec, TaskResult, TaskSpec
from fieldkit.store.regions import open_sink, padding_arrays

__all__ = ["process_task", "item_clips", "warm_up"]


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
    done = 0
    blocks = read_blocks(item.path, item.frames_present, block_frames, subtype=item.subtype)
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


class _RegionWriter:
    """Turns a task's clips into rows of every stored variable; writes each shard when full.

    Features and QC are computed as clips arrive, in batches of about a feature group (so short
    clips are still vectorised) that never straddle a shard: a worker holds one shard of
    *stored values* (features, plus the clips only when the waveform is stored), not one shard
    of clips. A shard already complete in the store (resume) is counted, not computed. Padding
    clips up to the region's end carry the store's fill values.
    """

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.store = open_sink(spec.store)
        self.layout = self.store.layout
        self.names = {v.name for v in self.layout.variables()}
        self.params = FeatureParams.from_dict(spec.dsp.feature_params)
        self.batch = max(1, FEATURE_GROUP_FRAMES // max(1, frame_count(spec.dsp.clip_len, self.params)))
        self.cursor = spec.region_start  # first clip of the shard being filled
        self.waiting: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # clips, valid, clipped fraction
        self.n_waiting = 0
        self.rows: list[dict[str, np.ndarray]] = []  # computed rows of the current shard
        self.n_rows = 0
        self.skip_shard: bool | None = None  # whether the current shard is complete (asked once per shard)
        self.result = TaskResult(spec.region_start, spec.region_stop)

    def add(self, clips: np.ndarray, valid: np.ndarray, clipped: np.ndarray) -> None:
        if not len(clips):
            return
        if self.cursor + self.n_rows + self.n_waiting + len(clips) > self.spec.region_stop:
            raise ProcessingError(f"task for clips [{self.spec.region_start}, {self.spec.region_stop}) produced more "
                                  "clips than planned; the plan and the audio disagree.")
        self.waiting.append((clips, valid, clipped))
        self.n_waiting += len(clips)
        while self.n_waiting and self.n_waiting >= min(self.batch, self._left()):
            self._compute(min(self.n_waiting, self._left()))

    def _room(self) -> int:
        """Clips of the current shard inside the region."""
        offset = (self.cursor - self.spec.region_start) % self.spec.clips_per_shard
        return min(self.spec.clips_per_shard - offset, self.spec.region_stop - self.cursor)

    def _left(self) -> int:
        """Clips the current shard still needs."""
        return self._room() - self.n_rows

    def _take(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        joined = self.waiting[0] if len(self.waiting) == 1 else tuple(np.concatenate(a) for a in zip(*self.waiting))
        self.waiting = [tuple(a[n:] for a in joined)] if len(joined[0]) > n else []
        self.n_waiting -= n
        return joined[0][:n], joined[1][:n], joined[2][:n]

    def _compute(self, n: int) -> None:
        """Rows for the next ``n`` waiting clips (all in the current shard)."""
        clips, valid, clipped = self._take(n)
        self._append(None if self._skipping() else self._rows(clips, valid, clipped, self.cursor + self.n_rows), n)

    def _skipping(self) -> bool:
        if self.skip_shard is None:
            self.skip_shard = self.store.is_complete(slice(self.cursor, self.cursor + self._room()))
        return self.skip_shard

    def _append(self, rows: dict[str, np.ndarray] | None, n: int) -> None:
        if rows is not None:
            self.rows.append(rows)
        self.n_rows += n
        if self.n_rows == self._room():
            self._flush()

    def _flush(self) -> None:
        region = slice(self.cursor, self.cursor + self.n_rows)
        if self.skip_shard:
            self.result.clips_skipped += self.n_rows
        else:
            arrays = {name: joined([r[name] for r in self.rows]) for name in self.rows[0]}
            self.store.write(region, arrays)
            self.result.clips_computed += self.n_rows
        self.cursor = region.stop
        self.rows, self.n_rows, self.skip_shard = [], 0, None

    def _rows(self, clips: np.ndarray, valid: np.ndarray, clipped: np.ndarray, start: int) -> dict[str, np.ndarray]:
        dsp = self.spec.dsp
        out: dict[str, np.ndarray] = {"valid_samples": valid.astype(np.int32)}
        if dsp.waveform and dsp.waveform_dtype == "float32":
            out["waveform"] = clips
        elif dsp.waveform:  # dither keyed by the clip's index: the same bytes whichever task or batch computes it
            bits = BitDepthParams(policy="int16", dither=dsp.dither, seed=dsp.seed)
            out["waveform"] = np.stack([to_int16(clip, bits, key=(start + i,)) for i, clip in enumerate(clips)])
        out.update(compute_features(clips, dsp.target_rate_hz, self.params))
        out.update(clip_qc(clips, valid))
        out["clipped_fraction"] = clipped.astype(np.float32)
        return {k: v for k, v in out.items() if k in self.names}

    def finish(self) -> None:
        """Compute what is waiting, then fill the region up to its end with padding clips."""
        while self.n_waiting:
            self._compute(min(self.n_waiting, self._left()))
        while self.cursor < self.spec.region_stop:
            n = self._left()
            self._append(None if self._skipping() else padding_arrays(self.layout, n), n)


def warm_up() -> None:
    """Run on each worker before the first task: unpickling it imports this module (and only
    what it needs: not the driver, xarray or the catalogue)."""


def process_task(spec: TaskSpec) -> TaskResult:
    """Process one task's items and write its region; idempotent and resumable shard by shard."""
    started = time.perf_counter()
    writer = _RegionWriter(spec)
    for item in spec.items:
        try:
            _process_item(item, writer)
        except Exception as exc:  # noqa: BLE001 - the driver must learn which recording and step
            raise ProcessingError(f"processing recording {item.recording_id} ({item.path}) failed: "
                                  f"{type(exc).__name__}: {exc}",
                                  hint="Fix or quarantine the file, then run again with --resume.") from exc
    writer.finish()
    writer.result.seconds = time.perf_counter() - started
    return writer.result


def _process_item(item: ItemSpec, writer: _RegionWriter) -> None:
    dsp = writer.spec.dsp
    ratio = item.sample_rate_hz / dsp.target_rate_hz
    channels = item.channels if item.channel < 0 else 1
    for clips, valid, clipped in item_clips(item, dsp.target_rate_hz, dsp.quality, dsp.clip_len, dsp.hop,
                                            dsp.block_frames):
        original = np.maximum(np.round(valid * ratio) * channels, 1)
        writer.add(clips, valid, np.minimum(clipped / original, 1.0))
    writer.result.items.append({"recording_id": item.recording_id, "channel": item.channel,
                                "clip_start": item.clip_start, "clips": item.n_clips})
    writer.result.audio_seconds += item.frames_present / item.sample_rate_hz
