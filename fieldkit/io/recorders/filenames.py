"""Recording start times from file names - exact patterns only, never fuzzy parsing.

Patterns, tried in this order (stems, extension removed)::

    20191125T000000+1000_REC          ISO basic with offset (Frontier Labs): unambiguous
    20240903_193130  20240903_193130T AudioMoth 1.2+ (T = amplitude-triggered)
    24E144055E080032_20240903_193130  AudioMoth 1.11 device/deployment-ID prefix
    5A3B2C1D                          AudioMoth 1.0 hex Unix time (UTC) - only when the caller
                                      says the file is AudioMoth-identified
    S4A03895_20190522_000000          Song Meter SM4/Mini: PREFIX_YYYYMMDD_HHMMSS
    SM3_0_20150405$063000             SM3: PREFIX_<mic>_YYYYMMDD$HHMMSS when geolocated
    0166_20240531_223911              BATLOGGER: SERIAL_YYYYMMDD_HHMMSS
    20170701_213954-MYOMYS-LR_0_0.5   date_time then a non-digit separator and free text

``REC_0001``, ``MSD-0003_20180427_2minstart00`` and anything else yield no time. A matching
pattern with an impossible date (month 13) yields no time either. An ISO name whose offset is
beyond ±14:00 (``+2500``) keeps its local time without an offset, with a warning naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePath, PureWindowsPath

from fieldkit.model.times import parse_utc_offset

__all__ = ["FilenameTime", "parse_filename_time"]


@dataclass(frozen=True)
class FilenameTime:
    """A start time read from a file name.

    Attributes
    ----------
    pattern : str
        ``iso_offset``, ``audiomoth``, ``audiomoth_hex``, ``song_meter``.
    raw : str
        The stem the time was read from.
    local_time : datetime
        Naive local time (UTC for ``audiomoth_hex``).
    utc_offset : timedelta or None
        Stated by the name (ISO names; ``0`` for hex names), else None.
    prefix : str or None
        Device ID, serial or recorder-name prefix.
    triggered : bool
        AudioMoth ``T`` suffix (amplitude/frequency-triggered recording).
    warnings : tuple of str
        Problems met while reading the name (an impossible offset).
    """

    pattern: str
    raw: str
    local_time: datetime
    utc_offset: timedelta | None = None
    prefix: str | None = None
    triggered: bool = False
    warnings: tuple[str, ...] = ()


_ISO = re.compile(
    r"^(?:(?P<prefix>.+?)_)?(?P<date>\d{8})T(?P<clock>\d{6})"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})(?:[_-].*)?$")
_AUDIOMOTH = re.compile(
    r"^(?:(?P<prefix>[0-9A-F]{16})_)?(?P<date>\d{8})_(?P<clock>\d{6})(?P<trig>T)?$")
_HEX = re.compile(r"^[0-9A-F]{8}$")
_SONG_METER = re.compile(
    r"^(?:(?P<prefix>.+?)_)?(?:(?P<mic>\d)_)??(?P<date>\d{8})[_$](?P<clock>\d{6})"
    r"(?:[-_ .].*)?$")


def parse_filename_time(name: str, *, audiomoth: bool = False) -> FilenameTime | None:
    """Read a recording start time from a file name.

    Parameters
    ----------
    name : str
        File name or path (directories and the last extension are ignored).
    audiomoth : bool
        True when other metadata identifies the file as AudioMoth; only then are 8-character
        hex stems read as Unix time.

    Returns
    -------
    FilenameTime or None
        None when no exact pattern matches or the date is impossible.
    """
    stem = PurePath(PureWindowsPath(name).name).stem
    for pattern, parser in _PARSERS:
        match = pattern.match(stem)
        if match:
            return parser(stem, match)
    if audiomoth and _HEX.match(stem):
        return _from_hex(stem)
    return None


def _local(date: str, clock: str) -> datetime | None:
    try:
        return datetime.strptime(date + clock, "%Y%m%d%H%M%S")
    except ValueError:
        return None


def _from_iso(stem: str, match: re.Match[str]) -> FilenameTime | None:
    local = _local(match["date"], match["clock"])
    if local is None:
        return None
    zone = match["zone"]
    try:
        offset = parse_utc_offset(zone)
    except ValueError:
        # A wrong offset must not shift the time: keep the local time, as a name without one.
        problem = (f"UTC offset {zone!r} in the file name {stem!r} is malformed or beyond ±14:00: the "
                   "time is kept as local time without an offset")
        return FilenameTime("iso_offset", stem, local, None, match["prefix"], warnings=(problem,))
    return FilenameTime("iso_offset", stem, local, offset, match["prefix"])


def _from_audiomoth(stem: str, match: re.Match[str]) -> FilenameTime | None:
    local = _local(match["date"], match["clock"])
    if local is None:
        return None
    return FilenameTime("audiomoth", stem, local, None, match["prefix"], bool(match["trig"]))


def _from_song_meter(stem: str, match: re.Match[str]) -> FilenameTime | None:
    local = _local(match["date"], match["clock"])
    if local is None:
        return None
    return FilenameTime("song_meter", stem, local, None, match["prefix"])


def _from_hex(stem: str) -> FilenameTime:
    utc = datetime.fromtimestamp(int(stem, 16), tz=UTC).replace(tzinfo=None)
    return FilenameTime("audiomoth_hex", stem, utc, timedelta(0))


_PARSERS = ((_ISO, _from_iso), (_AUDIOMOTH, _from_audiomoth), (_SONG_METER, _from_song_meter))
