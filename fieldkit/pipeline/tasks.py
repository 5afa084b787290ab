"""The Dask task: read → count clipping on the original samples → resample → cut clips →
features → write one shard-aligned region of the store.

Memory stays flat whatever the file length: audio streams through in blocks, clips are held
for at most one shard, and features are computed shard by shard just before that shard is
written. On a resumed run a shard that is already complete in the store is skipped (its
features are not computed again); the audio is still streamed through, because resampling and
clip cutting are sequential.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from fieldkit.dsp.bitdepth import to_float32, to_int16
from fieldkit.dsp.clipping import clip_thresholds
from fieldkit.dsp.clips import ClipCutter, ClippedCounter, clip_qc
from fieldkit.dsp.features import compute_features
from fieldkit.dsp.params import BitDepthParams, FeatureParams
from fieldkit.dsp.resample import StreamingResampler
from fieldkit.errors import ProcessingError
from fieldkit.io.audio_stream import read_blocks, sample_format
from fieldkit.pipeline.spec import ItemSpec, TaskResult, TaskSpec
from fieldkit.store.regions import RegionStore, padding_arrays

__all__ = ["process_task", "item_clips"]


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
    """Collects a task's clips and writes each shard of its region as soon as it is full."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.store = RegionStore(spec.store)
        self.layout = self.store.layout
        self.names = {v.name for v in self.layout.variables()}
        self.params = FeatureParams.from_dict(spec.dsp.feature_params)
        self.cursor = spec.region_start
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # clips, valid, clipped fraction
        self.n_pending = 0
        self.pad_from = spec.region_stop  # clips from here on are padding (set by finish)
        self.result = TaskResult(spec.region_start, spec.region_stop)

    def add(self, clips: np.ndarray, valid: np.ndarray, clipped: np.ndarray) -> None:
        if len(clips):
            self.parts.append((clips, valid, clipped))
            self.n_pending += len(clips)
        while self.n_pending and self.n_pending >= self._room() > 0:
            self._flush(self._room())

    def _room(self) -> int:
        """Clips until the end of the current shard (or of the region)."""
        offset = (self.cursor - self.spec.region_start) % self.spec.clips_per_shard
        return min(self.spec.clips_per_shard - offset, self.spec.region_stop - self.cursor)

    def _take(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        clips, valid, clipped = self.parts[0] if len(self.parts) == 1 else (np.concatenate(a) for a in zip(*self.parts))
        rest = len(clips) - n
        self.parts = [(clips[n:], valid[n:], clipped[n:])] if rest else []
        self.n_pending = rest
        return clips[:n], valid[:n], clipped[:n]

    def _flush(self, n: int) -> None:
        clips, valid, clipped = self._take(n)
        region = slice(self.cursor, self.cursor + n)
        if self.store.is_complete(region):
            self.result.clips_skipped += n
        else:
            self.store.write(region, self._arrays(clips, valid, clipped, region.start))
            self.result.clips_computed += n
        self.cursor += n

    def _arrays(self, clips: np.ndarray, valid: np.ndarray, clipped: np.ndarray, start: int) -> dict:
        dsp = self.spec.dsp
        out: dict[str, np.ndarray] = {"valid_samples": valid.astype(np.int32)}
        if dsp.waveform:
            out["waveform"] = clips if dsp.waveform_dtype == "float32" else to_int16(
                clips, BitDepthParams(policy="int16", dither=dsp.dither, seed=dsp.seed), key=(start,))
        out.update(compute_features(clips, dsp.target_rate_hz, self.params))
        out.update(clip_qc(clips, valid))
        out["clipped_fraction"] = clipped.astype(np.float32)
        pad = np.arange(start, start + len(clips)) >= self.pad_from
        if pad.any():  # padding clips carry the store's fill values, not features of silence
            for name, values in padding_arrays(self.layout, int(pad.sum())).items():
                if name in out:
                    out[name] = np.array(out[name], copy=True)
                    out[name][pad] = values
        return {k: v for k, v in out.items() if k in self.names}

    def finish(self) -> None:
        """Write what is left: real clips, then the plan's padding clips up to the region's end."""
        missing = self.spec.region_stop - self.cursor - self.n_pending
        if missing < 0:
            raise ProcessingError(f"task for clips [{self.spec.region_start}, {self.spec.region_stop}) produced "
                                  f"{-missing} more clips than planned; the plan and the audio disagree.")
        self.pad_from = self.cursor + self.n_pending
        self.add(np.zeros((missing, self.spec.dsp.clip_len), np.float32), np.zeros(missing, np.int32),
                 np.zeros(missing, np.float32))
        if self.n_pending:
            self._flush(self.n_pending)


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
