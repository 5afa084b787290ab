"""Plain records for recorder metadata: time candidates and the merged per-file metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = ["RecorderMetadata", "TimeCandidate"]


@dataclass(frozen=True)
class TimeCandidate:
    """One recording start time as a single source states it.

    Attributes
    ----------
    source : str
        ``guano``, ``audiomoth_comment``, ``filename``, ``bext``, ``wamd``, ``opso``...
    raw : str
        The text the time was read from, exactly.
    local_time : datetime or None
        Naive wall-clock time of the recorder (None when the text held no valid time).
    utc_offset : timedelta or None
        The offset the source itself states (None when it states none).
    note : str or None
        Anything worth knowing (e.g. "firmware 1.0: clock on UTC").
    """

    source: str
    raw: str
    local_time: datetime | None
    utc_offset: timedelta | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (ISO time, offset in seconds)."""
        return {
            "source": self.source,
            "raw": self.raw,
            "local_time": self.local_time.isoformat() if self.local_time else None,
            "utc_offset_s": self.utc_offset.total_seconds() if self.utc_offset is not None else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class RecorderMetadata:
    """Everything read from a recording's metadata chunks and its file name.

    Attributes
    ----------
    make, model, serial, firmware, deployment_id : str or None
        Device identity; GUANO is preferred when present.
    time_candidates : tuple of TimeCandidate
        Every start time found, one per source.
    gain : str or None
    battery_v : float or None
        Battery voltage in volts (``battery_qualifier`` ``<``/``>`` when only a bound is known).
    battery_qualifier : str or None
    temperature_c : float or None
        Temperature in degrees Celsius.
    latitude_deg, longitude_deg : float or None
        WGS84 position in decimal degrees.
    elevation_m : float or None
    raw : dict
        JSON-serialisable: every parsed field plus raw comment / GUANO text / wamd fields.
    chunk_ids : tuple of str
        Every chunk id in file order.
    flags : tuple of str
        ``metadata_unparsed``, ``metadata_partial``, ``ixml_rejected``...
    warnings : tuple of str
    """

    make: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    deployment_id: str | None = None
    time_candidates: tuple[TimeCandidate, ...] = ()
    gain: str | None = None
    battery_v: float | None = None
    battery_qualifier: str | None = None
    temperature_c: float | None = None
    latitude_deg: float | None = None
    longitude_deg: float | None = None
    elevation_m: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    chunk_ids: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["time_candidates"] = [c.to_dict() for c in self.time_candidates]
        for key in ("chunk_ids", "flags", "warnings"):
            out[key] = list(out[key])
        return out
