"""Durability of what is written: the one ``fsync`` of a file, and of a folder.

A new name (a link, a rename, a created file) survives a power loss only once the directory that
holds it is synced, not just the file itself; the archive placement of an ingest, the MHL
manifest generations and ``fieldkit init`` all rely on it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from fieldkit.errors import ObjectExistsError

__all__ = ["create_once", "fsync_dir", "fsync_file", "fsync_new_tree"]


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


def create_once(path: Path, blocks: Iterable[bytes]) -> None:
    """Create ``path`` from ``blocks`` durably and once: a read-only temporary file beside it,
    fsynced, hard-linked to its name (which fails if the name exists: nothing is replaced, and a
    crash never leaves a partial file under the final name), then the folder fsynced.

    Raises :class:`~fieldkit.errors.ObjectExistsError` when ``path`` exists (the archive's
    create-only write on a local disk, :meth:`fieldkit.io.storage.Root.put_new`).
    """
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise ObjectExistsError(f"{path} already exists: the archive is never overwritten.", path=path)
    temp = path.parent / f".fieldkit-{os.getpid()}-{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        with os.fdopen(fd, "wb") as out:
            for block in blocks:
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        os.link(temp, path)
    except FileExistsError as exc:
        raise ObjectExistsError(f"{path} already exists: the archive is never overwritten.", path=path) from exc
    finally:
        temp.unlink(missing_ok=True)  # our own temporary file, never someone else's
    fsync_dir(path.parent)
