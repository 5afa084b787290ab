"""Recorder metadata parsers, registered by name.

Every parser is a pure function of bytes or text (a chunk body, a comment string, a file name).
Parsers register themselves when :mod:`fieldkit.io.recorders` is imported::

    from fieldkit.io.recorders import registry
    parse = registry.get("guano")          # UnknownNameError lists the known names on a miss
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fieldkit.errors import UnknownNameError

__all__ = ["get", "names", "register"]

_PARSERS: dict[str, Callable[..., Any]] = {}
_F = TypeVar("_F", bound=Callable[..., Any])


def register(name: str) -> Callable[[_F], _F]:
    """Register a parser under ``name`` (decorator); a second registration of a name fails.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"audiomoth_comment"``.
    """

    def decorate(func: _F) -> _F:
        if name in _PARSERS and _PARSERS[name] is not func:
            raise ValueError(f"parser name {name!r} is already registered by {_PARSERS[name]!r}")
        _PARSERS[name] = func
        return func

    return decorate


def get(name: str) -> Callable[..., Any]:
    """Return the parser registered as ``name``.

    Raises
    ------
    UnknownNameError
        With the known names in its message.
    """
    try:
        return _PARSERS[name]
    except KeyError:
        raise UnknownNameError("recorder parser", name, list(_PARSERS)) from None


def names() -> tuple[str, ...]:
    """Registered parser names, sorted."""
    return tuple(sorted(_PARSERS))
