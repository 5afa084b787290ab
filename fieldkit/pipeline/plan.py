"""Planning a run before any task starts: which recordings, how many clips each, where in the
store every clip goes, the coordinates, and the task list (one writer per shard)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fieldkit.catalogue import queries
from fieldkit.catalogue.records import ProcessingCandidate
from fieldkit.config.params import ResampleParams
from fieldkit.config.workflow import Workflow
from fieldkit.dsp.clips import clip_count
from fieldkit.errors import ConfigError, ProcessingError
from fieldkit.model.times import parse_deployment_zone
from fieldkit.pipeline.spec import DspSpec, ItemSpec, TaskSpec
from fieldkit.store.allocation import plan_regions
from fieldkit.store.layout import StoreLayout

__all__ = ["RunPlan", "plan_run", "select_recordings"]


@dataclass(frozen=True)
class RunPlan:
    layout: StoreLayout
    coords: dict[str, np.ndarray]
    tasks: tuple[TaskSpec, ...]
    items: tuple[ItemSpec, ...]
    recordings: tuple[ProcessingCandidate, ...]
    skipped: tuple[dict[str, Any], ...]  # JSON-ready: the run report lists them
    dsp: DspSpec


def _in_window(rec: ProcessingCandidate, workflow: Workflow) -> bool:
    window = workflow.selection.time_of_day
    if window is None:
        return True
    start = rec.start_time_utc
    if start is None:
        return False
    if window.zone == "local":
        start = start.astimezone(parse_deployment_zone(rec.timezone))
    return window.contains(start.time())


def select_recordings(session, workflow: Workflow) -> tuple[list[ProcessingCandidate], list[dict[str, Any]]]:
    """(selected, skipped-with-reason) recordings for the workflow's selection."""
    sel = workflow.selection
    lo, hi = sel.utc_bounds()
    candidates = queries.processing_candidates(
        session, sites=sel.sites, deployments=sel.deployments, start=lo, end=hi, statuses=sel.statuses,
        min_duration_s=sel.min_duration_s, min_rate_hz=sel.min_sample_rate_hz, max_rate_hz=sel.max_sample_rate_hz)
    chosen = [r for r in candidates if _in_window(r, workflow)]
    excluded = queries.list_recordings(session, queries.RecordingFilter())
    skipped = [{"id": r.id, "archive_path": r.archive_path, "status": r.status, "reason": r.reason}
               for r in excluded if r.status == "quarantined"]
    return chosen, skipped


def _target_rate(workflow: Workflow, recordings: list[ProcessingCandidate]) -> int:
    if workflow.resample.target_rate_hz is not None:
        return workflow.resample.target_rate_hz
    rates = sorted({r.sample_rate_hz for r in recordings})
    if len(rates) > 1:
        raise ConfigError(f"resample.target_rate_hz is null (keep the native rate), but the selected recordings "
                          f"have several rates: {rates} Hz.",
                          hint="Set resample.target_rate_hz, or narrow the selection to one rate.")
    return rates[0]


def _dsp_spec(workflow: Workflow, rate: int) -> DspSpec:
    clip_len = round(workflow.clips.length_s * rate)
    hop = round((workflow.clips.hop_s or workflow.clips.length_s) * rate)
    resample = ResampleParams(target_rate_hz=rate, quality=workflow.resample.quality)
    return DspSpec(resample=resample, bit_depth=workflow.bit_depth, features=workflow.features, clip_len=clip_len,
                   hop=hop, waveform=workflow.store.waveform)


def _channels(rec: ProcessingCandidate, workflow: Workflow) -> list[int]:
    policy = workflow.channels.policy
    if policy == "keep":
        return list(range(rec.channels))
    if policy == "pick":
        pick = workflow.channels.pick
        if pick >= rec.channels:
            raise ConfigError(f"channels.pick = {pick}, but recording {rec.id} ({rec.archive_path}) has "
                              f"{rec.channels} channel(s).", hint="Pick an existing channel or use 'mix'.")
        return [pick]
    return [-1 if rec.channels > 1 else 0]


#: A worker holds one shard of stored values at a time (features and QC, plus the clips when
#: the waveform is stored); keep that bounded whatever the clip length and rate (a 0.5 s clip at
#: 384 kHz is 0.77 MB, 128 of them 98 MB), so worker memory stays flat.
SHARD_BUDGET_BYTES = 8 << 20


def shard_clips(workflow: Workflow, dsp: DspSpec) -> int:
    """The workflow's clips per shard, lowered (in whole chunks) to fit the memory budget."""
    chunk, wanted = workflow.store.clips_per_chunk, workflow.store.clips_per_shard
    clip_bytes = _layout(workflow, dsp, n_clips=1, shard=chunk).bytes_per_clip
    fitting = max(chunk, (SHARD_BUDGET_BYTES // max(clip_bytes, 1)) // chunk * chunk)
    return min(wanted, fitting)


def _layout(workflow: Workflow, dsp: DspSpec, n_clips: int, shard: int) -> StoreLayout:
    return StoreLayout.from_feature_params(
        n_clips, dsp.clip_len, dsp.target_rate_hz, dsp.features,
        waveform=workflow.store.waveform, waveform_dtype=dsp.bit_depth.policy, feature_dtype=workflow.store.dtype,
        clips_per_chunk=workflow.store.clips_per_chunk, clips_per_shard=shard,
        compression_level=workflow.store.compressor.level)


def _out_samples(rec: ProcessingCandidate, rate: int) -> int:
    return math.ceil(rec.frames_present * rate / rec.sample_rate_hz)


def plan_run(session, workflow: Workflow, archive: Path, store: str) -> RunPlan:
    """Everything a run needs, decided by the driver from the catalogue alone."""
    recordings, skipped = select_recordings(session, workflow)
    if not recordings:
        raise ProcessingError(f"workflow {workflow.name!r} selects no recording (statuses "
                              f"{list(workflow.selection.statuses)}, sites {list(workflow.selection.sites) or 'all'}).",
                              hint="Check 'fieldkit catalog recordings' and the workflow's selection section.")
    rate = _target_rate(workflow, recordings)
    dsp = _dsp_spec(workflow, rate)
    pairs = [(rec, ch) for rec in recordings for ch in _channels(rec, workflow)]
    counts = [clip_count(_out_samples(rec, rate), dsp.clip_len, dsp.hop, workflow.clips.min_valid_fraction)
              for rec, _ in pairs]
    shard = shard_clips(workflow, dsp)
    regions = plan_regions(counts, shard)
    items = tuple(ItemSpec(rec.id, str(archive / rec.archive_path), rec.subtype, rec.sample_rate_hz,
                           rec.channels, rec.frames_present, ch, n, span.start)
                  for (rec, ch), n, span in zip(pairs, counts, regions.item_clips))
    layout = _layout(workflow, dsp, max(regions.n_clips, 1), shard)
    tasks = tuple(TaskSpec(store, t.clips.start, t.clips.stop, shard,
                           tuple(items[i] for i in t.items if items[i].n_clips), dsp) for t in regions.tasks)
    coords = _coords(layout.n_clips, pairs, items, workflow)
    return RunPlan(layout, coords, tasks, items, tuple(recordings), tuple(skipped), dsp)


def _coords(n_clips: int, pairs: list, items: tuple[ItemSpec, ...], workflow: Workflow) -> dict[str, np.ndarray]:
    hop_s = workflow.clips.hop_s or workflow.clips.length_s
    coords = {"recording_id": np.full(n_clips, -1, np.int64),
              "start_time": np.full(n_clips, np.datetime64("NaT"), "datetime64[ns]"),
              "offset_s": np.full(n_clips, np.nan), "site": np.full(n_clips, "", object),
              "deployment": np.full(n_clips, "", object), "channel": np.full(n_clips, -1, np.int16)}
    for (rec, ch), item in zip(pairs, items):
        span = slice(item.clip_start, item.clip_start + item.n_clips)
        offsets = np.arange(item.n_clips) * hop_s
        coords["recording_id"][span] = rec.id
        coords["offset_s"][span] = offsets
        coords["site"][span] = rec.site
        coords["deployment"][span] = rec.deployment
        coords["channel"][span] = ch
        if rec.start_time_utc is not None:
            base = np.datetime64(rec.start_time_utc.astimezone(dt.timezone.utc).replace(tzinfo=None), "ns")
            coords["start_time"][span] = base + (offsets * 1e9).astype("timedelta64[ns]")
    coords["site"] = coords["site"].astype(str)
    coords["deployment"] = coords["deployment"].astype(str)
    return coords
