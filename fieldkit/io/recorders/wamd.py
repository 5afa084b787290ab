"""Wildlife Acoustics ``wamd`` metadata chunk (Song Meter SM2-SM4, Echo Meter Touch).

Binary layout (``QutEcoacoustics/emu wa_meta.h``): a run of sub-chunks, each
``uint16 id, uint32 length, bytes``, little-endian. Text values are NUL-padded. Handled ids::

    0 version (uint16)   1 model   2 serial   3 firmware   4 prefix
    5 timestamp   " 2022-08-15 21:34:14+0100"   or "2014-04-02 22:59:14" (no offset)
                  or "2020-10-17 13:05:00+1:00"  (offsets read as GUANO's, guano.py)
    6 gpsfirst    "WGS84,50.7179417,N,1.7611083,W,51.2"  (SM3/SM4: unsigned + hemisphere)
                  "WGS84,50.7179417,1.76111,51.20000076293945"  (EMTouch: signed)
    7 gpstrack  8 software  9 license  10 notes  11 auto_id  12 manual_id
    13 voice note (embedded WAV)  14 auto_id_stats  15 time_expansion (uint16)
    16 program  17 runstate (binary)  18 microphone  19 sensitivity
    0xFFFF padding (skipped)

Binary and unknown ids are kept as hex so nothing is lost.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fieldkit.io.recorders.guano import read_guano_timestamp

__all__ = ["WAMD_NAMES", "WamdData", "parse_wamd", "parse_wamd_gps"]

WAMD_NAMES = {
    0: "version", 1: "model", 2: "serial", 3: "firmware", 4: "prefix", 5: "timestamp",
    6: "gpsfirst", 7: "gpstrack", 8: "software", 9: "license", 10: "notes", 11: "auto_id",
    12: "manual_id", 13: "voicenote", 14: "auto_id_stats", 15: "time_expansion",
    16: "program", 17: "runstate", 18: "microphone", 19: "sensitivity",
}
_BINARY_IDS = {13, 16, 17}
_UINT16_IDS = {0, 15}
_PADDING_ID = 0xFFFF


@dataclass(frozen=True)
class WamdData:
    """A decoded ``wamd`` chunk.

    Attributes
    ----------
    fields : dict
        Name -> text (or hex for binary and unknown ids, named ``id_<n>``).
    timestamp : datetime or None
        Naive local time from id 5.
    utc_offset : timedelta or None
        Offset stated in id 5, if any.
    latitude_deg, longitude_deg, altitude_m : float or None
        From id 6 (either GPS format).
    warnings : tuple of str
    """

    fields: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = None
    utc_offset: timedelta | None = None
    latitude_deg: float | None = None
    longitude_deg: float | None = None
    altitude_m: float | None = None
    warnings: tuple[str, ...] = ()


def parse_wamd(body: bytes) -> WamdData:
    """Decode a ``wamd`` chunk body; never raises.

    Parameters
    ----------
    body : bytes

    Returns
    -------
    WamdData
    """
    fields, warnings = _subchunks(body)
    time_fields = _timestamp(fields.get("timestamp"), warnings)
    gps = parse_wamd_gps(fields["gpsfirst"]) if "gpsfirst" in fields else None
    if "gpsfirst" in fields and gps is None:
        warnings.append(f"wamd GPS not understood: {fields['gpsfirst']!r}")
    lat, lon, alt = gps or (None, None, None)
    return WamdData(fields, *time_fields, lat, lon, alt, tuple(warnings))


def _subchunks(body: bytes) -> tuple[dict[str, Any], list[str]]:
    """Walk ``uint16 id, uint32 length, bytes`` records."""
    fields: dict[str, Any] = {}
    warnings: list[str] = []
    pos = 0
    while pos + 6 <= len(body):
        ident, length = struct.unpack("<HI", body[pos:pos + 6])
        value = body[pos + 6:pos + 6 + length]
        if len(value) < length:
            warnings.append(f"wamd id {ident} declares {length} bytes, {len(value)} present")
        if ident != _PADDING_ID:
            fields[WAMD_NAMES.get(ident, f"id_{ident}")] = _value(ident, value)
        pos += 6 + length
    return fields, warnings


def _value(ident: int, value: bytes) -> Any:
    if ident in _UINT16_IDS and len(value) == 2:
        return struct.unpack("<H", value)[0]
    if ident in _BINARY_IDS or ident not in WAMD_NAMES:
        return value.hex()
    text = value.split(b"\x00", 1)[0]
    try:
        return text.decode("utf-8").strip()
    except UnicodeDecodeError:
        return text.decode("latin-1").strip()


def _timestamp(value: Any, warnings: list[str]) -> tuple[datetime | None, timedelta | None]:
    if not value:
        return None, None
    try:
        local, offset, problem = read_guano_timestamp(str(value))
    except ValueError:
        warnings.append(f"wamd timestamp not understood: {value!r}")
        return None, None
    if problem is not None:
        warnings.append(f"wamd timestamp: {problem}")
    return local, offset


def parse_wamd_gps(text: str) -> tuple[float, float, float | None] | None:
    """Parse a wamd GPS string in either format.

    Parameters
    ----------
    text : str
        ``WGS84,lat,N|S,lon,E|W[,alt]`` or ``WGS84,lat,lon[,alt]`` (signed degrees).

    Returns
    -------
    (latitude_deg, longitude_deg, altitude_m or None) or None when not understood.
    """
    parts = [p.strip() for p in text.split(",")]
    if parts and parts[0].upper().startswith("WGS"):
        parts = parts[1:]
    try:
        if len(parts) >= 4 and parts[1].upper() in ("N", "S") and parts[3].upper() in ("E", "W"):
            lat = float(parts[0]) * (-1 if parts[1].upper() == "S" else 1)
            lon = float(parts[2]) * (-1 if parts[3].upper() == "W" else 1)
            alt = float(parts[4]) if len(parts) > 4 and parts[4] else None
        else:
            lat, lon = float(parts[0]), float(parts[1])
            alt = float(parts[2]) if len(parts) > 2 and parts[2] else None
    except (ValueError, IndexError):
        return None
    return lat, lon, alt
