"""Where annotated audio lives: file references resolved safely, and labels read from file names.

An annotation table names its audio (Raven ``Begin File``, a CSV ``file`` or ``notated_path``
column). Those names come from outside and are resolved only *inside* the dataset root
(docs/reliability.md, G2): ``../../etc/passwd``, ``/etc/passwd``, ``\\\\server\\share\\x.wav``,
``C:\\x.wav``, ``%2e%2e%2fx.wav``, ``file:///x.wav``, NUL bytes and line breaks are refused
with an error naming the reference, before the file system is touched.

Datasets arranged by class (``0_jackson_0.wav``, ``WOTH/rec01.wav``) carry their labels in
their names; :func:`labels_from_names` reads them with a user-supplied regular expression
(``--label-from PATTERN``) and reports the files it could not label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePath, PurePosixPath

from fieldkit.errors import ConfigError, ValidationError

__all__ = ["FileRefError", "NameLabels", "labels_from_names", "resolve_file_ref"]

_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
#: A drive letter (``C:``) or a URL scheme (``file:``, ``https:``) at the start of a reference.
_SCHEME_OR_DRIVE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


class FileRefError(ValidationError):
    """A file reference in an annotation table is unsafe or names no file under the root."""

    def __init__(self, ref: str, reason: str) -> None:
        self.ref, self.reason = ref, reason
        super().__init__(
            f"file reference {ref!r} rejected: {reason}",
            hint="References must be relative paths inside the dataset root, using '/'.",
        )


def _unsafe_reason(ref: str) -> str | None:
    """Why ``ref`` may not be used as a relative path, or None when it is acceptable."""
    if not ref.strip():
        return "it is empty"
    if "\x00" in ref:
        return "it contains a NUL byte"
    if "\n" in ref or "\r" in ref:
        return "it contains a line break"
    if "\\" in ref:
        return "it contains a backslash (UNC or Windows path)"
    if _PERCENT_ESCAPE.search(ref):
        return "it contains URL-encoded characters (%XX)"
    if ref.startswith("/") or _SCHEME_OR_DRIVE.match(ref):
        return "it is absolute (a root, drive letter or URL)"
    if ".." in PurePosixPath(ref).parts:
        return "it climbs out of the root with '..'"
    return None


def resolve_file_ref(ref: str, root: Path, *, must_exist: bool = True) -> Path:
    """Resolve an annotation's file reference to a path inside ``root``.

    Parameters
    ----------
    ref : str
        The reference as written in the table, e.g. ``"Wave/0.wav"``; ``/`` separates folders.
    root : Path
        The dataset root; the result is always inside it (symlinks included).
    must_exist : bool
        Also require the file to exist (default).

    Returns
    -------
    Path
        The resolved absolute path.

    Raises
    ------
    FileRefError
        When the reference is unsafe (``..``, absolute, UNC/backslash, ``%XX``, NUL, line
        break), escapes the root through a symlink, or names no file (``must_exist``).
    """
    reason = _unsafe_reason(ref)
    if reason:
        raise FileRefError(ref, reason)
    base = Path(root).resolve()
    target = (base / ref).resolve()
    if not target.is_relative_to(base):
        raise FileRefError(ref, f"it resolves outside {base} (through a symbolic link)")
    if must_exist and not target.is_file():
        raise FileRefError(ref, f"no such file under {base}")
    return target


class NameLabels(dict[str, str]):
    """Labels by relative path (``/``-separated), plus the paths the pattern did not match.

    Attributes
    ----------
    unmatched : list of str
        Relative paths that received no label, in input order.
    """

    def __init__(self, labels: dict[str, str], unmatched: list[str]) -> None:
        super().__init__(labels)
        self.unmatched = unmatched


def _compile_label_pattern(pattern: str) -> re.Pattern[str]:
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise ConfigError(
            f"--label-from pattern {pattern!r} is not a regular expression: {err}."
        ) from None
    if "label" not in compiled.groupindex:
        raise ConfigError(
            f"--label-from pattern {pattern!r} has no named group 'label'.",
            hint=r"Write the label part as (?P<label>...), e.g. '^(?P<label>\d)_'.",
        )
    return compiled


def labels_from_names(paths: Iterable[str | PurePath], pattern: str) -> NameLabels:
    """Read a label from each file's relative path with a regular expression.

    Parameters
    ----------
    paths : iterable of str or PurePath
        Paths relative to the dataset root. ``PurePath`` objects are compared in their ``/``
        form, so one pattern works on every platform.
    pattern : str
        A regular expression with a named group ``label``, searched (``re.search``) in the
        relative path: ``^(?P<label>\\d)_`` for FSDD's ``0_jackson_0.wav``,
        ``(?P<label>[^/]+)/[^/]+$`` for one folder per class.

    Returns
    -------
    NameLabels
        ``{relative path: label}``; ``.unmatched`` lists the paths that did not match or whose
        ``label`` group was empty.

    Raises
    ------
    ConfigError
        When the pattern does not compile or lacks the ``label`` group.
    """
    compiled = _compile_label_pattern(pattern)
    labels: dict[str, str] = {}
    unmatched: list[str] = []
    for path in paths:
        rel = path.as_posix() if isinstance(path, PurePath) else str(path)
        match = compiled.search(rel)
        if match and match.group("label"):
            labels[rel] = match.group("label")
        else:
            unmatched.append(rel)
    return NameLabels(labels, unmatched)
