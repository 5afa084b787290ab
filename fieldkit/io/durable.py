"""Durability of what is written: the one ``fsync`` of a file, and of a folder.

A new name (a link, a rename, a created file) survives a power loss only once the directory that
holds it is synced, not just the file itself; the archive placement of an ingest, the MHL
manifest generations and ``fieldkit init`` all rely on it.
"""

from __future__ import annotations

import os

__all__ = ["fsync_dir", "fsync_file", "fsync_new_tree"]


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


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush one file's data and metadata to stable storage (an fsync of its own descriptor)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_new_tree(path: str | os.PathLike[str], *, up_to: str | os.PathLike[str]) -> None:
    """Make a newly written file or folder tree durable, with its name: every file and folder in
    it, then each folder above it up to and including ``up_to`` (the first that existed before).

    Parameters
    ----------
    path : path-like
        What was created: a file, or a folder whose whole content is new.
    up_to : path-like
        An ancestor of ``path`` that already existed; its entries (the new name) are synced last.
    """
    path, up_to = os.path.abspath(path), os.path.abspath(up_to)
    if os.path.isdir(path) and not os.path.islink(path):
        for folder, _, names in os.walk(path, topdown=False):  # contents before the folder holding them
            for name in names:
                if not os.path.islink(os.path.join(folder, name)):
                    fsync_file(os.path.join(folder, name))
            fsync_dir(folder)
    elif not os.path.islink(path):
        fsync_file(path)
    folder = os.path.dirname(path)
    while True:  # each new name is durable once the folder holding it is synced
        fsync_dir(folder)
        if folder == up_to or folder == os.path.dirname(folder):
            break
        folder = os.path.dirname(folder)
