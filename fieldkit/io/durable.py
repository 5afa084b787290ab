"""Durability of what is written to a directory: the one ``fsync`` of a folder.

A new name (a link, a rename, a created file) survives a power loss only once the directory that
holds it is synced, not just the file itself; the archive placement of an ingest and the MHL
manifest generations both rely on it.
"""

from __future__ import annotations

import os

__all__ = ["fsync_dir"]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush the entries of directory ``path`` to stable storage.

    Parameters
    ----------
    path : path-like
        An existing directory. On non-POSIX systems (Windows) a directory cannot be opened for
        ``fsync`` and this does nothing.
    """
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
