"""The metadata sources the reader consults, one per kind of recorder metadata.

Each source is registered by name in :mod:`fieldkit.io.recorders.registry` with the RIFF chunks it
reads; :data:`~fieldkit.io.recorders.registry.PRIORITY` declares the order in which
:func:`fieldkit.io.recorders.read_recorder_metadata` consults them. A source calls the pure
parsers of this package on the bodies it is given and returns a
:class:`~fieldkit.io.recorders.registry.Reading`: the values it offers, the start times it found
and everything it parsed (kept under ``raw``). A source never reads a file.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fieldkit.io.recorders.audiomoth import (
    looks_like_audiomoth_comment,
    parse_audiomoth_comment,
    parse_opso_metadata,
)
from fieldkit.io.recorders.bwf import originator_identity, parse_bext, parse_ixml
from fieldkit.io.recorders.filenames import parse_filename_time
from fieldkit.io.recorders.guano import parse_guano
from fieldkit.io.recorders.info import parse_list_info
from fieldkit.io.recorders.registry import Reading, SourceInput, register_source
from fieldkit.io.recorders.wamd import parse_wamd
from fieldkit.model.metadata import TimeCandidate

__all__ = ["AUDIOMOTH_MAKE", "bext_source", "filename_source", "guano_source", "info_source",
           "ixml_source", "wamd_source"]

#: The make offered for a file identified as an AudioMoth's (comment or ``IART``).
AUDIOMOTH_MAKE = "Open Acoustic Devices"


def _prefixed(source: str, messages: tuple[str, ...] | list[str]) -> list[str]:
    return [f"{source}: {m}" for m in messages]


@register_source("guano", ("guan",))
def guano_source(given: SourceInput) -> Reading:
    """GUANO: make, model, serial, firmware, deployment, battery, temperature, position, time."""
    bodies = given.bodies.get("guan", ())
    if not bodies:
        return Reading()
    guano = parse_guano(bodies[0])
    typed = guano.typed
    values = {"make": guano.get("Make"), "model": guano.get("Model"),
              "serial": guano.get("Serial"), "firmware": guano.get("Firmware Version"),
              "deployment_id": guano.get("OAD|Deployment ID"), "battery_v": typed.get("battery_v"),
              "temperature_c": typed.get("temperature_int_c", typed.get("temperature_ext_c")),
              "latitude_deg": typed.get("latitude_deg"),
              "longitude_deg": typed.get("longitude_deg"), "elevation_m": typed.get("elevation_m")}
    times = ()
    if typed.get("timestamp") is not None:
        times = (TimeCandidate("guano", guano.fields["Timestamp"], typed["timestamp"],
                               typed.get("utc_offset")),)
    return Reading(values, times, {"guano": guano.to_dict()},
                   warnings=tuple(_prefixed("guano", guano.warnings)))


@register_source("info", ("LIST",))
def info_source(given: SourceInput) -> Reading:
    """LIST/INFO: the AudioMoth comment (or its OpenSoundscape wrapper) and ``IART``."""
    info: dict[str, str] = {}
    warnings: list[str] = []
    for body in given.bodies.get("LIST", ()):
        list_type, fields, found = parse_list_info(body)
        warnings += _prefixed(f"LIST/{list_type}", found)
        for key, value in fields.items():
            info.setdefault(key, value)
    if not info:
        return Reading(warnings=tuple(warnings))
    raw: dict[str, Any] = {"info": info}
    times: list[TimeCandidate] = []
    comment = _unwrap_opso(info.get("ICMT", ""), raw, times, warnings)
    artist = info.get("IART", "")
    values: dict[str, Any] = {}
    flags: list[str] = []
    if looks_like_audiomoth_comment(comment) or artist.startswith("AudioMoth"):
        values, flags = _audiomoth(comment, artist, raw, times, warnings)
    return Reading(values, tuple(times), raw, tuple(flags), tuple(warnings))


def _unwrap_opso(comment: str, raw: dict[str, Any], times: list[TimeCandidate],
                 warnings: list[str]) -> str:
    """Unwrap ``opso_metadata{...}``; return the AudioMoth comment inside (or the input)."""
    opso, found = parse_opso_metadata(comment)
    warnings += _prefixed("opso", found)
    if opso is None:
        return comment
    raw["opso"] = opso
    start = opso.get("recording_start_time")
    if isinstance(start, str):
        try:
            aware = datetime.fromisoformat(start)
        except ValueError:
            warnings.append(f"opso: recording_start_time not understood: {start!r}")
        else:
            times.append(TimeCandidate("opso", start, aware.replace(tzinfo=None), aware.utcoffset(),
                                       "derived by OpenSoundscape; may describe a parent file"))
    inner = opso.get("comment")
    return inner if isinstance(inner, str) else ""


def _audiomoth(comment: str, artist: str, raw: dict[str, Any], times: list[TimeCandidate],
               warnings: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Parse the AudioMoth comment: its identity, battery and temperature values, and flags."""
    serial_from_artist = artist.removeprefix("AudioMoth").strip() or None
    values: dict[str, Any] = {"make": AUDIOMOTH_MAKE, "model": "AudioMoth"}
    if not comment:
        values["serial"] = serial_from_artist
        return values, []
    parsed = parse_audiomoth_comment(comment)
    raw["audiomoth_comment"] = parsed.to_dict()
    warnings += _prefixed("audiomoth_comment", parsed.warnings)
    values.update(serial=parsed.serial or serial_from_artist, deployment_id=parsed.deployment_id,
                  gain=parsed.gain, battery_v=parsed.battery_v,
                  battery_qualifier=parsed.battery_qualifier, temperature_c=parsed.temperature_c)
    if parsed.time is not None:
        note = None if parsed.zone_stated else "firmware 1.0 comment without zone: clock on UTC"
        times.append(TimeCandidate("audiomoth_comment", parsed.raw, parsed.time,
                                   parsed.utc_offset, note))
    return values, list(parsed.flags)


@register_source("wamd", ("wamd",))
def wamd_source(given: SourceInput) -> Reading:
    """Wildlife Acoustics ``wamd``: Song Meter / Echo Meter identity, position and time."""
    bodies = given.bodies.get("wamd", ())
    if not bodies:
        return Reading()
    wamd = parse_wamd(bodies[0])
    raw = {"wamd": {"fields": wamd.fields, "latitude_deg": wamd.latitude_deg,
                    "longitude_deg": wamd.longitude_deg, "altitude_m": wamd.altitude_m}}
    values = {"make": "Wildlife Acoustics", "model": wamd.fields.get("model"),
              "serial": wamd.fields.get("serial"), "firmware": wamd.fields.get("firmware"),
              "latitude_deg": wamd.latitude_deg, "longitude_deg": wamd.longitude_deg,
              "elevation_m": wamd.altitude_m}
    times = ()
    if wamd.timestamp is not None:
        times = (TimeCandidate("wamd", str(wamd.fields.get("timestamp")), wamd.timestamp,
                               wamd.utc_offset),)
    return Reading(values, times, raw, warnings=tuple(_prefixed("wamd", wamd.warnings)))


@register_source("bext", ("bext",))
def bext_source(given: SourceInput) -> Reading:
    """Broadcast WAV ``bext``: the originator's identity and the (local) origination time."""
    bodies = given.bodies.get("bext", ())
    if not bodies:
        return Reading()
    bext = parse_bext(bodies[0])
    make, model, serial = originator_identity(bext.originator)
    times = ()
    if bext.origination is not None:
        raw_time = f"{bext.origination_date} {bext.origination_time}"
        times = (TimeCandidate("bext", raw_time, bext.origination, None),)
    return Reading({"make": make, "model": model, "serial": serial}, times,
                   {"bext": bext.to_dict()}, warnings=tuple(_prefixed("bext", bext.warnings)))


@register_source("ixml", ("iXML",))
def ixml_source(given: SourceInput) -> Reading:
    """iXML: kept (and flagged when rejected); it offers no values."""
    bodies = given.bodies.get("iXML", ())
    if not bodies:
        return Reading()
    ixml = parse_ixml(bodies[0])
    return Reading(raw={"ixml": asdict(ixml)}, flags=tuple(ixml.flags),
                   warnings=tuple(_prefixed("ixml", ixml.warnings)))


@register_source("filename")
def filename_source(given: SourceInput) -> Reading:
    """The file name (or GUANO ``Original Filename`` when the file was renamed)."""
    is_audiomoth = given.found.get("make") == AUDIOMOTH_MAKE
    found = parse_filename_time(given.filename, audiomoth=is_audiomoth)
    note = None
    original = given.raw.get("guano", {}).get("fields", {}).get("Original Filename")
    if found is None and original:
        found = parse_filename_time(original, audiomoth=is_audiomoth)
        note = "from GUANO Original Filename"
    if found is None:
        return Reading()
    raw = {"filename": {"pattern": found.pattern, "raw": found.raw, "prefix": found.prefix,
                        "triggered": found.triggered}}
    return Reading(times=(TimeCandidate("filename", found.raw, found.local_time, found.utc_offset,
                                        note),), raw=raw,
                   warnings=tuple(_prefixed("filename", found.warnings)))
