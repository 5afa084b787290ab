"""What an archived file is: audio facts, recorder metadata and its start time, read from the
*archived copy* (never the card), so a parser bug can never affect the copy."""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fieldkit.errors import TimeReconciliationError
from fieldkit.io.audio.probe import probe
from fieldkit.io.recorders import read_recorder_metadata
from fieldkit.io.recorders.audiomoth import parse_config_txt
from fieldkit.io.recorders.songmeter import parse_songmeter_summary
from fieldkit.model.audio import AudioFacts
from fieldkit.model.metadata import RecorderMetadata
from fieldkit.model.times import reconcile_times

__all__ = ["describe_archived", "describe_many", "exit_with", "Description"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Description:
    """What an archived file is, as the catalogue's recording columns (besides hash, size and path).

    A sidecar text file leaves the audio facts None. Picklable: describe workers return these.
    """

    format: str
    status: str  # ok | truncated | quarantined | sidecar
    declared_extension: str | None = None
    sample_rate_hz: int | None = None
    channels: int | None = None
    bit_depth: int | None = None
    subtype: str | None = None
    frames_declared: int | None = None
    frames_present: int | None = None
    duration_s: float | None = None
    reason: str | None = None
    status_message: str | None = None
    peak_dbfs: float | None = None
    clipped_samples: int | None = None
    dc_offset: float | None = None
    silent_fraction: float | None = None
    start_time_utc: dt.datetime | None = None
    time_source: str | None = None
    time_discrepancy_s: float | None = None
    times: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        """The recording row's columns, keyed by column name (``metadata`` included)."""
        return asdict(self)


def describe_archived(path: Path, card_name: str, timezone: str) -> tuple[Description, RecorderMetadata]:
    """Recording fields (facts, QC, times, metadata) for an archived file.

    A file that defeats the probe is quarantined with reason ``unreadable`` and the error text:
    one bad file never stops the batch.
    """
    facts = _probe(path)
    sidecar = _sidecar(path, card_name, facts)
    if sidecar is not None:
        return sidecar, RecorderMetadata()
    meta = _metadata(path, card_name, facts)
    description = Description(**_facts_fields(facts), **_time_fields(meta, timezone, path),
                              metadata={**meta.to_dict(), "chunks": _chunks(facts)})
    return description, meta


def describe_many(jobs: list[tuple[int, str, str]], timezone: str) -> list[tuple[int, Description, RecorderMetadata]]:
    """``(index, description, metadata)`` of each ``(index, archived path, card name)``: one call per
    batch share in a describe worker process (one pickle and one wake-up per share, not per file)."""
    return [(i, *describe_archived(Path(path), name, timezone)) for i, path, name in jobs]


def exit_with(pid: int, interval_s: float = 0.5) -> None:
    """Describe-worker initializer: exit when process ``pid`` (the ingest) is gone.

    A ProcessPoolExecutor worker holds both ends of its own task pipe, so a SIGKILLed ingest
    never sends it EOF: without this watch it (and its forkserver) would wait forever, holding
    the dead ingest's stdout open.
    """
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if not _alive(pid):
                os._exit(0)

    threading.Thread(target=watch, name="fieldkit-exit-with-ingest", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie (killed, not yet reaped by its parent) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


SIDECAR_SUFFIXES = {".txt", ".csv", ".json", ".xml", ".log", ".config", ".ini"}
MAX_SIDECAR_BYTES = 4 << 20


def _sidecar(path: Path, card_name: str, facts: AudioFacts) -> Description | None:
    """Recorder text files (CONFIG.TXT, *_Summary.txt, GPS.TXT...): archived, status ``sidecar``."""
    if facts.reason != "not_audio" or Path(card_name).suffix.lower() not in SIDECAR_SUFFIXES:
        return None
    if facts.file_size_bytes > MAX_SIDECAR_BYTES:
        return None
    raw = path.read_bytes()
    if b"\0" in raw:
        return None
    kind = _sidecar_kind(card_name)
    meta: dict[str, Any] = {"sidecar": kind}
    if kind == "audiomoth_config":
        config = parse_config_txt(raw)
        meta["config"] = config.fields
        meta["warnings"] = list(config.warnings)
    elif kind == "songmeter_summary":  # B4: GPS, battery, temperature, restarts
        summary = parse_songmeter_summary(raw)
        meta["summary"] = summary.to_dict()
        meta["warnings"] = list(summary.warnings)
    return Description(format="text", declared_extension=Path(card_name).suffix.lstrip(".").lower(),
                       status="sidecar", status_message=f"{card_name}: recorder text file ({kind})", metadata=meta)


def _sidecar_kind(name: str) -> str:
    upper = name.upper()
    if upper == "CONFIG.TXT":
        return "audiomoth_config"
    if "_SUMMARY" in upper:
        return "songmeter_summary"
    if upper == "GPS.TXT":
        return "gps_log"
    return "text"


def _probe(path: Path) -> AudioFacts:
    try:
        return probe(path)
    except Exception as exc:  # noqa: BLE001 - the batch boundary: record the file, carry on
        log.warning("probe of %s failed: %s", path, exc)
        return AudioFacts(path=str(path), file_size_bytes=path.stat().st_size, detected_format="unknown",
                          declared_extension=path.suffix.lstrip(".").lower(), status="quarantined",
                          reason="unreadable", messages=(f"{path.name}: could not be read as audio ({exc}).",))


def _metadata(path: Path, card_name: str, facts: AudioFacts) -> RecorderMetadata:
    try:
        return read_recorder_metadata(path, card_name, facts.layout)
    except Exception as exc:  # noqa: BLE001 - metadata is best effort; the file is still archived
        log.warning("metadata of %s could not be parsed: %s", path, exc)
        return RecorderMetadata(flags=("metadata_unparsed",), warnings=(f"metadata parse failed: {exc}",))


def _facts_fields(facts: AudioFacts) -> dict[str, Any]:
    qc = facts.qc
    return {
        "format": facts.detected_format, "declared_extension": facts.declared_extension or None,
        "sample_rate_hz": facts.sample_rate_hz, "channels": facts.channels, "bit_depth": facts.bit_depth,
        "subtype": facts.subtype, "frames_declared": facts.frames_declared,
        "frames_present": facts.frames_present, "duration_s": facts.duration_s,
        "status": facts.status, "reason": facts.reason,
        "status_message": " ".join(facts.messages) or None,
        "peak_dbfs": qc.peak_dbfs if qc else None, "clipped_samples": qc.clipped_samples if qc else None,
        "dc_offset": qc.dc_offset if qc else None, "silent_fraction": qc.silent_fraction if qc else None,
    }


def _time_fields(meta: RecorderMetadata, timezone: str, path: Path) -> dict[str, Any]:
    try:
        res = reconcile_times(meta.time_candidates, timezone)
    except TimeReconciliationError as exc:
        return {"start_time_utc": None, "time_source": None, "time_discrepancy_s": None,
                "times": {"error": str(exc), "flags": ["time_unresolved"],
                          "candidates": [c.to_dict() for c in meta.time_candidates]}}
    return {"start_time_utc": res.start_time_utc, "time_source": res.time_source,
            "time_discrepancy_s": res.max_discrepancy_s, "times": res.to_dict()}


def _chunks(facts: AudioFacts) -> list[dict[str, Any]]:
    if facts.layout is None:
        return []
    return [{"id": c.chunk_id, "offset": c.offset, "size": c.size_declared} for c in facts.layout.chunks]
