"""Typed, frozen records: what the catalogue's queries return to the services and the CLI.

Catalogue rows cross the layer boundary as these records, never as ORM objects (which would
tie a caller to an open session) nor as plain dictionaries (whose keys no type checker sees).
Each record's field order is the key order of its JSON document: :meth:`Record.to_dict`
returns exactly the dictionary the CLI prints with ``--json``. Values keep the types the JSON
documents have always had: times of listed rows are ISO 8601 strings with a ``Z`` suffix; only
:class:`ProcessingCandidate`, which feeds computations, carries a ``datetime``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "AnnotationOut", "AnnotationSpan", "ArchivedRecording", "CardSessionRow", "CardSighting", "DatasetDetail", "DatasetItemRow",
    "DatasetRow", "DeploymentRow", "DerivativeRow", "LabelCount", "MatchableRecording", "ProcessingCandidate",
    "Record", "RecordingLineage", "RecordingRow", "RecordingSpecies", "RunDetail", "RunExclusionRow", "RunRow", "ScopedRecording", "SessionContext", "SessionFileRow",
    "SessionRow", "SiteRow",
    "DeploymentSpan", "ExportRow", "RecordingPage", "RecordingUse", "StatusCount",
]


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, tuple):  # records hold tuples; their documents have always held lists
        return [_plain(v) for v in value]
    return value


def iso_utc(value: dt.datetime | None) -> str | None:
    """ISO 8601 with a ``Z`` suffix (UTC), or None."""
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Record:
    """Base of every catalogue record: a frozen dataclass with a JSON-ready :meth:`to_dict`."""

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dictionary in field order (nested records and tuples as dicts and lists).

        Returns
        -------
        dict
            The document the CLI prints for this row with ``--json``.
        """
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


# -- sites, deployments, recordings, ingest sessions (queries) ------------------------------------

@dataclass(frozen=True)
class SiteRow(Record):
    id: int
    name: str
    description: str | None
    latitude: float | None
    longitude: float | None
    deployments: int


@dataclass(frozen=True)
class DeploymentRow(Record):
    id: int
    name: str
    site: str
    timezone: str
    start_utc: str | None
    end_utc: str | None
    recordings: int
    #: A10, computed at query time: consecutive recordings of one device that overlap
    #: (``{"first", "second", "seconds"}``) or leave an unusual gap (``{"after", "before",
    #: "seconds", "usual_interval_s"}``); durations come from the samples. None when the
    #: recordings could not be read (a damaged catalogue): unknown, not "none".
    overlaps: tuple[dict, ...] | None = ()
    gaps: tuple[dict, ...] | None = ()


@dataclass(frozen=True)
class RecordingRow(Record):
    """A recording with its deployment, site, device and every ``card:path`` it was seen at."""

    id: int
    sha256: str
    size_bytes: int
    archive_path: str
    source_paths: tuple[str, ...]
    status: str
    reason: str | None
    status_message: str | None
    format: str
    declared_extension: str | None
    sample_rate_hz: int | None
    channels: int | None
    bit_depth: int | None
    subtype: str | None
    frames_declared: int | None
    frames_present: int | None
    duration_s: float | None
    start_time_utc: str | None
    time_source: str | None
    time_discrepancy_s: float | None
    site: str | None
    deployment: str | None
    device_make: str | None
    device_model: str | None
    device_serial: str | None
    peak_dbfs: float | None
    clipped_samples: int | None
    dc_offset: float | None
    silent_fraction: float | None
    times: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class SessionRow(Record):
    id: int
    card: str
    site: str
    deployment: str
    state: str
    source_root: str
    files_total: int
    bytes_total: int
    counts: dict[str, Any]
    safe_to_erase: bool
    resumed_from: int | None
    started_at: str | None
    finished_at: str | None
    message: str | None


@dataclass(frozen=True)
class SessionFileRow(Record):
    """One inventoried card file of an ingest session, its outcome and its recording's status."""

    raw_path: bytes
    path: str
    size_bytes: int
    state: str
    reason: str | None
    message: str | None
    sha256: str | None
    archive_path: str | None
    recording_id: int | None
    status: str | None  # only for a verified file: the status of the content it archived


@dataclass(frozen=True)
class SessionContext(Record):
    """Site, deployment and time zone of an ingest session."""

    deployment_id: int
    deployment: str
    timezone: str
    site: str


@dataclass(frozen=True)
class ProcessingCandidate(Record):
    """A recording a processing run may use, with what a task needs to read it."""

    id: int
    archive_path: str
    subtype: str | None
    sample_rate_hz: int
    channels: int
    frames_present: int
    duration_s: float | None
    start_time_utc: dt.datetime | None
    site: str
    deployment: str
    timezone: str
    size_bytes: int | None = None  # the archived object's bytes: read without asking its size first


@dataclass(frozen=True)
class ScopedRecording(Record):
    """A recording of a run's scope (its sites and deployments), selected or not: the facts the
    selection judges it by. Audio facts are None for a recording without decodable audio."""

    id: int
    archive_path: str
    status: str
    status_reason: str | None
    subtype: str | None
    sample_rate_hz: int | None
    channels: int
    frames_present: int | None
    duration_s: float | None
    start_time_utc: dt.datetime | None
    site: str
    deployment: str
    timezone: str
    size_bytes: int | None = None


# -- the ingest's own reads (writes) --------------------------------------------------------------

@dataclass(frozen=True)
class CardSessionRow(Record):
    """An ingest session of one card, as the ingest needs it to resume or skip."""

    id: int
    state: str
    fingerprint: str
    deployment_id: int
    files_total: int


@dataclass(frozen=True)
class ArchivedRecording(Record):
    """What ``fieldkit verify`` checks of a recording: its file and its hash."""

    id: int
    sha256: str
    archive_path: str
    size_bytes: int


# -- processing runs (runs) -----------------------------------------------------------------------

@dataclass(frozen=True)
class RunRow(Record):
    id: int
    name: str
    state: str
    params_hash: str
    store_path: str
    n_clips: int
    started_at: str | None
    finished_at: str | None
    timings: dict[str, Any]
    message: str | None


@dataclass(frozen=True)
class RunDetail(RunRow):
    """A run with the workflow parameters and library versions it ran with."""

    parameters: dict[str, Any]
    versions: dict[str, Any]


@dataclass(frozen=True)
class DerivativeRow(Record):
    recording_id: int
    channel: int
    clip_start: int
    clip_stop: int
    state: str
    error: str | None


@dataclass(frozen=True)
class RunExclusionRow(Record):
    """A recording a run's selection left out, with one reason code and a human message."""

    recording_id: int
    archive_path: str
    reason: str
    message: str


# -- annotations, datasets and lineage (labels) ---------------------------------------------------

@dataclass(frozen=True)
class MatchableRecording(Record):
    """A recording with the card paths it was seen under, for matching annotation files to it."""

    id: int
    sha256: str
    archive_path: str
    duration_s: float | None
    status: str
    source_paths: tuple[str, ...]


@dataclass(frozen=True)
class AnnotationSpan(Record):
    """A labelled time span of a recording (seconds from its start; band in Hz, if known)."""

    begin_s: float
    end_s: float
    label: str
    low_hz: float | None = None
    high_hz: float | None = None


@dataclass(frozen=True)
class LabelCount(Record):
    label: str
    annotations: int
    recordings: int


@dataclass(frozen=True)
class DatasetRow(Record):
    id: int
    name: str
    version: int
    run_id: int
    clips: int
    split_by: str | None
    manifest_hash: str
    created_at: str | None


@dataclass(frozen=True)
class DatasetItemRow(Record):
    clip_id: int
    recording_id: int
    labels: tuple[str, ...]
    split: str
    recording_sha256: str


@dataclass(frozen=True)
class DatasetDetail(Record):
    """A dataset version with its run's store, workflow and versions, and every item."""

    id: int
    name: str
    version: int
    run_id: int
    params: dict[str, Any]
    manifest_hash: str
    created_at: str | None
    store_path: str
    workflow: dict[str, Any]
    versions: dict[str, Any]
    params_hash: str
    items: tuple[DatasetItemRow, ...]


@dataclass(frozen=True)
class CardSighting(Record):
    """Where and when a recording's content was seen on a card."""

    card: str
    ingest_session: int
    card_path: str
    state: str
    card_root: str
    ingested_at: str | None


@dataclass(frozen=True)
class RecordingLineage(Record):
    """Recording → archive file → every card sighting."""

    recording_id: int
    sha256: str
    archive_path: str
    status: str
    start_time_utc: str | None
    time_source: str | None
    site: str | None
    deployment: str | None
    sources: tuple[CardSighting, ...]


@dataclass(frozen=True)
class AnnotationOut(Record):
    """An annotation with the recording it belongs to, as ``fieldkit annotations export`` writes it."""

    recording_id: int
    recording_sha256: str
    archive_path: str
    begin_s: float
    end_s: float
    label: str
    low_hz: float | None
    high_hz: float | None
    channel: int | None
    confidence: float | None
    source_file: str | None


@dataclass(frozen=True)
class RecordingSpecies(Record):
    """The GUANO species fields of an ingested recording (``Species Manual ID`` / ``Species Auto ID``)."""

    recording_id: int
    archive_path: str
    duration_s: float | None
    status: str
    manual_id: str | None
    auto_id: str | None
# -- browsing the catalogue (browse) --------------------------------------------------------------

@dataclass(frozen=True)
class RecordingPage(Record):
    """One page of a filtered, sorted recordings table and how many rows match in all."""

    total: int
    page: int
    per_page: int
    rows: tuple[RecordingRow, ...]


@dataclass(frozen=True)
class StatusCount(Record):
    status: str
    recordings: int


@dataclass(frozen=True)
class DeploymentSpan(Record):
    """A dated recording of a deployment: where it sits on the coverage timeline."""

    site: str
    deployment: str
    recording_id: int
    status: str
    start_time_utc: dt.datetime
    duration_s: float


@dataclass(frozen=True)
class RecordingUse(Record):
    """A processing run or a dataset that used a recording."""

    kind: str  # "run" or "dataset"
    id: int
    name: str
    state: str  # the run's state, or the dataset's split of this recording
    clips: int


@dataclass(frozen=True)
class ExportRow(Record):
    id: int
    dataset: str
    version: int
    format: str
    path: str
    state: str
    created_at: str | None
