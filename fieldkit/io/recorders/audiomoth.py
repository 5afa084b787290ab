"""AudioMoth (Open Acoustic Devices) comment, OpenSoundscape wrapper and ``CONFIG.TXT`` parsers.

The ICMT comment has changed wording across firmware eras; these literal strings are handled
(each one has a test in ``tests/io/test_audiomoth.py``)::

    1.0 (2017)     Recorded at 12:00:00 01/06/2017 by AudioMoth 0FE081F80FE081F0 at gain
                   setting 2 while battery state was 4.3V            (also "< 3.6V", "> 5.0V")
    1.0.1-1.1.0    Recorded at 09:32:00 04/05/2018 (UTC) by AudioMoth 0FE081F80FE081F0 at gain
                   setting 2 while battery state was 4.3V
    1.2.0 (2018)   ... (UTC+10) ... / (UTC-5) ...
    1.2.1          ... Recording cancelled before completion due to low battery voltage.
    1.2.2 (2019)   ... (UTC+5:30) ...
    1.4.0 (2020)   Recorded at 23:32:00 01/05/2021 (UTC) by AudioMoth 240435055C7B17DB at medium
                   gain setting while battery state was 4.1V and temperature was 5.8C.
                   (battery "less than 2.5V" / "greater than 4.9V"; filter and
                   "Amplitude threshold was ..." sentences)
    1.5.0          ... (UTC) during deployment 0123456789ABCDEF using external microphone at ...
    1.6.0 (2021)   Recorded at 19:31:30 03/09/2024 (UTC+1) by AudioMoth 24E144055E080032 at
                   medium gain while battery was 4.3V and temperature was 18.7C. High-pass
                   filter with frequency of 15.0kHz applied. Amplitude threshold was 4% with 5s
                   minimum trigger duration.
    1.7.0 (2022)   ... Recording stopped due to low voltage.    (switch position change,
                   magnetic switch, microphone change, file size limit, SD card write error)
    1.8.0          ... Frequency trigger (48.0kHz and window length of 16 samples) threshold
                   was 10% with 1s minimum trigger duration.

OpenSoundscape re-saves files with ``opso_metadata{"comment": "Recorded at ...", ...}`` in
ICMT; :func:`parse_opso_metadata` unwraps it. Anything unrecognised is kept verbatim and
flagged (``metadata_unparsed`` when even the "Recorded at" clause is missing,
``metadata_partial`` for unknown trailing sentences); nothing here raises on odd input.

``CONFIG.TXT`` (written when the switch goes to CUSTOM) is ``Key : value`` text with the colons
aligned, CRLF or LF line endings, for example::

    Device ID                       : 243B1F075C7B13FB
    Time zone                       : UTC+2
    Recording period 1              : 00:00 - 24:00 (UTC)
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from fieldkit.model.times import parse_utc_offset

__all__ = [
    "AudioMothComment",
    "AudioMothConfig",
    "looks_like_audiomoth_comment",
    "parse_audiomoth_comment",
    "parse_config_txt",
    "parse_opso_metadata",
]

_HEAD = re.compile(
    r"""^Recorded\ at\ (?P<clock>\d{1,2}:\d{2}:\d{2})\ (?P<date>\d{1,2}/\d{1,2}/\d{4})
    (?:\ \(UTC(?P<tz>[+-]\d{1,2}(?::\d{2})?)?\))?
    (?:\ by\ AudioMoth\ (?P<serial>[0-9A-Fa-f]{16})
      |\ during\ deployment\ (?P<deployment>[0-9A-Za-z_-]+))?
    (?P<external>\ using\ external\ microphone)?
    (?:\ at\ (?:gain\ setting\ (?P<gain_n>\d)
      |(?P<gain>low-medium|medium-high|low|medium|high)\ gain(?P<setting_word>\ setting)?))?
    (?:\ while\ battery(?P<state_word>\ state)?\ was\ (?P<qual>less\ than\ |greater\ than\ |<\ ?|>\ ?)?
       (?P<volts>\d+(?:\.\d+)?)V)?
    (?:\ and\ temperature\ was\ (?P<temp>-?\d+(?:\.\d+)?)C)?
    \.?""",
    re.VERBOSE,
)
_QUALIFIERS = {"less than": "<", "greater than": ">", "<": "<", ">": ">"}
_OPSO_PREFIX = "opso_metadata"


@dataclass(frozen=True)
class AudioMothComment:
    """Fields parsed from one AudioMoth ICMT comment.

    Attributes
    ----------
    raw : str
        The comment exactly as found (NUL padding removed).
    parsed : bool
        False when the "Recorded at" clause is not recognised (``metadata_unparsed``).
    time : datetime or None
        Naive local recording start (the recorder's clock, at ``utc_offset``).
    utc_offset : timedelta or None
        Offset stated by "(UTC±H[:MM])"; firmware 1.0 states none and ran on UTC, so
        ``timedelta(0)`` with ``zone_stated=False``.
    zone_stated : bool
    serial, deployment_id : str or None
        "by AudioMoth <serial>" or "during deployment <id>".
    external_mic : bool
    gain : str or None
        ``"2"`` for "gain setting 2", else ``low``/``low-medium``/``medium``/``medium-high``/``high``.
    battery_v : float or None
        Volts; with ``battery_qualifier`` ``"<"`` or ``">"`` for "less than"/"greater than".
    battery_qualifier : str or None
    temperature_c : float or None
    filter_text, trigger_text, stop_reason : str or None
        The filter sentence, the amplitude/frequency trigger sentence, and the reason after
        "Recording stopped due to" / "Recording cancelled before completion due to".
    era : str or None
        Firmware range guessed from the wording (``"1.0"``, ``"1.0.1-1.3.x"``, ``"1.4.0-1.5.x"``,
        ``"1.6.0+"``).
    unparsed_text : str or None
        Sentences that matched nothing (kept verbatim).
    flags : tuple of str
        ``metadata_unparsed`` or ``metadata_partial``.
    warnings : tuple of str
    """

    raw: str
    parsed: bool
    time: datetime | None = None
    utc_offset: timedelta | None = None
    zone_stated: bool = False
    serial: str | None = None
    deployment_id: str | None = None
    external_mic: bool = False
    gain: str | None = None
    battery_v: float | None = None
    battery_qualifier: str | None = None
    temperature_c: float | None = None
    filter_text: str | None = None
    trigger_text: str | None = None
    stop_reason: str | None = None
    era: str | None = None
    unparsed_text: str | None = None
    flags: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields (times as ISO text, the offset in seconds)."""
        out = asdict(self)
        out["time"] = self.time.isoformat() if self.time else None
        out.pop("utc_offset")
        out["utc_offset_s"] = None if self.utc_offset is None else self.utc_offset.total_seconds()
        out["flags"], out["warnings"] = list(self.flags), list(self.warnings)
        return out


def looks_like_audiomoth_comment(text: str) -> bool:
    """True when ``text`` starts like any AudioMoth comment (or its opso wrapper)."""
    stripped = text.lstrip()
    return stripped.startswith(("Recorded at ", _OPSO_PREFIX))


def parse_audiomoth_comment(comment: str) -> AudioMothComment:
    """Parse an AudioMoth ICMT comment from any firmware era; never raises.

    Parameters
    ----------
    comment : str
        The ICMT text (trailing NULs and whitespace are ignored).

    Returns
    -------
    AudioMothComment
        ``parsed=False`` and the raw text kept when the wording is not recognised.
    """
    raw = comment.rstrip("\x00").strip()
    match = _HEAD.match(raw)
    if match is None:
        return AudioMothComment(raw=raw, parsed=False, flags=("metadata_unparsed",), warnings=(
            f"AudioMoth comment not recognised (kept verbatim): {raw[:80]!r}",))
    fields, warnings = _head_fields(match)
    fields.update(_tail_fields(raw[match.end():]))
    flags = ("metadata_partial",) if fields.get("unparsed_text") else ()
    if flags:
        warnings.append(f"unrecognised text in AudioMoth comment: {fields['unparsed_text']!r}")
    return AudioMothComment(raw=raw, parsed=True, flags=flags, warnings=tuple(warnings),
                            era=_era(match), **fields)


def _head_fields(match: re.Match[str]) -> tuple[dict[str, Any], list[str]]:
    """Fields of the first sentence: time, zone, identity, gain, battery, temperature."""
    groups = match.groupdict()
    time, warnings = _clock_and_date(groups["clock"], groups["date"])
    tz = groups["tz"]
    zone_stated = "(UTC" in match.group(0)
    if not zone_stated:
        warnings.append("no time zone in the comment (firmware 1.0): the clock ran on UTC")
    qualifier = (groups["qual"] or "").strip()
    offset: timedelta | None = timedelta(0)
    if tz:
        try:
            offset = parse_utc_offset(tz)
        except ValueError:
            offset = None
            warnings.append(f"impossible UTC offset in AudioMoth comment: UTC{tz}")
    return {
        "time": time,
        "utc_offset": offset,
        "zone_stated": zone_stated,
        "serial": groups["serial"].upper() if groups["serial"] else None,
        "deployment_id": groups["deployment"],
        "external_mic": bool(groups["external"]),
        "gain": groups["gain_n"] or groups["gain"],
        "battery_v": float(groups["volts"]) if groups["volts"] else None,
        "battery_qualifier": _QUALIFIERS.get(qualifier),
        "temperature_c": float(groups["temp"]) if groups["temp"] else None,
    }, warnings


def _clock_and_date(clock: str, date: str) -> tuple[datetime | None, list[str]]:
    """Combine ``HH:MM:SS`` and ``DD/MM/YYYY``; an impossible date becomes a warning."""
    try:
        return datetime.strptime(f"{date} {clock}", "%d/%m/%Y %H:%M:%S"), []
    except ValueError:
        return None, [f"impossible date/time in AudioMoth comment: {date} {clock}"]


_TAIL_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("filter_text", re.compile(r"^(?:Band|Low|High)-pass filter\b.*$")),
    ("trigger_text", re.compile(r"^(?:Amplitude threshold|Frequency trigger)\b.*$")),
    ("stop_reason", re.compile(
        r"^Recording (?:stopped|cancelled before completion) due to (?P<value>.+?)$")),
)


def _tail_fields(tail: str) -> dict[str, Any]:
    """Classify the sentences after the first one (filter, trigger, stop reason)."""
    fields: dict[str, Any] = {}
    unknown: list[str] = []
    for sentence in (s.strip() for s in re.split(r"(?<=\.)\s+", tail.strip())):
        if not sentence:
            continue
        text = sentence.rstrip(".")
        for name, pattern in _TAIL_RULES:
            found = pattern.match(text)
            if found:
                fields[name] = found.groupdict().get("value") or text
                break
        else:
            unknown.append(sentence)
    fields["unparsed_text"] = " ".join(unknown) or None
    return fields


def _era(match: re.Match[str]) -> str:
    """Guess the firmware range from the wording (see the module docstring table)."""
    groups = match.groupdict()
    if "(UTC" not in match.group(0):
        return "1.0"
    if groups["gain_n"] is not None:
        return "1.0.1-1.3.x"
    if groups["setting_word"] or groups["state_word"]:
        return "1.4.0-1.5.x"
    return "1.6.0+"


def parse_opso_metadata(comment: str) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """Unwrap OpenSoundscape's ``opso_metadata{json}`` comment.

    Parameters
    ----------
    comment : str
        The ICMT text.

    Returns
    -------
    (dict or None, warnings)
        The decoded JSON object (``comment``, ``recording_start_time``...), or None when the
        text is not an opso wrapper or its JSON is broken (then with a warning).
    """
    text = comment.rstrip("\x00").strip()
    if not text.startswith(_OPSO_PREFIX):
        return None, ()
    try:
        value = json.loads(text[len(_OPSO_PREFIX):])
    except json.JSONDecodeError as exc:
        return None, (f"opso_metadata JSON is broken ({exc.msg} at {exc.pos}); kept verbatim",)
    if not isinstance(value, dict):
        return None, ("opso_metadata is not a JSON object; kept verbatim",)
    return value, ()


@dataclass(frozen=True)
class AudioMothConfig:
    """Fields of an AudioMoth ``CONFIG.TXT``.

    Attributes
    ----------
    fields : dict
        Every ``Key : value`` pair in file order, values stripped, placeholders kept.
    device_id, firmware, deployment_id, time_zone, gain : str or None
    utc_offset : timedelta or None
        Parsed from ``Time zone`` (``UTC``, ``UTC+2``, ``UTC-5:30``).
    sample_rate_hz, sleep_duration_s, recording_duration_s : int or None
    recording_periods : tuple of str
        ``"00:00 - 24:00 (UTC)"`` per ``Recording period N`` line.
    warnings : tuple of str
    """

    fields: dict[str, str]
    device_id: str | None = None
    firmware: str | None = None
    deployment_id: str | None = None
    time_zone: str | None = None
    utc_offset: timedelta | None = None
    gain: str | None = None
    sample_rate_hz: int | None = None
    sleep_duration_s: int | None = None
    recording_duration_s: int | None = None
    recording_periods: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def parse_config_txt(text: str | bytes) -> AudioMothConfig:
    """Parse an AudioMoth ``CONFIG.TXT`` (``Key : value`` lines, CRLF or LF).

    Parameters
    ----------
    text : str or bytes
        File content; bytes are decoded as UTF-8 with Latin-1 fallback.

    Returns
    -------
    AudioMothConfig
    """
    if isinstance(text, bytes):
        text = _decode_text(text)
    fields: dict[str, str] = {}
    warnings: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            warnings.append(f"CONFIG.TXT line {number} has no ':' (kept out): {line!r}")
            continue
        fields[key.strip()] = value.strip()
    return _typed_config(fields, warnings)


def _typed_config(fields: dict[str, str], warnings: list[str]) -> AudioMothConfig:
    """Pull the typed values out of the raw CONFIG.TXT fields."""

    def value(key: str) -> str | None:
        found = fields.get(key)
        return None if found is None or _is_placeholder(found) else found

    zone = value("Time zone")
    offset = None
    if zone:
        try:
            offset = parse_utc_offset(zone)
        except ValueError:
            warnings.append(f"CONFIG.TXT time zone not understood: {zone!r}")
    periods = tuple(v for k, v in fields.items() if k.startswith("Recording period "))
    return AudioMothConfig(
        fields=fields, device_id=value("Device ID"), firmware=value("Firmware"),
        deployment_id=value("Deployment ID"), time_zone=zone, utc_offset=offset,
        gain=value("Gain"), sample_rate_hz=_int_or_none(value("Sample rate (Hz)")),
        sleep_duration_s=_int_or_none(value("Sleep duration (s)")),
        recording_duration_s=_int_or_none(value("Recording duration (s)")),
        recording_periods=periods, warnings=tuple(warnings),
    )


def _is_placeholder(text: str) -> bool:
    """``-`` and ``---------- --:--:--`` mean "not set" in CONFIG.TXT."""
    return not text.strip(" -:")


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().isdigit() else None


def _decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
