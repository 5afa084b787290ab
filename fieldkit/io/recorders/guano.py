"""A lenient, read-only GUANO parser (the ``guan`` RIFF chunk).

Handles what real files and field reports contain (docs/notes/recorder-formats.md;
docs/reliability.md, B3)::

    GUANO|Version:1.0                       AudioMoth 1.10+, no space after the colon
    GUANO|Version:  1.0                     Echo Meter Touch: two spaces
    Timestamp:  2022-08-15 21:34:14+0100    space instead of T, +HHMM offset
    Timestamp:2024-09-03T19:31:30+01:00     ±HH:MM offset;  ...Z for UTC;  naive local
    Timestamp:2020-10-17 13:05:00+1:00      one-digit hour (Song Meter Mini), also -5:00, +5:30
    Timestamp:2020-10-17T13:05:00+0530      also +05, -0330, UTC
    Serial:                                 empty values (guano-py#20: Loc Elevation:)
    WA|Song Meter|Audio settings: [...]     namespaces, nested '|'
    BATLOGGER|Trigger|Frequency: 75.4       vendor namespaces
    Note: line one\\nline two               literal backslash-n for a newline

and also ``GUANO|Version`` not first, duplicate keys (the first is used), Latin-1 bytes, lines
without ``:`` and trailing NUL/space padding. Every field is kept exactly as text in
``GuanoData.fields``; typed values are derived from it, and each problem becomes a warning.
An offset that is malformed or beyond ±14:00 is such a problem: the warning names it and the
time is kept as a naive local time (as if no offset were written), never read as UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fieldkit.model.times import parse_utc_offset

__all__ = ["GuanoData", "parse_guano", "parse_guano_timestamp", "read_guano_timestamp"]

# The zone is taken as whatever follows the clock and checked on its own by parse_utc_offset:
# firmware writes forms the ISO pattern does not allow (``+1:00``), and a bad zone must not cost
# the date and clock, which are still good local time.
_TIMESTAMP_RE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<clock>\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?"
    r"(?:\s*(?P<zone>\S.*))?$"
)
_FLOAT_FIELDS = {
    "Loc Elevation": "elevation_m", "Loc Accuracy": "loc_accuracy_m", "Length": "length_s",
    "Samplerate": "samplerate_hz", "TE": "time_expansion", "Temperature Int": "temperature_int_c",
    "Temperature Ext": "temperature_ext_c", "Humidity": "humidity_percent",
    "Filter HP": "filter_hp_khz", "Filter LP": "filter_lp_khz",
    "OAD|Battery Voltage": "battery_v",
}


@dataclass(frozen=True)
class GuanoData:
    """A parsed GUANO chunk.

    Attributes
    ----------
    text : str
        The decoded chunk text (padding removed), kept for the catalogue.
    fields : dict
        ``"Namespace|Key"`` (or ``"Key"``) -> value text exactly as found (stripped); the
        first occurrence of a duplicated key.
    duplicates : tuple of (str, str)
        Later occurrences of duplicated keys.
    unparsed_lines : tuple of str
        Lines without ``:``.
    typed : dict
        Derived values: ``timestamp`` (naive datetime), ``utc_offset`` (timedelta or None),
        ``latitude_deg``/``longitude_deg``, ``samplerate_hz``, ``length_s``, ``note``...
    warnings : tuple of str
    """

    text: str
    fields: dict[str, str]
    duplicates: tuple[tuple[str, str], ...] = ()
    unparsed_lines: tuple[str, ...] = ()
    typed: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def get(self, key: str) -> str | None:
        """The value text of ``key``, None when absent or empty."""
        value = self.fields.get(key)
        return value if value else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: the raw text, every field, and typed values as text/numbers."""
        typed = dict(self.typed)
        if typed.get("timestamp") is not None:
            typed["timestamp"] = typed["timestamp"].isoformat()
        if typed.get("utc_offset") is not None:
            typed["utc_offset"] = typed["utc_offset"].total_seconds()
        return {"text": self.text, "fields": dict(self.fields),
                "duplicates": [list(d) for d in self.duplicates],
                "unparsed_lines": list(self.unparsed_lines), "typed": typed,
                "warnings": list(self.warnings)}


def parse_guano_timestamp(text: str) -> tuple[datetime, timedelta | None]:
    """Parse a GUANO ``Timestamp`` value strictly.

    Parameters
    ----------
    text : str
        ``2015-12-31T23:59:59[.ffffff]`` followed by nothing (local), ``Z``, ``UTC``,
        ``±HH:MM``, ``±H:MM``, ``±HHMM`` or ``±HH`` (at most 14 h either way); a space may
        replace the ``T``.

    Returns
    -------
    (datetime, timedelta or None)
        The naive local time and the stated offset (None when not stated).

    Raises
    ------
    ValueError
        When the text is not such a timestamp, names an impossible date, or states an offset
        that is malformed or out of range.
    """
    local, offset, problem = read_guano_timestamp(text)
    if problem is not None:
        raise ValueError(problem)
    return local, offset


def read_guano_timestamp(text: str) -> tuple[datetime, timedelta | None, str | None]:
    """Parse a GUANO-style timestamp leniently: a bad offset is reported, not fatal.

    Parameters
    ----------
    text : str
        As for :func:`parse_guano_timestamp`.

    Returns
    -------
    (datetime, timedelta or None, str or None)
        The naive local time, the stated offset, and a problem naming the offset text when one
        was written but is malformed or beyond ±14:00. The offset is then None: the time is
        treated as carrying no offset (resolved from the file or the deployment, or left
        unresolved), never as UTC.

    Raises
    ------
    ValueError
        When the date and clock are not an ISO 8601 timestamp or name an impossible date.
    """
    match = _TIMESTAMP_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    local = datetime.fromisoformat(f"{match['date']}T{match['clock']}")
    if match["frac"]:
        local = local.replace(microsecond=int(match["frac"][1:7].ljust(6, "0")))
    zone = match["zone"]
    if zone is None:
        return local, None, None
    try:
        return local, parse_utc_offset(zone), None
    except ValueError:
        return local, None, (f"UTC offset {zone!r} of {text.strip()!r} is malformed or beyond "
                             "±14:00: the time is kept as local time without an offset")


def parse_guano(raw: bytes | str) -> GuanoData:
    """Parse a GUANO chunk body leniently; never raises.

    Parameters
    ----------
    raw : bytes or str
        The ``guan`` chunk body (UTF-8; Latin-1 is accepted with a warning).

    Returns
    -------
    GuanoData
    """
    text, warnings = _decode(raw)
    fields: dict[str, str] = {}
    duplicates: list[tuple[str, str]] = []
    unparsed: list[str] = []
    for line in text.split("\n"):
        _take_line(line.rstrip("\r"), fields, duplicates, unparsed, warnings)
    if fields and next(iter(fields)) != "GUANO|Version":
        warnings.append("GUANO|Version is not the first field (the spec requires it first)")
    typed = _typed_fields(fields, warnings)
    return GuanoData(text, fields, tuple(duplicates), tuple(unparsed), typed, tuple(warnings))


def _decode(raw: bytes | str) -> tuple[str, list[str]]:
    """Decode and strip the padding (NUL or whitespace) GUANO writers add."""
    if isinstance(raw, str):
        return raw.strip("\x00 \t\r\n"), []
    body = raw.rstrip(b"\x00 \t\r\n")
    try:
        return body.decode("utf-8"), []
    except UnicodeDecodeError:
        return body.decode("latin-1"), ["GUANO text is not UTF-8; decoded as Latin-1"]


def _take_line(
    line: str, fields: dict[str, str], duplicates: list[tuple[str, str]],
    unparsed: list[str], warnings: list[str],
) -> None:
    """Add one ``Key: value`` line; record duplicates and lines without a colon."""
    if not line.strip():
        return
    key, sep, value = line.partition(":")
    key, value = key.strip(), value.strip()
    if not sep or not key:
        unparsed.append(line)
        warnings.append(f"GUANO line without 'Key:' kept verbatim: {line!r}")
    elif key in fields:
        duplicates.append((key, value))
        warnings.append(f"duplicate GUANO key {key!r}: the first value is used")
    else:
        fields[key] = value


def _typed_fields(fields: dict[str, str], warnings: list[str]) -> dict[str, Any]:
    """Derive typed values; an empty or malformed value is a warning, never an error."""
    typed: dict[str, Any] = {}
    for key, name in _FLOAT_FIELDS.items():
        if key in fields:
            typed[name] = _float(key, fields[key], warnings)
    typed.update(_timestamp(fields.get("Timestamp"), warnings))
    typed.update(_position(fields.get("Loc Position"), warnings))
    if "Note" in fields:
        typed["note"] = fields["Note"].replace("\\n", "\n")
    return typed


def _float(key: str, value: str, warnings: list[str]) -> float | None:
    if not value:
        warnings.append(f"GUANO {key!r} is empty")
        return None
    try:
        return float(value)
    except ValueError:
        warnings.append(f"GUANO {key!r} is not a number: {value!r}")
        return None


def _timestamp(value: str | None, warnings: list[str]) -> dict[str, Any]:
    if value is None:
        warnings.append("GUANO has no Timestamp (a required field)")
        return {}
    try:
        local, offset, problem = read_guano_timestamp(value)
    except ValueError as exc:
        warnings.append(f"GUANO Timestamp not understood: {exc}")
        return {}
    if problem is not None:
        warnings.append(f"GUANO Timestamp: {problem}")
    return {"timestamp": local, "utc_offset": offset}


def _position(value: str | None, warnings: list[str]) -> dict[str, Any]:
    """``Loc Position`` is ``"lat lon"`` in WGS84 decimal degrees."""
    if not value:
        return {}
    parts = value.replace(",", " ").split()
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError:
        warnings.append(f"GUANO Loc Position not understood: {value!r}")
        return {}
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        warnings.append(f"GUANO Loc Position out of range: {value!r}")
        return {}
    return {"latitude_deg": lat, "longitude_deg": lon}
