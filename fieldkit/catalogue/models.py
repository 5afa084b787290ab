"""The catalogue tables (docs/architecture.md) as a typed SQLAlchemy 2 ORM.

The schema is created and changed only by the Alembic migrations in ``migrations/``; a test
checks that these models and the migrations never drift apart. Tables hold facts; queries live
in :mod:`fieldkit.catalogue.queries`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldkit.catalogue.base import Base, JSONType, UTCDateTime, created_at, intpk

__all__ = [
    "Site", "Device", "Deployment", "Card", "IngestSession", "SourceFile", "Recording",
    "ProcessingRun", "Derivative", "RunExclusion", "Annotation", "Dataset", "DatasetItem", "Export", "Manifest",
    "RECORDING_STATUSES", "SESSION_STATES", "SOURCE_FILE_STATES",
]

RECORDING_STATUSES = ("ok", "truncated", "quarantined", "sidecar")
SESSION_STATES = ("started", "copying", "complete", "incomplete", "failed")
SOURCE_FILE_STATES = ("pending", "verified", "duplicate", "ignored", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Site(Base):
    __tablename__ = "site"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    created_at: Mapped[created_at]

    deployments: Mapped[list[Deployment]] = relationship(back_populates="site")


class Device(Base):
    __tablename__ = "device"
    __table_args__ = (sa.UniqueConstraint("make", "model", "serial"),)

    id: Mapped[intpk]
    make: Mapped[str] = mapped_column(sa.String(100), default="")
    model: Mapped[str] = mapped_column(sa.String(100), default="")
    serial: Mapped[str] = mapped_column(sa.String(100), default="")
    firmware: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[created_at]


class Deployment(Base):
    __tablename__ = "deployment"
    __table_args__ = (sa.UniqueConstraint("site_id", "name"),)

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="RESTRICT"), index=True)
    device_id: Mapped[int | None] = mapped_column(sa.ForeignKey("device.id", ondelete="SET NULL"))
    start_utc: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    end_utc: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    notes: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[created_at]

    site: Mapped[Site] = relationship(back_populates="deployments")


class Card(Base):
    __tablename__ = "card"

    id: Mapped[intpk]
    identity: Mapped[str] = mapped_column(sa.String(128), unique=True)
    label: Mapped[str | None] = mapped_column(sa.String(200))
    filesystem: Mapped[str | None] = mapped_column(sa.String(64))
    capacity_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    recorder_hint: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[created_at]


class IngestSession(Base):
    __tablename__ = "ingest_session"
    __table_args__ = (sa.CheckConstraint(_in("state", SESSION_STATES), name="state"),)

    id: Mapped[intpk]
    card_id: Mapped[int] = mapped_column(sa.ForeignKey("card.id", ondelete="RESTRICT"), index=True)
    deployment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("deployment.id", ondelete="RESTRICT"), index=True
    )
    resumed_from_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("ingest_session.id", ondelete="SET NULL")
    )
    state: Mapped[str] = mapped_column(sa.String(16), default="started", index=True)
    source_root: Mapped[str] = mapped_column(sa.Text)
    inventory_fingerprint: Mapped[str] = mapped_column(sa.String(64), index=True)
    files_total: Mapped[int] = mapped_column(default=0)
    bytes_total: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    safe_to_erase: Mapped[bool] = mapped_column(default=False)
    host: Mapped[str | None] = mapped_column(sa.String(255))
    username: Mapped[str | None] = mapped_column(sa.String(255))
    fieldkit_version: Mapped[str | None] = mapped_column(sa.String(32))
    message: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[created_at]
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    card: Mapped[Card] = relationship()
    deployment: Mapped[Deployment] = relationship()
    source_files: Mapped[list[SourceFile]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True
    )


class SourceFile(Base):
    """One sighting of a file on a card: the same recording on two cards keeps both origins."""

    __tablename__ = "source_file"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "raw_path"),
        sa.CheckConstraint(_in("state", SOURCE_FILE_STATES), name="state"),
    )

    id: Mapped[intpk]
    session_id: Mapped[int] = mapped_column(
        sa.ForeignKey("ingest_session.id", ondelete="CASCADE"), index=True
    )
    recording_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("recording.id", ondelete="RESTRICT"), index=True
    )
    raw_path: Mapped[bytes] = mapped_column(sa.LargeBinary)
    display_path: Mapped[str] = mapped_column(sa.Text)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    mtime: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(sa.String(64))
    sha256: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    message: Mapped[str | None] = mapped_column(sa.Text)

    session: Mapped[IngestSession] = relationship(back_populates="source_files")
    recording: Mapped[Recording | None] = relationship(back_populates="source_files")


class Recording(Base):
    """A unique file content in the archive (content hash is the natural key)."""

    __tablename__ = "recording"
    __table_args__ = (
        sa.CheckConstraint(_in("status", RECORDING_STATUSES), name="status"),
        sa.Index("ix_recording_deployment_start", "deployment_id", "start_time_utc"),
    )

    id: Mapped[intpk]
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    archive_path: Mapped[str] = mapped_column(sa.Text, unique=True)
    deployment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("deployment.id", ondelete="RESTRICT")
    )
    device_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("device.id", ondelete="SET NULL"), index=True
    )
    format: Mapped[str] = mapped_column(sa.String(16), default="unknown")
    declared_extension: Mapped[str | None] = mapped_column(sa.String(16))
    sample_rate_hz: Mapped[int | None]
    channels: Mapped[int | None]
    bit_depth: Mapped[int | None]
    subtype: Mapped[str | None] = mapped_column(sa.String(32))
    frames_declared: Mapped[int | None] = mapped_column(sa.BigInteger)
    frames_present: Mapped[int | None] = mapped_column(sa.BigInteger)
    duration_s: Mapped[float | None]
    start_time_utc: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    time_source: Mapped[str | None] = mapped_column(sa.String(32))
    time_discrepancy_s: Mapped[float | None]
    times: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(sa.String(16), default="ok", index=True)
    reason: Mapped[str | None] = mapped_column(sa.String(64))
    status_message: Mapped[str | None] = mapped_column(sa.Text)
    peak_dbfs: Mapped[float | None]
    clipped_samples: Mapped[int | None] = mapped_column(sa.BigInteger)
    dc_offset: Mapped[float | None]
    silent_fraction: Mapped[float | None]
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    created_at: Mapped[created_at]

    source_files: Mapped[list[SourceFile]] = relationship(back_populates="recording")
    deployment: Mapped[Deployment | None] = relationship()
    device: Mapped[Device | None] = relationship()


class Manifest(Base):
    """One ASC-MHL-style manifest generation written for an ingest or a verify."""

    __tablename__ = "manifest"
    __table_args__ = (sa.CheckConstraint("kind IN ('ingest', 'verify')", name="kind"),)

    id: Mapped[intpk]
    sequence: Mapped[int] = mapped_column(unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    session_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("ingest_session.id", ondelete="SET NULL"), index=True
    )
    path: Mapped[str] = mapped_column(sa.Text)
    files: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[created_at]


class ProcessingRun(Base):
    __tablename__ = "processing_run"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    workflow: Mapped[dict[str, Any]] = mapped_column(JSONType)
    params_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    versions: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # planned → running → complete | failed | interrupted (Ctrl-C; --resume finishes it); no CHECK
    # constraint, so a new state needs no migration.
    state: Mapped[str] = mapped_column(sa.String(16), default="planned", index=True)
    store_path: Mapped[str] = mapped_column(sa.Text)
    n_clips: Mapped[int] = mapped_column(default=0)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    message: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[created_at]
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Derivative(Base):
    """Recording × run → the clip range it occupies in the run's store."""

    __tablename__ = "derivative"
    __table_args__ = (sa.UniqueConstraint("run_id", "recording_id", "channel"),)

    id: Mapped[intpk]
    run_id: Mapped[int] = mapped_column(
        sa.ForeignKey("processing_run.id", ondelete="CASCADE"), index=True
    )
    recording_id: Mapped[int] = mapped_column(
        sa.ForeignKey("recording.id", ondelete="RESTRICT"), index=True
    )
    channel: Mapped[int] = mapped_column(default=0)
    clip_start: Mapped[int]
    clip_stop: Mapped[int]
    state: Mapped[str] = mapped_column(sa.String(16), default="planned")
    error: Mapped[str | None] = mapped_column(sa.Text)
    seconds: Mapped[float | None]


class RunExclusion(Base):
    """Recording × run → why the run's selection left the recording out (one reason code)."""

    __tablename__ = "run_exclusion"
    __table_args__ = (sa.UniqueConstraint("run_id", "recording_id"),)

    id: Mapped[intpk]
    run_id: Mapped[int] = mapped_column(
        sa.ForeignKey("processing_run.id", ondelete="CASCADE"), index=True
    )
    recording_id: Mapped[int] = mapped_column(
        sa.ForeignKey("recording.id", ondelete="RESTRICT"), index=True
    )
    reason: Mapped[str] = mapped_column(sa.String(32))
    message: Mapped[str] = mapped_column(sa.Text)


class Annotation(Base):
    __tablename__ = "annotation"
    __table_args__ = (sa.CheckConstraint("end_s >= begin_s", name="interval"),)

    id: Mapped[intpk]
    recording_id: Mapped[int] = mapped_column(
        sa.ForeignKey("recording.id", ondelete="CASCADE"), index=True
    )
    begin_s: Mapped[float]
    end_s: Mapped[float]
    low_hz: Mapped[float | None]
    high_hz: Mapped[float | None]
    label: Mapped[str] = mapped_column(sa.String(200), index=True)
    channel: Mapped[int | None]
    source_file: Mapped[str | None] = mapped_column(sa.Text)
    source_line: Mapped[int | None]
    annotator: Mapped[str | None] = mapped_column(sa.String(200))
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[created_at]


class Dataset(Base):
    __tablename__ = "dataset"
    __table_args__ = (sa.UniqueConstraint("name", "version"),)

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[int] = mapped_column(default=1)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("processing_run.id", ondelete="RESTRICT"))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    manifest_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[created_at]

    items: Mapped[list[DatasetItem]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", passive_deletes=True
    )


class DatasetItem(Base):
    __tablename__ = "dataset_item"
    __table_args__ = (sa.UniqueConstraint("dataset_id", "clip_index"),)

    id: Mapped[intpk]
    dataset_id: Mapped[int] = mapped_column(
        sa.ForeignKey("dataset.id", ondelete="CASCADE"), index=True
    )
    clip_index: Mapped[int]
    recording_id: Mapped[int] = mapped_column(sa.ForeignKey("recording.id", ondelete="RESTRICT"))
    labels: Mapped[list[str]] = mapped_column(JSONType)
    split: Mapped[str] = mapped_column(sa.String(16), index=True)

    dataset: Mapped[Dataset] = relationship(back_populates="items")


class Export(Base):
    __tablename__ = "export"

    id: Mapped[intpk]
    dataset_id: Mapped[int] = mapped_column(
        sa.ForeignKey("dataset.id", ondelete="RESTRICT"), index=True
    )
    format: Mapped[str] = mapped_column(sa.String(32))
    path: Mapped[str] = mapped_column(sa.Text)
    state: Mapped[str] = mapped_column(sa.String(16), default="complete")
    files: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[created_at]
