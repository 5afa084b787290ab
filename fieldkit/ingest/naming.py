"""Safe, stable archive names for whatever names a card holds (docs/reliability.md, C6, G3).

The raw bytes of every card path are kept in the catalogue; the archive gets a portable name:
UTF-8 (undecodable bytes spelled ``_xNN``), NFC, no control characters or separators, no
trailing dot or space, no leading ``-``, no Windows device names, at most 200 bytes a component.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = ["safe_component", "archive_relpath"]

_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
MAX_COMPONENT_BYTES = 200


def _decode(raw: bytes) -> str:
    out, i = [], 0
    while i < len(raw):
        try:
            out.append(raw[i:].decode("utf-8"))
            break
        except UnicodeDecodeError as exc:
            out.append(raw[i:i + exc.start].decode("utf-8"))
            out.append("".join(f"_x{b:02X}" for b in raw[i + exc.start:i + exc.end]))
            i += exc.end
    return "".join(out)


def safe_component(raw: bytes) -> str:
    """A portable file or folder name for one raw path component."""
    name = _UNSAFE.sub("_", unicodedata.normalize("NFC", _decode(raw)))
    name = name.rstrip(". ") or "_"
    if name.startswith("-"):
        name = "_" + name
    if name.split(".")[0].upper() in _RESERVED:
        name = "_" + name
    if len(name.encode()) > MAX_COMPONENT_BYTES:
        digest = hashlib.sha256(raw).hexdigest()[:12]
        stem, dot, ext = name.rpartition(".") if len(name.rpartition(".")[2]) <= 8 else (name, "", "")
        keep = MAX_COMPONENT_BYTES - len(digest) - len(ext.encode()) - 3
        name = f"{stem.encode()[:keep].decode('utf-8', 'ignore')}__{digest}{dot}{ext}"
    return name


def archive_relpath(site: str, deployment: str, raw_path: bytes) -> str:
    """``<site>/<deployment>/<card path>``, every component made safe (POSIX separators)."""
    parts = [safe_component(site.encode()), safe_component(deployment.encode())]
    parts += [safe_component(p) for p in raw_path.split(b"/") if p]
    return "/".join(parts)
