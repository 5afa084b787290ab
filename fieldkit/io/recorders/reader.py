"""Read every recorder metadata source of one file into a :class:`RecorderMetadata`.

Raw load (chunk bodies, capped) -> pure parsers from the registry -> one merged record. When
sources disagree on identity, GUANO wins (structured, written by the firmware), then the
AudioMoth comment/``IART``, then ``wamd``, then ``bext``. Every parsed value is also kept under
``raw`` so nothing is lost.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from fieldkit.io.recorders.audiomoth import (
    looks_like_audiomoth_comment,
    parse_audiomoth_comment,
    parse_opso_metadata,
)
from fieldkit.io.recorders.bwf import originator_identity, parse_bext, parse_ixml
from fieldkit.io.recorders.filenames import parse_filename_time
from fieldkit.io.recorders.guano import GuanoData, parse_guano
from fieldkit.io.recorders.info import parse_list_info
from fieldkit.io.recorders.wamd import parse_wamd
from fieldkit.io.riff.chunks import METADATA_BODY_CAP_BYTES, read_chunk_body
from fieldkit.model.audio import RiffLayout
from fieldkit.model.metadata import RecorderMetadata, TimeCandidate

__all__ = ["read_recorder_metadata"]

_METADATA_IDS = ("LIST", "guan", "wamd", "bext", "iXML")
_AUDIOMOTH_MAKE = "Open Acoustic Devices"


@dataclass
class _Merge:
    """Mutable accumulator: the first source to set a value wins (call in priority order)."""

    values: dict[str, Any] = field(default_factory=dict)
    candidates: list[TimeCandidate] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def offer(self, **values: Any) -> None:
        for key, value in values.items():
            if value not in (None, "") and self.values.get(key) is None:
                self.values[key] = value

    def warn(self, source: str, messages: tuple[str, ...] | list[str]) -> None:
        self.warnings.extend(f"{source}: {m}" for m in messages)


def read_recorder_metadata(
    source: str | os.PathLike[str] | BinaryIO, filename: str, layout: RiffLayout | None
) -> RecorderMetadata:
    """Read and merge GUANO, AudioMoth comment, wamd, bext/iXML, INFO and file-name metadata.

    Parameters
    ----------
    source : path-like or binary file object
        The (archived) file; only metadata chunk bodies are read, each capped at 4 MiB.
    filename : str
        The recording's original file name (for the file-name timestamp).
    layout : RiffLayout or None
        From :func:`fieldkit.io.riff.chunks.walk_riff`; None for non-RIFF files (then only the file
        name is used).

    Returns
    -------
    RecorderMetadata
    """
    bodies = _read_bodies(source, layout) if layout is not None else {}
    merge = _Merge()
    guano = _apply_guano(merge, bodies.get("guan", []))
    _apply_info(merge, bodies.get("LIST", []))
    _apply_wamd(merge, bodies.get("wamd", []))
    _apply_bwf(merge, bodies.get("bext", []), bodies.get("iXML", []))
    _apply_filename(merge, filename, guano)
    return _freeze(merge, layout)


def _read_bodies(source: str | os.PathLike[str] | BinaryIO, layout: RiffLayout) -> dict[str, list[bytes]]:
    """Bodies of the metadata chunks, in file order, each capped."""
    wanted = [c for c in layout.chunks if c.chunk_id in _METADATA_IDS]
    if hasattr(source, "read"):
        return _bodies_from(source, wanted)  # type: ignore[arg-type]
    with open(source, "rb") as fileobj:  # type: ignore[arg-type]
        return _bodies_from(fileobj, wanted)


def _bodies_from(fileobj: BinaryIO, chunks: list[Any]) -> dict[str, list[bytes]]:
    bodies: dict[str, list[bytes]] = {}
    for chunk in chunks:
        body = read_chunk_body(fileobj, chunk, cap_bytes=METADATA_BODY_CAP_BYTES)
        bodies.setdefault(chunk.chunk_id, []).append(body)
    return bodies


def _apply_guano(merge: _Merge, bodies: list[bytes]) -> GuanoData | None:
    """GUANO first: it is preferred for make, model, serial, firmware and position."""
    if not bodies:
        return None
    guano = parse_guano(bodies[0])
    merge.raw["guano"] = guano.to_dict()
    merge.warn("guano", guano.warnings)
    typed = guano.typed
    merge.offer(make=guano.get("Make"), model=guano.get("Model"), serial=guano.get("Serial"),
                firmware=guano.get("Firmware Version"),
                deployment_id=guano.get("OAD|Deployment ID"),
                battery_v=typed.get("battery_v"),
                temperature_c=typed.get("temperature_int_c", typed.get("temperature_ext_c")),
                latitude_deg=typed.get("latitude_deg"), longitude_deg=typed.get("longitude_deg"),
                elevation_m=typed.get("elevation_m"))
    if typed.get("timestamp") is not None:
        merge.candidates.append(TimeCandidate(
            "guano", guano.fields["Timestamp"], typed["timestamp"], typed.get("utc_offset")))
    return guano


def _apply_info(merge: _Merge, bodies: list[bytes]) -> None:
    """LIST/INFO: the AudioMoth comment (or its opso wrapper) and IART."""
    info: dict[str, str] = {}
    for body in bodies:
        list_type, fields, warnings = parse_list_info(body)
        merge.warn(f"LIST/{list_type}", warnings)
        for key, value in fields.items():
            info.setdefault(key, value)
    if not info:
        return
    merge.raw["info"] = info
    comment = info.get("ICMT", "")
    artist = info.get("IART", "")
    comment = _apply_opso(merge, comment)
    if looks_like_audiomoth_comment(comment) or artist.startswith("AudioMoth"):
        _apply_audiomoth(merge, comment, artist)


def _apply_opso(merge: _Merge, comment: str) -> str:
    """Unwrap ``opso_metadata{...}``; return the AudioMoth comment inside (or the input)."""
    opso, warnings = parse_opso_metadata(comment)
    merge.warn("opso", warnings)
    if opso is None:
        return comment
    merge.raw["opso"] = opso
    start = opso.get("recording_start_time")
    if isinstance(start, str):
        try:
            aware = datetime.fromisoformat(start)
        except ValueError:
            merge.warn("opso", [f"recording_start_time not understood: {start!r}"])
        else:
            merge.candidates.append(TimeCandidate(
                "opso", start, aware.replace(tzinfo=None), aware.utcoffset(),
                "derived by OpenSoundscape; may describe a parent file"))
    inner = opso.get("comment")
    return inner if isinstance(inner, str) else ""


def _apply_audiomoth(merge: _Merge, comment: str, artist: str) -> None:
    """Parse the AudioMoth comment and offer its identity, battery and temperature."""
    serial_from_artist = artist.removeprefix("AudioMoth").strip() or None
    merge.offer(make=_AUDIOMOTH_MAKE, model="AudioMoth")
    if not comment:
        merge.offer(serial=serial_from_artist)
        return
    parsed = parse_audiomoth_comment(comment)
    merge.raw["audiomoth_comment"] = parsed.to_dict()
    merge.flags.extend(parsed.flags)
    merge.warn("audiomoth_comment", parsed.warnings)
    merge.offer(serial=parsed.serial or serial_from_artist, deployment_id=parsed.deployment_id,
                gain=parsed.gain, battery_v=parsed.battery_v,
                battery_qualifier=parsed.battery_qualifier, temperature_c=parsed.temperature_c)
    if parsed.time is not None:
        note = None if parsed.zone_stated else "firmware 1.0 comment without zone: clock on UTC"
        merge.candidates.append(TimeCandidate(
            "audiomoth_comment", parsed.raw, parsed.time, parsed.utc_offset, note))


def _apply_wamd(merge: _Merge, bodies: list[bytes]) -> None:
    if not bodies:
        return
    wamd = parse_wamd(bodies[0])
    merge.raw["wamd"] = {"fields": wamd.fields, "latitude_deg": wamd.latitude_deg,
                         "longitude_deg": wamd.longitude_deg, "altitude_m": wamd.altitude_m}
    merge.warn("wamd", wamd.warnings)
    merge.offer(make="Wildlife Acoustics", model=wamd.fields.get("model"),
                serial=wamd.fields.get("serial"), firmware=wamd.fields.get("firmware"),
                latitude_deg=wamd.latitude_deg, longitude_deg=wamd.longitude_deg,
                elevation_m=wamd.altitude_m)
    if wamd.timestamp is not None:
        merge.candidates.append(TimeCandidate(
            "wamd", str(wamd.fields.get("timestamp")), wamd.timestamp, wamd.utc_offset))


def _apply_bwf(merge: _Merge, bext_bodies: list[bytes], ixml_bodies: list[bytes]) -> None:
    if bext_bodies:
        bext = parse_bext(bext_bodies[0])
        merge.raw["bext"] = bext.to_dict()
        merge.warn("bext", bext.warnings)
        make, model, serial = originator_identity(bext.originator)
        merge.offer(make=make, model=model, serial=serial)
        if bext.origination is not None:
            raw = f"{bext.origination_date} {bext.origination_time}"
            merge.candidates.append(TimeCandidate("bext", raw, bext.origination, None))
    if ixml_bodies:
        ixml = parse_ixml(ixml_bodies[0])
        merge.raw["ixml"] = asdict(ixml)
        merge.flags.extend(ixml.flags)
        merge.warn("ixml", ixml.warnings)


def _apply_filename(merge: _Merge, filename: str, guano: GuanoData | None) -> None:
    """The file name (or GUANO ``Original Filename`` when the file was renamed)."""
    is_audiomoth = merge.values.get("make") == _AUDIOMOTH_MAKE
    found = parse_filename_time(filename, audiomoth=is_audiomoth)
    note = None
    original = guano.get("Original Filename") if guano else None
    if found is None and original:
        found = parse_filename_time(original, audiomoth=is_audiomoth)
        note = "from GUANO Original Filename"
    if found is None:
        return
    merge.raw["filename"] = {"pattern": found.pattern, "raw": found.raw,
                             "prefix": found.prefix, "triggered": found.triggered}
    merge.candidates.append(TimeCandidate(
        "filename", found.raw, found.local_time, found.utc_offset, note))


def _freeze(merge: _Merge, layout: RiffLayout | None) -> RecorderMetadata:
    v = merge.values
    return RecorderMetadata(
        make=v.get("make"), model=v.get("model"), serial=v.get("serial"),
        firmware=v.get("firmware"), deployment_id=v.get("deployment_id"),
        time_candidates=tuple(merge.candidates), gain=v.get("gain"),
        battery_v=v.get("battery_v"), battery_qualifier=v.get("battery_qualifier"),
        temperature_c=v.get("temperature_c"), latitude_deg=v.get("latitude_deg"),
        longitude_deg=v.get("longitude_deg"), elevation_m=v.get("elevation_m"),
        raw=merge.raw, chunk_ids=layout.chunk_ids if layout else (),
        flags=tuple(dict.fromkeys(merge.flags)), warnings=tuple(merge.warnings),
    )
