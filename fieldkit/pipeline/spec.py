"""Plain, picklable descriptions of the work, sent to Dask workers (no sessions, no ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from fieldkit.config.params import BitDepthParams, FeatureParams, ResampleParams

if TYPE_CHECKING:  # a Root pickles as its URL and unresolved options: no secret travels in a task
    from fieldkit.io.storage import Root

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
    #: The archive root when it is a URL (``path`` is then relative to it, read with ranged
    #: requests); None for a local archive, where ``path`` is absolute and read as a file.
    archive: Root | None = None
    #: The archived file's bytes (catalogue), so that a URL is read without asking its size first.
    size_bytes: int | None = None

    @property
    def where(self) -> str:
        """The file's full name, for messages: a path, or the URL of the archived object."""
        return self.path if self.archive is None else self.archive.uri(self.path)

    def source(self) -> str | IO[bytes]:
        """What the stream reader opens: the path, or a seekable ranged-read object (caller closes)."""
        return self.path if self.archive is None else self.archive.open_read(self.path, size=self.size_bytes)


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
    store: str  # the store's path, or its URL when store_root is set
    region_start: int
    region_stop: int
    clips_per_shard: int
    items: tuple[ItemSpec, ...]
    dsp: DspSpec
    #: The store's own root when it lives at a URL: the worker opens ``store_root.zarr_store("")``
    #: (credentials from its own environment); None for a local store, opened by path.
    store_root: Root | None = None

    def store_target(self) -> Any:
        """What :func:`fieldkit.store.regions.open_sink` opens: a path, or a zarr store of the URL."""
        return self.store if self.store_root is None else self.store_root.zarr_store("")


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
