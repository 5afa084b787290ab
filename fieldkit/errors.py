"""One rooted error hierarchy for fieldkit.

Every error a user can cause or meet derives from :class:`FieldkitError`. Subclasses also
inherit the builtin they resemble (``FileNotFoundError``, ``ValueError``...) so callers that
catch the builtin keep working. Each error carries an ``exit_code`` used by the CLI, and its
``str()`` is a complete, one-line message: what was expected, what was found, what to do next.
"""

from __future__ import annotations

import errno
import os

__all__ = [
    "FieldkitError",
    "InputUnavailableError",
    "OutputUnavailableError",
    "CatalogueBusyError",
    "CatalogueUnavailableError",
    "CatalogueDamagedError",
    "translate",
    "ConfigError",
    "WorkspaceNotFoundError",
    "WorkspaceExistsError",
    "CatalogueError",
    "MigrationError",
    "NotFoundError",
    "ValidationError",
    "IngestError",
    "IngestLockedError",
    "CardChangedError",
    "InsufficientSpaceError",
    "AudioFormatError",
    "MetadataError",
    "TimeReconciliationError",
    "ProcessingError",
    "ClusterUnavailableError",
    "RunInterruptedError",
    "RunStorageUnavailableError",
    "StoreError",
    "StorageUnavailableError",
    "ObjectExistsError",
    "ExportError",
    "UnknownNameError",
    "UnknownWorkflowError",
    "EXIT_OK",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "EXIT_DATAERR",
    "EXIT_NOINPUT",
    "EXIT_CANTCREAT",
    "EXIT_TEMPFAIL",
    "EXIT_CONFIG",
    "EXIT_PARTIAL",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
]

#: Exit codes, documented in the README. The sysexits(3) numbers are used where one fits.
EXIT_OK = 0
EXIT_ERROR = 1  # unexpected error (a bug: please report it)
EXIT_USAGE = 2  # bad command line (Click's own)
EXIT_PARTIAL = 3  # the command ran, but some files were quarantined, truncated or failed
EXIT_DATAERR = getattr(os, "EX_DATAERR", 65)  # input data invalid
EXIT_NOINPUT = getattr(os, "EX_NOINPUT", 66)  # input missing (file, workspace, recording)
EXIT_CANTCREAT = getattr(os, "EX_CANTCREAT", 73)  # output cannot be created
EXIT_TEMPFAIL = getattr(os, "EX_TEMPFAIL", 75)  # retry later (lock held, cluster gone)
EXIT_CONFIG = getattr(os, "EX_CONFIG", 78)  # configuration error
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT): the shell's 128 + signal number
EXIT_TERMINATED = 143  # SIGTERM (kill, a scheduler's stop): 128 + 15


class FieldkitError(Exception):
    """Base of every error fieldkit raises on purpose.

    Parameters
    ----------
    message : str
        What was expected and what was found, as one sentence.
    hint : str, optional
        The next step for the user.
    path : str or os.PathLike, optional
        The file, folder or URL the error is about, when there is one.
    """

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None, path: str | os.PathLike[str] | None = None) -> None:
        self.message = message
        self.hint = hint
        self.path = None if path is None else os.fspath(path)
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip() if self.hint else self.message

    def to_dict(self) -> dict[str, object]:
        """The JSON error document of the CLI: ``{"error", "code", "hint", "path"}``."""
        path = self.path
        if path is None:  # an error raised ``from`` an OSError is about that error's file
            path = getattr(self.__cause__, "filename", None)
        return {"error": self.message, "code": self.exit_code, "hint": self.hint,
                "path": None if path is None else os.fsdecode(path)}


class ConfigError(FieldkitError, ValueError):
    """A setting or a workflow file is invalid."""

    exit_code = EXIT_CONFIG


class WorkspaceNotFoundError(FieldkitError, FileNotFoundError):
    """No fieldkit workspace at or above the given place."""

    exit_code = EXIT_NOINPUT


class WorkspaceExistsError(FieldkitError, FileExistsError):
    """``fieldkit init`` on a directory that already holds a workspace."""

    exit_code = EXIT_CANTCREAT


class CatalogueError(FieldkitError):
    """The catalogue cannot be opened, read or written."""

    exit_code = EXIT_ERROR


class CatalogueBusyError(CatalogueError):
    """Another process holds the catalogue's write lock for longer than the busy timeout."""

    exit_code = EXIT_TEMPFAIL


class CatalogueUnavailableError(CatalogueError):
    """The catalogue server cannot be reached, or its connection kept failing (H4); what was
    committed is kept and the same command resumes."""

    exit_code = EXIT_TEMPFAIL


class CatalogueDamagedError(CatalogueError):
    """The catalogue file is damaged or is not a database."""

    exit_code = EXIT_DATAERR


class MigrationError(CatalogueError):
    """The catalogue schema is not at the version this fieldkit expects."""

    exit_code = EXIT_CONFIG


class NotFoundError(FieldkitError, LookupError):
    """A named thing (recording, run, dataset...) is not in the catalogue."""

    exit_code = EXIT_NOINPUT


class ValidationError(FieldkitError, ValueError):
    """Tabular or file input failed validation."""

    exit_code = EXIT_DATAERR


class IngestError(FieldkitError):
    """An ingest cannot start or cannot continue."""

    exit_code = EXIT_ERROR


class IngestLockedError(IngestError):
    """Another ingest holds the workspace lock."""

    exit_code = EXIT_TEMPFAIL


class CardChangedError(IngestError):
    """A resume was attempted on a card whose identity or inventory changed."""

    exit_code = EXIT_DATAERR


class InputUnavailableError(FieldkitError, OSError):
    """An input file or folder is missing or cannot be read (an ``OSError`` named at the edge)."""

    exit_code = EXIT_NOINPUT


class OutputUnavailableError(FieldkitError, OSError):
    """An output cannot be written: read-only, not permitted, in the way, or the disk is full."""

    exit_code = EXIT_CANTCREAT


class InsufficientSpaceError(IngestError, OSError):
    """Not enough free space at the destination."""

    exit_code = EXIT_CANTCREAT


class AudioFormatError(FieldkitError, ValueError):
    """A file is not audio fieldkit can read (raised by readers; ingest records a reason)."""

    exit_code = EXIT_DATAERR


class MetadataError(FieldkitError, ValueError):
    """Recorder metadata could not be parsed."""

    exit_code = EXIT_DATAERR


class TimeReconciliationError(FieldkitError, ValueError):
    """A local time cannot be turned into UTC without guessing (nonexistent or ambiguous)."""

    exit_code = EXIT_DATAERR


class ProcessingError(FieldkitError):
    """A processing run failed."""

    exit_code = EXIT_ERROR


class ClusterUnavailableError(ProcessingError):
    """The Dask scheduler cannot be reached, or a LocalCluster's workers fail to start."""

    exit_code = EXIT_TEMPFAIL


class RunInterruptedError(ProcessingError):
    """A processing run stopped by SIGINT (Ctrl-C) or SIGTERM; its run row says ``interrupted``.

    Parameters
    ----------
    run_id : int
        The run to give to ``fieldkit process WORKFLOW --resume``.
    signal_name : str
        ``SIGINT`` or ``SIGTERM``: the exit code is 130 or 143 (128 + the signal's number).
    clips_done, n_clips : int
        Clips the store holds complete, of the run's total.
    """

    exit_code = EXIT_INTERRUPTED

    def __init__(self, run_id: int, signal_name: str = "SIGINT", clips_done: int = 0, n_clips: int = 0) -> None:
        self.run_id, self.signal_name = run_id, signal_name
        self.clips_done, self.n_clips = clips_done, n_clips
        self.exit_code = EXIT_TERMINATED if signal_name == "SIGTERM" else EXIT_INTERRUPTED
        super().__init__(f"interrupted by {signal_name}: run {run_id} is resumable ({clips_done} of {n_clips} "
                         "clips stored).", hint=f"fieldkit process WORKFLOW --resume {run_id}")


class StorageUnavailableError(FieldkitError, ConnectionError):
    """A storage endpoint (an ``s3://`` root's server) could not be reached; retry later."""

    exit_code = EXIT_TEMPFAIL


class RunStorageUnavailableError(RunInterruptedError):
    """A processing run stopped because its archive's or its store's storage stopped answering.

    Its run row says ``interrupted``; the exit code is 75 (temporary): resumed with ``--resume``
    once the storage answers, it computes only the clips its store does not hold.

    Parameters
    ----------
    run_id : int
        The run to give to ``fieldkit process WORKFLOW --resume``.
    where : str
        The roots the run reads and writes (URLs redacted), named in the message.
    cause : str
        The error the storage client met, shortened.
    clips_done : int or None
        Clips the store holds complete (None when it could not be read either), of ``n_clips``.
    """

    def __init__(self, run_id: int, where: str, cause: str, clips_done: int | None, n_clips: int) -> None:
        self.run_id, self.signal_name = run_id, ""
        self.clips_done, self.n_clips = clips_done or 0, n_clips
        self.exit_code = EXIT_TEMPFAIL
        stored = f"{clips_done} of {n_clips} clips stored" if clips_done is not None else \
            f"{n_clips} clips planned; the store could not be read either"
        ProcessingError.__init__(
            self, f"the storage of {where} stopped answering ({cause}): run {run_id} stopped and is "
                  f"resumable ({stored}).",
            hint=f"Check the endpoint and the network ('fieldkit config show'); when it answers: "
                 f"fieldkit process WORKFLOW --resume {run_id}", path=where)


class ObjectExistsError(FieldkitError, FileExistsError):
    """A create-only write found its name taken: the archive is never overwritten."""

    exit_code = EXIT_CANTCREAT


class StoreError(FieldkitError):
    """A Zarr store is missing, misaligned or inconsistent."""

    exit_code = EXIT_ERROR


class ExportError(FieldkitError):
    """An export cannot be written."""

    exit_code = EXIT_CANTCREAT


class UnknownNameError(FieldkitError, KeyError):
    """A name looked up in a registry is unknown; the message lists the known names."""

    exit_code = EXIT_USAGE

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]) -> None:
        self.kind, self.name, self.known = kind, name, tuple(sorted(known))
        super().__init__(
            f"unknown {kind} {name!r}; known: {', '.join(self.known) or '(none)'}."
        )

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class UnknownWorkflowError(UnknownNameError, NotFoundError):
    """A bare workflow name that neither the workspace nor fieldkit has; lists the known names.

    Missing input (exit 66, like a missing workflow file), not a usage error: the name is
    looked up on disk, the way a path is.
    """

    exit_code = EXIT_NOINPUT


#: SQLite's messages (``sqlite3_errstr``) for the catalogue faults a user can meet and fix.
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
_SQLITE_DAMAGED = ("database disk image is malformed", "file is not a database")
_SQLITE_FULL = ("database or disk is full",)
_SQLITE_READONLY = ("attempt to write a readonly database",)
_SQLITE_CANTOPEN = ("unable to open database file",)
_RESTORE_HINT = ("Restore the catalogue from a backup (catalogue.sqlite.bak-* next to it), or recover what is "
                 "readable with 'sqlite3 catalogue.sqlite .recover'; the archive's manifests are untouched.")


def translate(exc: BaseException) -> FieldkitError | None:
    """The :class:`FieldkitError` that a foreseeable fault means, or None for an unforeseen one.

    Only faults that can be named are translated: missing or unreadable input, a destination
    that is read-only, not permitted, in the way or full, and a catalogue that is busy or
    damaged. Anything else (a bug) returns None and keeps its traceback.

    Parameters
    ----------
    exc : BaseException
        The exception that reached the command line; SQLAlchemy's wrappers are looked through
        (their ``orig`` is the driver's error).
    """
    if isinstance(exc, FieldkitError):
        return exc
    orig = getattr(exc, "orig", None)  # sqlalchemy.exc.DBAPIError wraps the driver's error
    for candidate in (exc, orig) if orig is not None else (exc,):
        if isinstance(candidate, OSError):
            found = _from_os_error(candidate)
        else:
            found = _from_sqlite_error(candidate)
        if found is not None:
            found.__cause__ = exc
            return found
    return None


def _from_os_error(exc: OSError) -> FieldkitError | None:
    name = os.fsdecode(exc.filename) if exc.filename is not None else None
    where = name or "a file"
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOENT:
        return InputUnavailableError(f"{where} does not exist ({reason}).",
                                     hint="Check the path and run the command again.", path=name)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputUnavailableError(f"cannot write {where}: {reason}.",
                                      hint="Free space on that volume and run the command again.", path=name)
    if exc.errno == errno.EROFS:
        return OutputUnavailableError(f"cannot write {where}: the file system is read-only.",
                                      hint="Give a writable destination, or remount it read-write.", path=name)
    if exc.errno in (errno.EACCES, errno.EPERM):
        if name is not None and os.path.exists(name) and not os.access(name, os.R_OK):
            return InputUnavailableError(f"cannot read {where}: {reason}.",
                                         hint="Give yourself read permission on it, or run as its owner.",
                                         path=name)
        return OutputUnavailableError(f"cannot write {where}: {reason}.",
                                      hint="Give a destination you may write to.", path=name)
    if exc.errno == errno.EFBIG:  # a FAT file system's 4 GiB - 1 per file, a quota's file-size limit
        return OutputUnavailableError(f"cannot write {where}: it would be larger than its file system holds ({reason}).",
                                      hint="Write to a file system without this limit (exFAT, NTFS, ext4), or in "
                                           "smaller files.", path=name)
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        # Something is in the way of a path fieldkit creates (a file where a folder belongs).
        return OutputUnavailableError(f"cannot create {where}: {reason}.",
                                      hint="Move the file or folder that is in the way, then run again.", path=name)
    return None


def _from_sqlite_error(exc: BaseException) -> FieldkitError | None:
    import sqlite3  # stdlib, and only on the error path

    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    text = str(exc).lower()
    if any(m in text for m in _SQLITE_BUSY):
        return CatalogueBusyError(f"the catalogue is busy: another process holds its lock ({exc}).",
                                  hint="Wait for the other fieldkit command to finish, then run this one again.")
    if any(m in text for m in _SQLITE_DAMAGED):
        return CatalogueDamagedError(f"the catalogue is damaged: {exc}.", hint=_RESTORE_HINT)
    if any(m in text for m in _SQLITE_FULL):
        return OutputUnavailableError(f"cannot write the catalogue: {exc}; the transaction was rolled back.",
                                      hint="Free space on the catalogue's volume and run the command again.")
    if any(m in text for m in _SQLITE_READONLY):
        return OutputUnavailableError(f"cannot write the catalogue: {exc}.",
                                      hint="Give write permission on the catalogue file and its folder.")
    if any(m in text for m in _SQLITE_CANTOPEN):  # in WAL mode even a reader creates -wal and -shm files
        return OutputUnavailableError(f"cannot open the catalogue: {exc}.",
                                      hint="Its folder must exist and be writable (not a read-only mount): SQLite "
                                      "creates catalogue.sqlite-wal and -shm next to it, even to read.")
    return None
