"""Broadcast WAV ``bext`` (EBU Tech 3285) and ``iXML`` chunks (Zoom, Sound Devices, Tascam).

``bext`` layout (602 bytes + coding history): Description 256, Originator 32,
OriginatorReference 32, OriginationDate 10 (``2018-12-31``; any separator), OriginationTime 8
(``12:40:06``), TimeReference uint64 (samples since *local* midnight), Version uint16, UMID 64,
five int16 loudness values (v2), 180 reserved, then CodingHistory. Date and time are local time
with no zone. Recorders put ``KEY=value`` lines in Description, for example::

    sSPEED=023.976-ND\\r\\nsTAKE=1\\r\\nsTRK1=MKH516 A       (Sound Devices 702T)
    gSCENE=2C\\r\\ngTAKE=01\\r\\ngNOTE=Tail Slate Cloth noise  (Metacorder)
    Originator "Sound Dev: 702T S#GR1112089007", "ZOOM F8"

iXML is untrusted XML parsed with ``defusedxml`` and ``forbid_dtd=True``: a DOCTYPE or entity
declaration is rejected (warning ``ixml_rejected``); broken XML is a warning (``ixml_broken``),
never a failure.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

__all__ = ["BextData", "IxmlData", "originator_identity", "parse_bext", "parse_ixml"]

_BEXT_FIXED = struct.Struct("<256s32s32s10s8sQH64s5h180s")
_DATE_RE = re.compile(r"^(\d{4})\D(\d{2})\D(\d{2})$")
_TIME_RE = re.compile(r"^(\d{2})\D(\d{2})\D(\d{2})$")
_SOUND_DEVICES_RE = re.compile(r"^Sound Dev:\s*(?P<model>\S+)\s+S#(?P<serial>\S+)")
_IXML_TAGS = ("IXML_VERSION", "PROJECT", "SCENE", "TAKE", "TAPE", "NOTE", "CIRCLED",
              "FILE_UID", "UBITS")


@dataclass(frozen=True)
class BextData:
    """A decoded ``bext`` chunk (times are local, with no zone).

    Attributes
    ----------
    description, originator, originator_reference : str
    description_fields : dict
        ``KEY=value`` lines of the description (vendor one-letter prefixes kept).
    origination_date, origination_time : str
        Raw text.
    origination : datetime or None
        Naive local date + time, None when malformed.
    time_reference_samples : int
        Samples since local midnight at the start of the file.
    version : int
    umid : str
        Hex, empty when all zero.
    loudness : dict
        v2 loudness fields (raw int16, hundredths), only when version >= 2.
    coding_history : str
    warnings : tuple of str
    """

    description: str = ""
    originator: str = ""
    originator_reference: str = ""
    description_fields: dict[str, str] = field(default_factory=dict)
    origination_date: str = ""
    origination_time: str = ""
    origination: datetime | None = None
    time_reference_samples: int = 0
    version: int = 0
    umid: str = ""
    loudness: dict[str, int] = field(default_factory=dict)
    coding_history: str = ""
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["origination"] = self.origination.isoformat() if self.origination else None
        out["warnings"] = list(self.warnings)
        return out


def _text(raw: bytes) -> str:
    """Text up to the first NUL (vendors leave garbage after it), Latin-1 safe."""
    head = raw.split(b"\x00", 1)[0]
    try:
        return head.decode("utf-8").strip()
    except UnicodeDecodeError:
        return head.decode("latin-1").strip()


def parse_bext(body: bytes) -> BextData:
    """Decode a ``bext`` chunk body; never raises.

    Parameters
    ----------
    body : bytes

    Returns
    -------
    BextData
        With a warning and empty fields when the body is shorter than 602 bytes.
    """
    if len(body) < _BEXT_FIXED.size:
        return BextData(warnings=(f"bext chunk is {len(body)} bytes, expected at least 602",))
    desc, orig, ref, odate, otime, tref, version, umid, *rest = _BEXT_FIXED.unpack_from(body)
    loudness_raw = rest[:5]
    description = _text(desc)
    date_text, time_text = _text(odate), _text(otime)
    origination, warnings = _origination(date_text, time_text)
    names = ("loudness_value", "loudness_range", "max_true_peak_level",
             "max_momentary_loudness", "max_short_term_loudness")
    return BextData(
        description=description, originator=_text(orig), originator_reference=_text(ref),
        description_fields=_key_values(description), origination_date=date_text,
        origination_time=time_text, origination=origination, time_reference_samples=tref,
        version=version, umid=umid.hex() if any(umid) else "",
        loudness=dict(zip(names, loudness_raw)) if version >= 2 else {},
        coding_history=_text(body[_BEXT_FIXED.size:]), warnings=tuple(warnings),
    )


def _origination(date_text: str, time_text: str) -> tuple[datetime | None, list[str]]:
    """Combine OriginationDate and OriginationTime (local, any separator)."""
    if not date_text:
        return None, []
    d, t = _DATE_RE.match(date_text), _TIME_RE.match(time_text or "00:00:00")
    try:
        if d is None or t is None:
            raise ValueError("unexpected layout")
        day = date(*(int(g) for g in d.groups()))
        return datetime.combine(day, time(*(int(g) for g in t.groups()))), []
    except ValueError:
        return None, [f"bext origination not understood: {date_text!r} {time_text!r}"]


def _key_values(description: str) -> dict[str, str]:
    """``KEY=value`` lines of a bext description."""
    pairs = (line.partition("=") for line in description.replace("\r", "\n").split("\n"))
    return {k.strip(): v.strip() for k, sep, v in pairs if sep and k.strip()}


def originator_identity(originator: str) -> tuple[str | None, str | None, str | None]:
    """(make, model, serial) from a bext Originator such as ``Sound Dev: 702T S#GR1112089007``."""
    match = _SOUND_DEVICES_RE.match(originator)
    if match:
        return "Sound Devices", match["model"], match["serial"]
    if originator.upper().startswith("ZOOM "):
        return "Zoom", originator[5:].strip() or None, None
    return None, None, None


@dataclass(frozen=True)
class IxmlData:
    """Fields pulled out of an iXML chunk.

    Attributes
    ----------
    fields : dict
        ``PROJECT``, ``SCENE``, ``TAKE``, ``TAPE``, ``NOTE``... (text, when present).
    file_set : dict
        ``FILE_SET`` children (``TOTAL_FILES``, ``FAMILY_UID``, ``FAMILY_NAME``,
        ``FILE_SET_INDEX``) linking split or poly/mono files.
    track_names : tuple of str
    flags : tuple of str
        ``ixml_rejected`` or ``ixml_broken``.
    warnings : tuple of str
    """

    fields: dict[str, str] = field(default_factory=dict)
    file_set: dict[str, str] = field(default_factory=dict)
    track_names: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def parse_ixml(body: bytes) -> IxmlData:
    """Parse an iXML chunk with defusedxml; never raises.

    Parameters
    ----------
    body : bytes
        The chunk body (UTF-8 XML, possibly NUL-padded).

    Returns
    -------
    IxmlData
    """
    try:
        root = SafeET.fromstring(body.rstrip(b"\x00 \r\n\t"), forbid_dtd=True)
    except DefusedXmlException as exc:
        return IxmlData(flags=("ixml_rejected",), warnings=(
            f"iXML rejected as unsafe ({type(exc).__name__}); it is kept in the archive",))
    except SafeET.ParseError as exc:
        return IxmlData(flags=("ixml_broken",), warnings=(f"iXML is not well-formed: {exc}",))
    except (LookupError, ValueError) as exc:
        # expat raises these, not ParseError, for an XML declaration naming an unknown or a
        # multi-byte encoding (found by benchmarks/fuzz.py: encoding="UTF-0")
        return IxmlData(flags=("ixml_broken",), warnings=(
            f"iXML declares an encoding that cannot be read ({exc}); it is kept in the archive",))
    fields = {tag: _child_text(root, tag) for tag in _IXML_TAGS}
    file_set = {child.tag: (child.text or "").strip() for child in root.iterfind("FILE_SET/*")}
    tracks = tuple((n.text or "").strip() for n in root.iterfind("TRACK_LIST/TRACK/NAME"))
    return IxmlData({k: v for k, v in fields.items() if v is not None}, file_set, tracks)


def _child_text(root: Any, tag: str) -> str | None:
    found = root.find(tag)
    return None if found is None else (found.text or "").strip()
