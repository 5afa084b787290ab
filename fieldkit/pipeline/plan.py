"""Planning a run before any task starts: which recordings, how many clips each, where in the
store every clip goes, the coordinates, and the task list (one writer per shard)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fieldkit.catalogue import queries
from fieldkit.catalogue.records import ProcessingCandidate, RunExclusionRow, ScopedRecording
from fieldkit.config.params import ResampleParams
from fieldkit.config.workflow import Selection, TimeOfDay, Workflow
from fieldkit.dsp.clips import clip_count
from fieldkit.errors import ConfigError, ProcessingError
from fieldkit.io.storage import Root
from fieldkit.model.times import parse_deployment_zone
from fieldkit.pipeline.spec import DspSpec, ItemSpec, TaskSpec
from fieldkit.store.allocation import plan_regions
from fieldkit.store.layout import StoreLayout

__all__ = ["EXCLUSION_REASONS", "RunPlan", "exclusion_counts", "plan_run", "select_recordings", "selection_hash"]


#: Why a run's selection leaves a recording out: one code per excluded recording, checked in
#: this order (the first that applies is the one recorded). The scope of a run is the
#: recordings of its selected sites and deployments (all when none is named), sidecar text
#: files aside: a recording outside an explicitly named site or deployment was never asked for,
#: so it is not a drop and is not listed; every other recording is either processed or listed
#: here with its reason.
EXCLUSION_REASONS = {
    "status": "its status is not one the selection processes (quarantined, or truncated when excluded)",
    "no_audio": "no decodable audio frames",
    "sample_rate": "its sample rate is outside min_sample_rate_hz..max_sample_rate_hz",
    "too_short": "shorter than the selection's min_duration_s",
    "no_start_time": "no start time (none in its file name or header) while a date range or time of day is set",
    "outside_dates": "it starts outside the selection's start..end dates",
    "outside_time_of_day": "it starts outside the selection's time_of_day window",
    "shorter_than_clip": "too short to give one clip",
}


@dataclass(frozen=True)
class RunPlan:
    layout: StoreLayout
    coords: dict[str, np.ndarray]
    tasks: tuple[TaskSpec, ...]
    items: tuple[ItemSpec, ...]
    recordings: tuple[ProcessingCandidate, ...]
    skipped: tuple[dict[str, Any], ...]  # JSON-ready: the run report lists them
    dsp: DspSpec
    excluded: tuple[RunExclusionRow, ...] = ()

    @property
    def estimated_bytes(self) -> int:
        """The store's uncompressed size (padding clips included), an upper bound of what is written."""
        return self.layout.n_clips * self.layout.bytes_per_clip


def selection_hash(plan: RunPlan) -> str:
    """A SHA-256 of what a plan puts where: every (recording id, archive path, channel, first
    clip, clip count) and the store's clip count. Two plans with the same hash (and the same
    parameters hash) make the same store, so a run of one serves the other.

    Parameters
    ----------
    plan
        The planned run.

    Returns
    -------
    str
        64 hex digits.
    """
    paths = {r.id: r.archive_path for r in plan.recordings}
    items = [[i.recording_id, paths.get(i.recording_id, ""), i.channel, i.clip_start, i.n_clips] for i in plan.items]
    doc = json.dumps({"n_clips": plan.layout.n_clips, "items": items}, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


def exclusion_counts(excluded: Iterable[RunExclusionRow]) -> dict[str, int]:
    """How many recordings were left out for each reason, in :data:`EXCLUSION_REASONS` order."""
    counts = Counter(e.reason for e in excluded)
    return {reason: counts[reason] for reason in EXCLUSION_REASONS if counts[reason]}


def _local_start(rec: ScopedRecording, window: TimeOfDay) -> dt.datetime:
    start = rec.start_time_utc
    return start.astimezone(parse_deployment_zone(rec.timezone)) if window.zone == "local" else start


def _out_of_dates(rec: ScopedRecording, sel: Selection) -> str | None:
    lo, hi = sel.utc_bounds()
    start = rec.start_time_utc
    if (lo is None or start >= lo) and (hi is None or start < hi):
        return None
    return f"starts {start:%Y-%m-%d %H:%M} UTC, outside {_instant(lo)} .. {_instant(hi)}"


def _instant(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else "…"


def _exclusion(rec: ScopedRecording, sel: Selection) -> tuple[str, str] | None:
    """``(reason, message)`` when the selection leaves ``rec`` out, else None."""
    window, rate = sel.time_of_day, rec.sample_rate_hz
    if rec.status not in sel.statuses:
        detail = f" ({rec.status_reason})" if rec.status_reason else ""
        return "status", f"status {rec.status}{detail}; the selection processes {', '.join(sel.statuses)}"
    if not rec.frames_present or rate is None or rec.duration_s is None:
        return "no_audio", EXCLUSION_REASONS["no_audio"]
    if (sel.min_sample_rate_hz or 0) > rate or rate > (sel.max_sample_rate_hz or rate):
        return "sample_rate", (f"{rate} Hz, outside {sel.min_sample_rate_hz or '…'}.."
                               f"{sel.max_sample_rate_hz or '…'} Hz")
    if rec.duration_s < sel.min_duration_s:
        return "too_short", f"{rec.duration_s:g} s, shorter than min_duration_s {sel.min_duration_s:g} s"
    timed = window is not None or sel.start is not None or sel.end is not None
    if rec.start_time_utc is None:
        setting = "time_of_day" if window is not None else "start/end dates"
        message = f"no start time (none in its file name or header); the selection sets {setting}"
        return ("no_start_time", message) if timed else None
    if (outside := _out_of_dates(rec, sel)) is not None:
        return "outside_dates", outside
    if window is not None and not window.contains(_local_start(rec, window).time()):
        return "outside_time_of_day", (f"starts {_local_start(rec, window):%H:%M} {window.zone}, outside "
                                       f"{window.start:%H:%M}-{window.end:%H:%M}")
    return None


def _candidate(rec: ScopedRecording) -> ProcessingCandidate:
    return ProcessingCandidate(id=rec.id, archive_path=rec.archive_path, subtype=rec.subtype,
                               sample_rate_hz=rec.sample_rate_hz, channels=rec.channels,
                               frames_present=rec.frames_present, duration_s=rec.duration_s,
                               start_time_utc=rec.start_time_utc, site=rec.site, deployment=rec.deployment,
                               timezone=rec.timezone, size_bytes=rec.size_bytes)


def select_recordings(session, workflow: Workflow) -> tuple[list[ProcessingCandidate], list[RunExclusionRow]]:
    """The workflow's selected recordings, and every other recording of its scope with why.

    Parameters
    ----------
    session
        An open catalogue session.
    workflow
        The workflow whose ``selection`` decides.

    Returns
    -------
    (selected, excluded)
        Selected recordings in time order (undated last); excluded ones each with one reason
        code of :data:`EXCLUSION_REASONS` and a message naming the value that decided.
    """
    sel = workflow.selection
    chosen, excluded = [], []
    for rec in queries.recordings_in_scope(session, sites=sel.sites, deployments=sel.deployments):
        verdict = _exclusion(rec, sel)
        if verdict is None:
            chosen.append(_candidate(rec))
        else:
            excluded.append(RunExclusionRow(rec.id, rec.archive_path, *verdict))
    return chosen, excluded


def _quarantined(session) -> list[dict[str, Any]]:
    """Every quarantined recording of the catalogue, as the run report has always listed them."""
    rows = queries.list_recordings(session)
    return [{"id": r.id, "archive_path": r.archive_path, "status": r.status, "reason": r.reason}
            for r in rows if r.status == "quarantined"]


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


def plan_run(session, workflow: Workflow, archive: Path | Root, store: str) -> RunPlan:
    """Everything a run needs, decided by the driver from the catalogue alone.

    ``archive`` is the archive folder, or its :class:`~fieldkit.io.storage.Root`: a local root
    gives items absolute paths (read as files), a URL root gives items the root and the
    archive-relative path (read with ranged requests on the worker).
    """
    remote = isinstance(archive, Root) and not archive.is_local
    base = archive.local_path if isinstance(archive, Root) and not remote else archive
    recordings, excluded = select_recordings(session, workflow)
    if recordings:
        rate = _target_rate(workflow, recordings)
        dsp = _dsp_spec(workflow, rate)
        recordings, too_short = _giving_clips(recordings, workflow, dsp)
        excluded = sorted([*excluded, *too_short], key=lambda e: e.recording_id)
    if not recordings:
        left_out = ", ".join(f"{n} {reason}" for reason, n in exclusion_counts(excluded).items())
        raise ProcessingError(f"workflow {workflow.name!r} selects no recording (statuses "
                              f"{list(workflow.selection.statuses)}, sites {list(workflow.selection.sites) or 'all'}"
                              f"{'; left out: ' + left_out if left_out else ''}).",
                              hint="Check 'fieldkit catalog recordings' and the workflow's selection section.")
    pairs = [(rec, ch) for rec in recordings for ch in _channels(rec, workflow)]
    counts = [_clips_of(rec, workflow, dsp) for rec, _ in pairs]
    shard = shard_clips(workflow, dsp)
    regions = plan_regions(counts, shard)
    items = tuple(ItemSpec(rec.id, rec.archive_path if remote else str(base / rec.archive_path), rec.subtype,
                           rec.sample_rate_hz, rec.channels, rec.frames_present, ch, n, span.start,
                           archive if remote else None, rec.size_bytes)
                  for (rec, ch), n, span in zip(pairs, counts, regions.item_clips))
    layout = _layout(workflow, dsp, max(regions.n_clips, 1), shard)
    tasks = tuple(TaskSpec(store, t.clips.start, t.clips.stop, shard,
                           tuple(items[i] for i in t.items if items[i].n_clips), dsp) for t in regions.tasks)
    coords = _coords(layout.n_clips, pairs, items, workflow)
    return RunPlan(layout, coords, tasks, items, tuple(recordings), tuple(_quarantined(session)), dsp,
                   tuple(excluded))


def _clips_of(rec: ProcessingCandidate, workflow: Workflow, dsp: DspSpec) -> int:
    return clip_count(_out_samples(rec, dsp.target_rate_hz), dsp.clip_len, dsp.hop, workflow.clips.min_valid_fraction)


def _giving_clips(recordings: list[ProcessingCandidate], workflow: Workflow,
                  dsp: DspSpec) -> tuple[list[ProcessingCandidate], list[RunExclusionRow]]:
    """The recordings that give at least one clip, and the others as ``shorter_than_clip``."""
    kept, short = [], []
    for rec in recordings:
        if _clips_of(rec, workflow, dsp):
            kept.append(rec)
        else:
            short.append(RunExclusionRow(rec.id, rec.archive_path, "shorter_than_clip",
                                         f"{rec.duration_s:g} s gives no clip of {workflow.clips.length_s:g} s "
                                         f"(min_valid_fraction {workflow.clips.min_valid_fraction:g})"))
    return kept, short


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
