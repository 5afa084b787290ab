"""Song Meter ``*_Summary.txt`` files (B4): parsed by header, restarts from repeated headers.

The layout, as Wildlife Acoustics documents it (Song Meter SM5 user guide, "Summary File
Format", https://answers.wildlifeacoustics.com/r/en-US/Song-Meter-SM5-User-Guide/Summary-File-Format;
Mini 2 / Micro 2 guides), summarised in docs/reliability.md (B4):

- named ``<prefix>_Summary.txt`` (Mini 2, Micro 2) or ``<prefix>_Summary_<slot>.txt`` (SM5);
- comma-separated with a header row such as ``DATE,TIME,LAT,NS,LON,EW,POWER(V),TEMP(C),#ACFILES``;
  the columns differ between models, so every column is found by its header name;
- ``DATE`` is ``2026-Jan-20`` (English month abbreviation); ``TIME`` is ``HH:MM:SS``;
- latitude and longitude are positive numbers with separate ``N``/``S`` and ``E``/``W`` columns;
- one line per minute while active;
- **the header row is written again each time the recorder restarts** (after a power loss, a
  battery change): every header after the first is a ``restart`` event.

Nothing here raises on odd input: a cell that cannot be read is a warning naming its line, and
the text of unknown columns is kept.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["SongMeterSummary", "parse_songmeter_summary"]

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_MAX_WARNINGS = 50


@dataclass(frozen=True)
class SongMeterSummary:
    """What a Summary.txt says about a deployment.

    Attributes
    ----------
    columns : tuple of str
        The header of the first block, as written.
    rows : int
        Data rows read.
    first_time, last_time : datetime or None
        Recorder-local times (the file states no zone) of the first and last row with a time.
    restarts : tuple of dict
        One per repeated header: ``{"line": n, "time": first time after it (ISO) or None}``.
    latitude_deg, longitude_deg : float or None
        The first fix, signed (S and W negative).
    battery_v : dict
        ``{"first", "last", "min", "max"}`` of ``POWER(V)`` (empty when absent).
    temperature_c : dict
        ``{"min", "max"}`` of ``TEMP(C)`` (empty when absent).
    warnings : tuple of str
    """

    columns: tuple[str, ...] = ()
    rows: int = 0
    first_time: datetime | None = None
    last_time: datetime | None = None
    restarts: tuple[dict[str, Any], ...] = ()
    latitude_deg: float | None = None
    longitude_deg: float | None = None
    battery_v: dict[str, float] | None = None
    temperature_c: dict[str, float] | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO text)."""
        return {"columns": list(self.columns), "rows": self.rows,
                "first_time": self.first_time.isoformat() if self.first_time else None,
                "last_time": self.last_time.isoformat() if self.last_time else None,
                "restarts": [dict(r) for r in self.restarts],
                "latitude_deg": self.latitude_deg, "longitude_deg": self.longitude_deg,
                "battery_v": dict(self.battery_v or {}),
                "temperature_c": dict(self.temperature_c or {}), "warnings": list(self.warnings)}


def _is_header(cells: list[str]) -> bool:
    names = [c.strip().upper() for c in cells]
    return bool(names) and names[0] == "DATE" and "TIME" in names


def _date(text: str) -> tuple[int, int, int] | None:
    parts = text.strip().split("-")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
        return None
    month = _MONTHS.get(parts[1].lower()[:3]) if not parts[1].isdigit() else int(parts[1])
    return None if month is None else (int(parts[0]), month, int(parts[2]))


def _time(date_text: str, clock: str) -> datetime | None:
    day = _date(date_text)
    pieces = clock.strip().split(":")
    if day is None or len(pieces) != 3 or not all(p.isdigit() for p in pieces):
        return None
    try:
        return datetime(*day, *(int(p) for p in pieces))
    except ValueError:
        return None


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _signed(value: float | None, hemisphere: str, negative: str, limit: float) -> float | None:
    if value is None or not 0 <= value <= limit:
        return None
    return -value if hemisphere.strip().upper() == negative else value


@dataclass
class _Acc:
    """Accumulator while reading (never escapes this module)."""

    rows: int = 0
    first: datetime | None = None
    last: datetime | None = None
    lat: float | None = None
    lon: float | None = None
    power: list[float] | None = None
    temps: list[float] | None = None


def parse_songmeter_summary(text: str | bytes) -> SongMeterSummary:
    """Parse a Song Meter ``*_Summary.txt``; never raises.

    Parameters
    ----------
    text : str or bytes
        The file's content (bytes are decoded as UTF-8, else Latin-1).

    Returns
    -------
    SongMeterSummary
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = text.decode("latin-1")
    warnings: list[str] = []
    restarts: list[dict[str, Any]] = []
    header: list[str] | None = None
    first_header: tuple[str, ...] = ()
    acc, pending_restart = _Acc(power=[], temps=[]), None
    # one line at a time, split at LF, CRLF or CR: csv.reader over the whole text raises
    # csv.Error on a lone CR (found by benchmarks/fuzz.py), and a quote never spans lines here
    lines = text.replace("\0", "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines, 1):
        cells = next(csv.reader([line]), [])
        if not any(c.strip() for c in cells):
            continue
        if _is_header(cells):
            if header is None:
                first_header = tuple(c.strip() for c in cells)
            else:
                pending_restart = {"line": number, "time": None}
                restarts.append(pending_restart)
            header = [c.strip().upper() for c in cells]
            continue
        if header is None:
            _warn(warnings, f"line {number}: data before any DATE,TIME header (kept out)")
            continue
        row = dict(zip(header, cells))
        acc.rows += 1
        when = _time(row.get("DATE", ""), row.get("TIME", ""))
        if when is None:
            _warn(warnings, f"line {number}: date/time {row.get('DATE', '')!r} "
                            f"{row.get('TIME', '')!r} not read")
        else:
            acc.first = acc.first or when
            acc.last = when
            if pending_restart is not None and pending_restart["time"] is None:
                pending_restart["time"] = when.isoformat()
        _position(row, acc, number, warnings)
        _reading(row, "POWER(V)", acc.power, number, warnings)
        _reading(row, "TEMP(C)", acc.temps, number, warnings)
    if header is None and text.strip():
        _warn(warnings, "no DATE,TIME header found: not a Song Meter summary?")
    power, temps = acc.power or [], acc.temps or []
    return SongMeterSummary(
        columns=first_header, rows=acc.rows, first_time=acc.first, last_time=acc.last,
        restarts=tuple(restarts), latitude_deg=acc.lat, longitude_deg=acc.lon,
        battery_v={"first": power[0], "last": power[-1], "min": min(power), "max": max(power)}
        if power else {},
        temperature_c={"min": min(temps), "max": max(temps)} if temps else {},
        warnings=tuple(warnings))


def _warn(warnings: list[str], message: str) -> None:
    if len(warnings) < _MAX_WARNINGS:
        warnings.append(message)
    elif len(warnings) == _MAX_WARNINGS:
        warnings.append("further warnings left out")


def _position(row: dict[str, str], acc: _Acc, number: int, warnings: list[str]) -> None:
    if acc.lat is not None or not row.get("LAT", "").strip():
        return
    lat = _signed(_number(row.get("LAT", "")), row.get("NS", "N"), "S", 90.0)
    lon = _signed(_number(row.get("LON", "")), row.get("EW", "E"), "W", 180.0)
    if lat is None or lon is None:
        _warn(warnings, f"line {number}: position {row.get('LAT')!r} {row.get('NS')!r} "
                        f"{row.get('LON')!r} {row.get('EW')!r} not read")
        return
    acc.lat, acc.lon = lat, lon


def _reading(row: dict[str, str], column: str, values: list[float] | None, number: int,
             warnings: list[str]) -> None:
    cell = row.get(column, "").strip()
    if not cell or values is None:
        return
    value = _number(cell)
    if value is None:
        _warn(warnings, f"line {number}: {column} {cell!r} is not a number")
    else:
        values.append(value)
