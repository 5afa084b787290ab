"""Preflight of a local destination: can fieldkit write there, and how large may one file be?

Checked before any data moves (docs/reliability.md, C4): an ingest's archive and an export's
folder. A read-only file system or a folder the user may not write into is named at once
instead of surfacing as ``EROFS``/``EACCES`` from the first file written; a FAT file system
(a USB stick or SD card as formatted out of the box) cannot hold a file of 4 GiB or more, so an
output that would need one is refused before it is written rather than failing with ``EFBIG``
at the 4 GiB mark with a partial file behind.

The file system is found in ``/proc/self/mountinfo`` by the device number of the destination
(or of its nearest existing parent), which also holds for bind mounts and nested mount points.
Where mountinfo cannot be read (not Linux), the type is unknown and no size limit is assumed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fieldkit.errors import OutputUnavailableError

__all__ = ["FAT_MAX_FILE_BYTES", "Mount", "check_writable", "file_size_limit", "mount_of"]

#: The largest file FAT32 (and FAT16) can hold: a 32-bit size field, 4 GiB - 1 bytes.
FAT_MAX_FILE_BYTES = 4 * 1024**3 - 1
#: Linux file-system type names of the FAT family: the kernel's (``mount -t``) and the FUSE driver
#: fusefat's (mountinfo says ``fuse.fusefat``). exFAT has no such limit.
FAT_TYPES = frozenset({"vfat", "msdos", "fat", "umsdos", "fuse.fusefat"})
_MOUNTINFO = Path("/proc/self/mountinfo")


@dataclass(frozen=True)
class Mount:
    """The file system a path is on: its mount point, type (``vfat``, ``ext4``...) and source."""

    mount_point: str
    fstype: str
    source: str

    @property
    def is_fat(self) -> bool:
        """True on a FAT file system (files of at most 4 GiB - 1 bytes)."""
        return self.fstype in FAT_TYPES


def _existing(path: Path) -> Path:
    """``path`` or its nearest parent that exists (an output folder is often not made yet)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in paths as octal escapes (\040 ...)
    return field.encode().decode("unicode_escape").encode("latin-1").decode("utf-8", "surrogateescape")


def mount_of(path: str | os.PathLike[str]) -> Mount | None:
    """The mount that holds ``path`` (or its nearest existing parent); None where unknown.

    Parameters
    ----------
    path : path-like
        A local file or folder, which need not exist yet.
    """
    where = _existing(Path(path))
    dev = os.stat(where).st_dev
    wanted = f"{os.major(dev)}:{os.minor(dev)}"
    try:
        lines = _MOUNTINFO.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError:
        return None
    mounts = []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 2 and fields[2] == wanted:
            mounts.append(Mount(_unescape(fields[4]), tail[0], _unescape(tail[1])))
    # a device mounted at several places (bind mounts) is one file system: prefer the deepest
    # mount point above the path, for the message
    holding = [m for m in mounts if os.path.commonpath([str(where), m.mount_point]) == m.mount_point]
    return max(holding or mounts, key=lambda m: len(m.mount_point), default=None)


def file_size_limit(path: str | os.PathLike[str], fat_max_bytes: int = FAT_MAX_FILE_BYTES) -> tuple[int, Mount] | None:
    """The largest single file the file system of ``path`` can hold, with its mount; None when
    it sets no limit fieldkit can meet (anything but FAT).

    Parameters
    ----------
    path : path-like
        The destination (need not exist yet).
    fat_max_bytes : int
        The limit of a FAT file system, in bytes; 4 GiB - 1. Tests lower it to try the refusal
        with small files on a real FAT mount.
    """
    mount = mount_of(path)
    if mount is None or not mount.is_fat:
        return None
    return fat_max_bytes, mount


def check_writable(path: str | os.PathLike[str], what: str) -> None:
    """Raise :class:`~fieldkit.errors.OutputUnavailableError` (exit 73) unless fieldkit may create
    files in ``path`` (or, where it does not exist yet, in its nearest existing parent).

    Parameters
    ----------
    path : path-like
        The destination folder.
    what : str
        What it is for the message ("the archive", "the export folder").
    """
    where = _existing(Path(path))
    folder = where if where.is_dir() else where.parent
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        raise OutputUnavailableError(
            f"cannot write {what} at {path}: {folder} is on a read-only file system; nothing was written.",
            hint="Give a writable destination, or remount it read-write, then run again.", path=folder)
    if not where.is_dir():
        raise OutputUnavailableError(
            f"cannot write {what} at {path}: {where} is a file, not a folder; nothing was written.",
            hint="Move the file that is in the way, or choose another destination.", path=where)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputUnavailableError(
            f"cannot write {what} at {path}: permission denied on {folder} (user id {os.geteuid()}); "
            "nothing was written.",
            hint="Give yourself write permission on that folder, or choose another destination.", path=folder)
