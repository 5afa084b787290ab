"""Recorder metadata sources, registered by name: the one registry the reader walks.

A source is what :func:`fieldkit.io.recorders.read_recorder_metadata` consults for one file. It
names the RIFF chunks it reads and turns their bodies (and the file name) into a
:class:`Reading`, calling the pure parsers of this package (functions of bytes or text, imported
by name where they are used). The reader walks :func:`sources` in the declared
:data:`PRIORITY`; for every field the first source that offers a value wins, and everything each
source read is kept. A new recorder format is one source (and its parser): see
docs/where-to-change-what.md.

    from fieldkit.io.recorders import registry
    registry.get_source("guano")           # UnknownNameError lists the known names on a miss
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fieldkit.errors import UnknownNameError
from fieldkit.model.metadata import TimeCandidate

__all__ = [
    "PRIORITY",
    "Reading",
    "Source",
    "SourceInput",
    "get_source",
    "register_source",
    "source_names",
    "sources",
    "unregister_source",
]

#: The order in which the reader consults the sources. GUANO first (structured, written by the
#: firmware), then LIST/INFO (the AudioMoth comment and ``IART``), then ``wamd``, then ``bext``
#: and iXML; the file name last, because reading it needs to know whether the file is an
#: AudioMoth's (hex names) and whether GUANO kept the original name.
PRIORITY: tuple[str, ...] = ("guano", "info", "wamd", "bext", "ixml", "filename")


# --- sources ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceInput:
    """What a source is given for one file.

    Attributes
    ----------
    bodies : mapping of str to tuple of bytes
        Chunk id -> the bodies of the chunks with that id, in file order, each capped at 4 MiB;
        empty for a file that is not RIFF.
    filename : str
        The recording's original file name.
    found : mapping
        The values offered so far by sources earlier in the priority (read-only).
    raw : mapping
        The ``raw`` entries kept so far by earlier sources (read-only).
    """

    bodies: Mapping[str, tuple[bytes, ...]]
    filename: str
    found: Mapping[str, Any]
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class Reading:
    """What one source read from one file.

    Attributes
    ----------
    values : dict
        Field of :class:`~fieldkit.model.metadata.RecorderMetadata` -> value offered (None and
        ``""`` offer nothing); a value already offered by an earlier source is kept.
    times : tuple of TimeCandidate
        Start times as this source states them.
    raw : dict
        JSON-serialisable entries for ``RecorderMetadata.raw`` (everything parsed).
    flags, warnings : tuple of str
        Warnings already name the source (``"guano: ..."``).
    """

    values: dict[str, Any] = field(default_factory=dict)
    times: tuple[TimeCandidate, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """A registered metadata source: the chunks it reads and the function that reads them."""

    name: str
    chunk_ids: tuple[str, ...]
    read: Callable[[SourceInput], Reading]


_SOURCES: dict[str, Source] = {}
#: The walk order: PRIORITY, then sources registered outside it (at ``before`` or at the end).
_ORDER: list[str] = list(PRIORITY)
_R = TypeVar("_R", bound=Callable[[SourceInput], Reading])


def register_source(
    name: str, chunk_ids: tuple[str, ...] = (), *, before: str | None = None
) -> Callable[[_R], _R]:
    """Register a metadata source under ``name`` (decorator); a second registration fails.

    Parameters
    ----------
    name : str
        Registry key. A name in :data:`PRIORITY` takes its declared place.
    chunk_ids : tuple of str
        RIFF chunk ids (four characters, e.g. ``"guan"``) whose bodies the source reads.
    before : str, optional
        For a name outside :data:`PRIORITY`: the source it is consulted before (so its values
        win over that one's); by default it is consulted last.

    Raises
    ------
    UnknownNameError
        When ``before`` names no source in the walk order.
    """

    def decorate(func: _R) -> _R:
        if name in _SOURCES and _SOURCES[name].read is not func:
            raise ValueError(
                f"source name {name!r} is already registered by {_SOURCES[name].read!r}")
        if name not in _ORDER:
            if before is not None and before not in _ORDER:
                raise UnknownNameError("recorder metadata source", before, list(_ORDER))
            _ORDER.insert(_ORDER.index(before) if before is not None else len(_ORDER), name)
        _SOURCES[name] = Source(name, tuple(chunk_ids), func)
        return func

    return decorate


def unregister_source(name: str) -> None:
    """Remove the source ``name``, registered outside :data:`PRIORITY` (a plug-in, a test).

    Raises
    ------
    UnknownNameError
        When no source of that name is registered.
    ValueError
        For a source of :data:`PRIORITY`: the reader needs every declared source.
    """
    get_source(name)
    if name in PRIORITY:
        raise ValueError(f"source {name!r} is declared in registry.PRIORITY and cannot be removed.")
    del _SOURCES[name]
    _ORDER.remove(name)


def get_source(name: str) -> Source:
    """Return the source registered as ``name``.

    Raises
    ------
    UnknownNameError
        With the known names in its message.
    """
    try:
        return _SOURCES[name]
    except KeyError:
        raise UnknownNameError("recorder metadata source", name, list(_SOURCES)) from None


def sources() -> tuple[Source, ...]:
    """The registered sources in the order the reader consults them (declared priority first).

    Raises
    ------
    UnknownNameError
        When a name of :data:`PRIORITY` has no registered source (the package was not imported).
    """
    return tuple(get_source(name) for name in _ORDER)


def source_names() -> tuple[str, ...]:
    """Registered source names, in the order the reader consults them."""
    return tuple(name for name in _ORDER if name in _SOURCES)
