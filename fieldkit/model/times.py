"""Reconcile a recording's start time from every source that states one (pure, no I/O).

Recorders keep local wall-clock time at a *fixed* offset: AudioMoth and Song Meter never follow
daylight saving time. So the recommended deployment time zone is a fixed offset (``+10:00``,
``UTC+5:30``, ``-0300``). An IANA name (``Europe/Berlin``) is accepted only as the user's
statement that the clock followed that zone's DST; a local time that does not exist or happens
twice in that zone then raises :class:`~fieldkit.errors.TimeReconciliationError` instead of
being shifted silently (docs/reliability.md, B6).

Which offset a naive time gets, in order:

1. ``stated``: the source states its own offset (GUANO ``Timestamp`` with ``Z``/``±HH:MM``,
   ``(UTC+N)`` in an AudioMoth comment, an ISO file name ``20191125T000000+1000``).
2. ``file``: another source *in the same file* states one. AudioMoth writes the file name, the
   comment and GUANO from one clock at one configured offset, so a naive file name borrows the
   comment's offset; this is the file's own data, not a guess (docs/notes/recorder-formats.md).
3. ``deployment``: the deployment's time zone given by the user.
4. otherwise the time stays unresolved (flag ``no_offset``) - never assumed to be UTC.

Which resolved time is chosen (:data:`PRIORITY`, most trusted first), and why:

- ``guano``/stated: a structured field, ISO 8601 with an offset, written by the firmware from
  the clock at file creation; no wording to misparse.
- ``filename``/stated: ISO names with an offset are unambiguous (Frontier Labs).
- ``audiomoth_comment``/stated: reliable, but parsed from era-dependent wording.
- ``wamd``/stated and ``opso``/stated: Wildlife Acoustics metadata; OpenSoundscape's value is
  derived from the comment by a third party.
- ``filename``/file: the AudioMoth name with the offset the comment states. It ranks *above* a
  comment with a fractional offset (``UTC+5:30``): firmware 1.2.2 wrote header times up to
  ±3600 s wrong with fractional zones while the file name stayed right (OAD004).
- then naive sources with the file's or the deployment's offset: GUANO, file name, ``wamd``,
  and last ``bext`` (BWF origination time is when the file was created, which for field
  recorders is the take start, but it is only second-resolution local time).

Every candidate is kept with its UTC value; the spread between them is reported and flagged
(``time_discrepancy``) above ``discrepancy_threshold_s``; a chosen time before 2015 or in the
future is flagged ``time_suspect`` (a reset clock gives 1970).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fieldkit.errors import TimeReconciliationError
from fieldkit.model.metadata import TimeCandidate

__all__ = [
    "EARLIEST_PLAUSIBLE_UTC",
    "PRIORITY",
    "ResolvedTime",
    "TimeResolution",
    "localize",
    "parse_deployment_zone",
    "parse_utc_offset",
    "reconcile_times",
]

PRIORITY: tuple[tuple[str, str], ...] = (
    ("guano", "stated"),
    ("filename", "stated"),
    ("audiomoth_comment", "stated"),
    ("wamd", "stated"),
    ("opso", "stated"),
    ("filename", "file"),
    ("audiomoth_comment", "stated_fractional"),
    ("guano", "file"),
    ("guano", "deployment"),
    ("filename", "deployment"),
    ("wamd", "file"),
    ("wamd", "deployment"),
    ("audiomoth_comment", "file"),
    ("audiomoth_comment", "deployment"),
    ("bext", "stated"),
    ("bext", "file"),
    ("bext", "deployment"),
)
#: Sources whose stated offset a naive time from the same file may borrow.
OFFSET_DONORS = ("guano", "audiomoth_comment", "filename", "wamd", "opso")
EARLIEST_PLAUSIBLE_UTC = datetime(2015, 1, 1, tzinfo=UTC)
_MAX_OFFSET = timedelta(hours=14)
_OFFSET_RE = re.compile(
    r"^(?:UTC|GMT)?\s*(?:(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?)?$")


def parse_utc_offset(text: str) -> timedelta:
    """Parse a fixed UTC offset.

    Parameters
    ----------
    text : str
        ``Z``, ``UTC``, ``GMT``, ``UTC+5:30``, ``UTC-3``, ``+10:00``, ``+1000``, ``-03``.

    Returns
    -------
    timedelta
        East of UTC is positive; at most 14 h either way.

    Raises
    ------
    ValueError
        When the text is not a fixed offset.
    """
    stripped = text.strip()
    match = _OFFSET_RE.match(stripped) if stripped not in ("", "Z") else None
    if stripped == "Z":
        return timedelta(0)
    if match is None or (match.group("sign") is None and not stripped[:3].isalpha()):
        raise ValueError(f"not a fixed UTC offset: {text!r} (expected e.g. +10:00 or UTC+5:30)")
    if match.group("sign") is None:
        return timedelta(0)
    minutes = int(match.group("hours")) * 60 + int(match.group("minutes") or 0)
    offset = timedelta(minutes=minutes if match.group("sign") == "+" else -minutes)
    if abs(offset) > _MAX_OFFSET or int(match.group("minutes") or 0) >= 60:
        raise ValueError(f"UTC offset out of range: {text!r} (expected between -14:00 and +14:00)")
    return offset


def parse_deployment_zone(text: str) -> tzinfo:
    """Turn a deployment's time zone text into a ``tzinfo`` (fixed offset or IANA zone).

    Raises
    ------
    TimeReconciliationError
        When the text is neither a fixed offset nor a known IANA zone name.
    """
    try:
        return timezone(parse_utc_offset(text))
    except ValueError:
        pass  # not a fixed offset: try an IANA name below
    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeReconciliationError(
            f"unknown deployment time zone {text!r}: expected a fixed offset such as +10:00 or "
            "UTC+5:30, or an IANA name such as Europe/Berlin.",
            hint="Recorders ignore daylight saving time, so a fixed offset is recommended.",
        ) from None


def localize(local_time: datetime, zone: tzinfo, *, what: str = "time") -> datetime:
    """Attach ``zone`` to a naive local time and return it in UTC, refusing to guess.

    Raises
    ------
    TimeReconciliationError
        When ``local_time`` does not exist in ``zone`` (spring gap) or happens twice (autumn).
    """
    early = local_time.replace(tzinfo=zone, fold=0)
    late = local_time.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early.astimezone(UTC)
    back = early.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != local_time:
        raise TimeReconciliationError(
            f"{what} {local_time:%Y-%m-%d %H:%M:%S} does not exist in {zone}: the clocks jumped "
            f"from UTC{_fmt(early.utcoffset())} to UTC{_fmt(late.utcoffset())} that night.",
            hint=_DST_HINT,
        )
    raise TimeReconciliationError(
        f"{what} {local_time:%Y-%m-%d %H:%M:%S} is ambiguous in {zone}: it happened twice, at "
        f"UTC{_fmt(early.utcoffset())} ({early.astimezone(UTC):%H:%M}Z) and at "
        f"UTC{_fmt(late.utcoffset())} ({late.astimezone(UTC):%H:%M}Z).",
        hint=_DST_HINT,
    )


_DST_HINT = (
    "Recorders do not follow daylight saving time: set the deployment's time zone to the fixed "
    "offset the recorder was configured with (e.g. +01:00)."
)


def _fmt(offset: timedelta | None) -> str:
    """``+05:30`` style text for an offset."""
    minutes = int((offset or timedelta(0)).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass(frozen=True)
class ResolvedTime:
    """One candidate with the UTC value it resolves to.

    Attributes
    ----------
    candidate : TimeCandidate
    utc : datetime or None
        Aware UTC datetime; None when the candidate has no time or no offset is known.
    offset_used : timedelta or None
    offset_kind : str or None
        ``stated``, ``stated_fractional``, ``file`` or ``deployment``.
    suspect : bool
        Before 2015 or in the future.
    """

    candidate: TimeCandidate
    utc: datetime | None
    offset_used: timedelta | None = None
    offset_kind: str | None = None
    suspect: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = self.candidate.to_dict()
        out.update(utc=self.utc.isoformat() if self.utc else None,
                   offset_used_s=self.offset_used.total_seconds() if self.offset_used is not None
                   else None, offset_kind=self.offset_kind, suspect=self.suspect)
        return out


@dataclass(frozen=True)
class TimeResolution:
    """The chosen start time and everything that led to it.

    Attributes
    ----------
    start_time_utc : datetime or None
        Aware UTC datetime, or None when nothing could be resolved.
    time_source : str or None
        Source of the chosen time (``guano``, ``filename``...).
    offset_kind : str or None
        How the chosen time got its offset (``stated``, ``file``, ``deployment``).
    candidates : tuple of ResolvedTime
        Every candidate, in the order given.
    max_discrepancy_s : float or None
        Largest difference between resolved candidates, in seconds.
    flags : tuple of str
        ``time_discrepancy``, ``time_suspect``, ``no_time``, ``no_offset``,
        ``offset_disagrees_with_deployment``.
    messages : tuple of str
    """

    start_time_utc: datetime | None
    time_source: str | None
    offset_kind: str | None
    candidates: tuple[ResolvedTime, ...]
    max_discrepancy_s: float | None
    flags: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_time_utc": self.start_time_utc.isoformat() if self.start_time_utc else None,
            "time_source": self.time_source,
            "offset_kind": self.offset_kind,
            "candidates": [c.to_dict() for c in self.candidates],
            "max_discrepancy_s": self.max_discrepancy_s,
            "flags": list(self.flags),
            "messages": list(self.messages),
        }


def reconcile_times(
    candidates: list[TimeCandidate] | tuple[TimeCandidate, ...],
    deployment_tz: str | None,
    *,
    now: datetime | None = None,
    discrepancy_threshold_s: float = 2.0,
) -> TimeResolution:
    """Choose a recording's UTC start time from every candidate (see the module docstring).

    Parameters
    ----------
    candidates : sequence of TimeCandidate
    deployment_tz : str or None
        Fixed offset (recommended) or IANA zone name; None when unknown.
    now : datetime, optional
        Aware "current" time for the future check (default: the real time).
    discrepancy_threshold_s : float
        Spread between sources above which ``time_discrepancy`` is flagged, in seconds.

    Returns
    -------
    TimeResolution

    Raises
    ------
    TimeReconciliationError
        Unknown zone name, or a local time that is nonexistent/ambiguous in an IANA zone.
    """
    zone = parse_deployment_zone(deployment_tz) if deployment_tz else None
    file_offset = _file_offset(candidates)
    now = now or datetime.now(UTC)
    resolved = tuple(_resolve(c, file_offset, zone, now) for c in candidates)
    chosen = _choose(resolved)
    spread = _spread_s(resolved)
    flags, messages = _flags(resolved, chosen, spread, discrepancy_threshold_s)
    flags += _zone_disagreement(file_offset, zone, messages)
    return TimeResolution(
        start_time_utc=chosen.utc if chosen else None,
        time_source=chosen.candidate.source if chosen else None,
        offset_kind=chosen.offset_kind if chosen else None,
        candidates=resolved,
        max_discrepancy_s=spread,
        flags=tuple(dict.fromkeys(flags)),
        messages=tuple(messages),
    )


def _file_offset(candidates: tuple[TimeCandidate, ...] | list[TimeCandidate]) -> timedelta | None:
    """The offset the file itself states, from the most trusted donor source."""
    for source in OFFSET_DONORS:
        for candidate in candidates:
            if candidate.source == source and candidate.utc_offset is not None:
                return candidate.utc_offset
    return None


def _resolve(
    candidate: TimeCandidate, file_offset: timedelta | None, zone: tzinfo | None, now: datetime
) -> ResolvedTime:
    """Resolve one candidate to UTC (stated offset, then the file's, then the deployment's)."""
    local = candidate.local_time
    if local is None:
        return ResolvedTime(candidate, None)
    if candidate.utc_offset is not None:
        kind = "stated"
        if candidate.source == "audiomoth_comment" and candidate.utc_offset.seconds % 3600:
            kind = "stated_fractional"
        utc = (local - candidate.utc_offset).replace(tzinfo=UTC)
        return ResolvedTime(candidate, utc, candidate.utc_offset, kind, _suspect(utc, now))
    if file_offset is not None:
        utc = (local - file_offset).replace(tzinfo=UTC)
        return ResolvedTime(candidate, utc, file_offset, "file", _suspect(utc, now))
    if zone is not None:
        utc = localize(local, zone, what=f"{candidate.source} time {candidate.raw!r}:")
        return ResolvedTime(candidate, utc, utc.astimezone(zone).utcoffset(), "deployment",
                            _suspect(utc, now))
    return ResolvedTime(candidate, None)


def _suspect(utc: datetime, now: datetime) -> bool:
    return utc < EARLIEST_PLAUSIBLE_UTC or utc > now + timedelta(days=1)


def _rank(item: ResolvedTime) -> int:
    key = (item.candidate.source, item.offset_kind or "")
    return PRIORITY.index(key) if key in PRIORITY else len(PRIORITY)


def _choose(resolved: tuple[ResolvedTime, ...]) -> ResolvedTime | None:
    usable = [r for r in resolved if r.utc is not None]
    return min(usable, key=_rank) if usable else None


def _spread_s(resolved: tuple[ResolvedTime, ...]) -> float | None:
    values = [r.utc for r in resolved if r.utc is not None]
    if len(values) < 2:
        return None
    return (max(values) - min(values)).total_seconds()


def _flags(
    resolved: tuple[ResolvedTime, ...], chosen: ResolvedTime | None,
    spread: float | None, threshold_s: float,
) -> tuple[tuple[str, ...], list[str]]:
    """Flags and messages about the resolution as a whole."""
    flags: list[str] = []
    messages: list[str] = []
    if not any(r.candidate.local_time for r in resolved):
        flags.append("no_time")
        messages.append("no start time in the metadata or the file name.")
    elif chosen is None:
        flags.append("no_offset")
        messages.append("start time is local with no known offset: set the deployment's "
                        "time zone (a fixed offset such as +10:00).")
    if spread is not None and spread > threshold_s:
        flags.append("time_discrepancy")
        listing = ", ".join(f"{r.candidate.source}={r.utc:%Y-%m-%dT%H:%M:%S}Z"
                            for r in resolved if r.utc)
        messages.append(f"sources disagree by {spread:.0f} s ({listing}); "
                        f"{chosen.candidate.source if chosen else 'none'} was chosen.")
    if chosen is not None and chosen.suspect:
        flags.append("time_suspect")
        messages.append(f"start time {chosen.utc:%Y-%m-%d %H:%M:%S}Z is before 2015 or in the "
                        "future: the recorder's clock was probably reset.")
    return tuple(flags), messages


def _zone_disagreement(
    file_offset: timedelta | None, zone: tzinfo | None, messages: list[str]
) -> tuple[str, ...]:
    """Flag a fixed deployment offset that differs from the offset the file states."""
    if file_offset is None or not isinstance(zone, timezone):
        return ()
    zone_offset = zone.utcoffset(None)
    if zone_offset == file_offset:
        return ()
    messages.append(f"the file states UTC{_fmt(file_offset)} but the deployment says "
                    f"UTC{_fmt(zone_offset)}; the file's offset was used.")
    return ("offset_disagrees_with_deployment",)
