"""One rooted error hierarchy for fieldkit.

Every error a user can cause or meet derives from :class:`FieldkitError`. Subclasses also
inherit the builtin they resemble (``FileNotFoundError``, ``ValueError``...) so callers that
catch the builtin keep working. Each error carries an ``exit_code`` used by the CLI, and its
``str()`` is a complete, one-line message: what was expected, what was found, what to do next.
"""

from __future__ import annotations

import os

__all__ = [
    "FieldkitError",
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
    "StoreError",
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


class FieldkitError(Exception):
    """Base of every error fieldkit raises on purpose."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip() if self.hint else self.message


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
