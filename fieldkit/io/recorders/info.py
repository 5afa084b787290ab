"""RIFF ``LIST``/``INFO`` sub-chunks (``ICMT``, ``IART``, ``ICRD``, ``ISFT``, ``INAM``...).

AudioMoth writes ``ICMT`` (its comment, NUL-padded to 384 bytes) and ``IART``
("AudioMoth 24E144055E080032"); Sound Grinder and Wave Agent write ``ICOP``, ``ICRD``,
``IENG``... Sub-chunks with odd sizes are padded; a missing pad byte is tolerated.
"""

from __future__ import annotations

import struct

__all__ = ["parse_list_info"]


def parse_list_info(body: bytes) -> tuple[str, dict[str, str], tuple[str, ...]]:
    """Decode a ``LIST`` chunk body.

    Parameters
    ----------
    body : bytes
        The LIST body, starting with its list type (``INFO``, ``adtl``...).

    Returns
    -------
    (list_type, fields, warnings)
        ``fields`` maps sub-chunk id to text (NULs stripped, UTF-8 with Latin-1 fallback);
        only ``INFO`` lists are decoded, others return an empty mapping.
    """
    list_type = body[:4].decode("latin-1")
    if list_type != "INFO":
        return list_type, {}, ()
    fields: dict[str, str] = {}
    warnings: list[str] = []
    pos = 4
    while pos + 8 <= len(body):
        sub_id = body[pos:pos + 4].decode("latin-1")
        size = struct.unpack("<I", body[pos + 4:pos + 8])[0]
        value = body[pos + 8:pos + 8 + size]
        if len(value) < size:
            warnings.append(f"LIST/INFO {sub_id!r} declares {size} bytes, {len(value)} present")
        fields.setdefault(sub_id, _text(value))
        pos += 8 + size + (size & 1)
        if size & 1 and body[pos - 1:pos].isalpha():  # no pad byte: step back onto the id
            pos -= 1
    return list_type, fields, tuple(warnings)


def _text(value: bytes) -> str:
    raw = value.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return raw.decode("latin-1").strip()
