"""Records and constants of ASC-MHL-style manifests (see :mod:`fieldkit.io.manifests.mhl`)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Literal

from fieldkit.errors import UnknownNameError, ValidationError

ASC_NS = "urn:ASC:MHL:v2.0"
DIRECTORY_NS = "urn:ASC:MHL:DIRECTORY:v2.0"
#: Namespace of fieldkit's extension elements (``fk:sha256``).
FIELDKIT_NS = "urn:fieldkit:MHL:extension:v1"
CHAIN_FILENAME = "ascmhl_chain.xml"
ASC_HASH_FORMATS = ("c4", "md5", "sha1", "xxh32", "xxh64", "xxh3", "xxh128")
EXTENSION_HASH_FORMATS = ("sha256",)
HASH_FORMATS = ASC_HASH_FORMATS + EXTENSION_HASH_FORMATS
#: Hash actions, least to most severe (reading a ``<hash>`` with mixed actions keeps the worst).
ACTIONS = ("original", "verified", "failed")
PROCESSES = ("in-place", "transfer", "flatten")
Action = Literal["original", "verified", "failed"]

_CHUNK_BYTES = 1 << 20
_MANIFEST_NAME = re.compile(r"(\d{4,})_(.+)_(\d{4}-\d{2}-\d{2})_(\d{6})Z\.mhl")
_TEMP_NAME = re.compile(r"\.fieldkit-(\d+)-[0-9a-f]+\.tmp")
# Characters XML 1.0 cannot carry or that a parser rewrites (CR), plus, in names, tab, newline
# and the backslash, which would let a manifest name a file outside the archive on Windows.
_NOT_XML = "\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
_UNSAFE_TEXT = re.compile(f"[{_NOT_XML}]")
_UNSAFE_NAME = re.compile(f"[{_NOT_XML}\t\n\\\\]")
_HASH_VALUE = re.compile(r"[0-9A-Za-z]+")
#: Temporary files older than this belong to an earlier process (see :func:`remove_stale_temps`).
_STARTED_AT = time.time()
#: Qualified tag of every hash element read, to its format name.
_HASH_TAGS = {f"{{{ASC_NS}}}{n}": n for n in ASC_HASH_FORMATS} | {
    f"{{{FIELDKIT_NS}}}{n}": n for n in EXTENSION_HASH_FORMATS}




def _require_aware(value: datetime | None, what: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValidationError(f"{what} {value.isoformat()} has no UTC offset.",
                              hint="Pass an aware datetime.")


def _check_path(path: str) -> None:
    parts = path.split("/")
    if not path or _UNSAFE_NAME.search(path) or any(p in ("", ".", "..") for p in parts):
        raise ValidationError(
            f"MHL path {path!r} is not a clean relative POSIX path.",
            hint="Use '/'-separated names without '.', '..', backslashes or control characters.",
        )


@dataclass(frozen=True)
class CreatorInfo:
    """Who wrote a generation: ``<creatorinfo>``. ``created`` is the operation's UTC start."""

    created: datetime
    hostname: str
    tool_version: str
    tool_name: str = "fieldkit"
    author: str | None = None
    location: str | None = None
    comment: str | None = None

    def __post_init__(self) -> None:
        _require_aware(self.created, "CreatorInfo.created")
        for name in ("hostname", "tool_version", "tool_name", "author", "location", "comment"):
            value = getattr(self, name)
            if value is not None and (_UNSAFE_TEXT.search(value) or value != value.strip()):
                raise ValidationError(f"CreatorInfo.{name} {value!r} cannot be written to XML.",
                                      hint="Remove control characters and surrounding spaces.")

    @classmethod
    def now(cls, *, author: str | None = None, location: str | None = None,
            comment: str | None = None) -> CreatorInfo:
        """Describe this host and fieldkit version, created now (whole seconds, UTC)."""
        try:
            version = metadata.version("fieldkit")
        except metadata.PackageNotFoundError:
            version = "unknown"
        created = datetime.now(UTC).replace(microsecond=0)
        return cls(created, socket.gethostname(), version, "fieldkit", author, location, comment)


@dataclass(frozen=True)
class MhlEntry:
    """One file's hashes in one generation.

    Parameters
    ----------
    path : str
        POSIX path relative to the archive root (no ``..``, no control characters).
    size_bytes : int or None
        File size in bytes; ``None`` only when read from a manifest that omits it.
    hashes : dict of str to str
        Format (one of :data:`HASH_FORMATS`) to lowercase hex or C4 value.
    mtime : datetime or None
        Aware last-modification time of the file.
    action : {"original", "verified", "failed"}
        What this generation did with the hashes.
    hashed_at : datetime or None
        When the hashes were computed; written as the generation's creation date if ``None``.
    """

    path: str
    size_bytes: int | None
    hashes: Mapping[str, str] = field(default_factory=dict)
    mtime: datetime | None = None
    action: Action = "original"
    hashed_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_path(self.path)
        if self.size_bytes is not None and self.size_bytes < 0:
            raise ValidationError(f"{self.path}: size_bytes {self.size_bytes} is negative.")
        if self.action not in ACTIONS:
            raise UnknownNameError("MHL action", self.action, ACTIONS)
        _require_aware(self.mtime, f"{self.path}: mtime")
        _require_aware(self.hashed_at, f"{self.path}: hashed_at")
        object.__setattr__(self, "hashes", dict(self.hashes))  # never alias the caller's dict
        self._check_hashes()

    def _check_hashes(self) -> None:
        if not self.hashes:
            raise ValidationError(f"{self.path}: an MHL entry needs at least one hash.")
        for name, value in self.hashes.items():
            if name not in HASH_FORMATS:
                raise UnknownNameError("hash format", name, HASH_FORMATS)
            if not _HASH_VALUE.fullmatch(value):
                raise ValidationError(f"{self.path}: {name} value {value!r} is not hex or base58.")


@dataclass(frozen=True)
class Generation:
    """A manifest as read back: ``sequence`` is ``None`` if its file name is not ASC-style."""

    path: Path
    sequence: int | None
    process: str
    creator: CreatorInfo
    entries: tuple[MhlEntry, ...]


@dataclass(frozen=True)
class ChainLink:
    """One ``<hashlist>`` of the chain file: a manifest's file name and C4 id."""

    sequence: int
    path: str
    c4: str
