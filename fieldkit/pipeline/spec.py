"""Plain, picklable descriptions of the work, sent to Dask workers (no sessions, no ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fieldkit.config.params import BitDepthParams, FeatureParams, ResampleParams

__all__ = ["ItemSpec", "TaskSpec", "TaskResult", "DspSpec"]


@dataclass(frozen=True)
class ItemSpec:
    """One recording (one channel of it, or its mix) to cut into ``n_clips`` clips."""

    recording_id: int
    path: str  # absolute path of the archived file
    subtype: str | None
    sample_rate_hz: int
    channels: int
    frames_present: int
    channel: int  # -1: mix of all channels; otherwise the channel index
    n_clips: int
    clip_start: int  # first clip index in the store


@dataclass(frozen=True)
class DspSpec:
    """How every task processes its clips: the workflow's step parameters, and the cutting.

    The parameter models are the workflow's own sections (frozen and picklable), except that
    ``resample.target_rate_hz`` is always set: a workflow's null (keep the native rate) is
    resolved by the planner to the recordings' one rate.
    """

    resample: ResampleParams
    bit_depth: BitDepthParams
    features: FeatureParams
    clip_len: int  # samples at the target rate
    hop: int
    waveform: bool
    block_frames: int = 262144

    @property
    def target_rate_hz(self) -> int:
        """Sample rate of the clips, the features' input and the stored waveform, Hz."""
        return int(self.resample.target_rate_hz)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TaskSpec:
    store: str
    region_start: int
    region_stop: int
    clips_per_shard: int
    items: tuple[ItemSpec, ...]
    dsp: DspSpec


@dataclass
class TaskResult:
    region_start: int
    region_stop: int
    clips_computed: int = 0
    clips_skipped: int = 0  # already complete in the store (resume)
    nonfinite_clips: int = 0  # computed clips with NaN/Inf stored values (nonfinite_count > 0)
    nonfinite_values: int = 0  # their NaN/Inf values in all
    seconds: float = 0.0
    audio_seconds: float = 0.0
    items: list[dict[str, Any]] = field(default_factory=list)
