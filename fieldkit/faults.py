"""Fault injection for the crash tests: ``FIELDKIT_CRASH_AT=point[:n]`` SIGKILLs this process
the n-th time (default 1st) it reaches ``point``. Unset in normal use: a dictionary lookup."""

from __future__ import annotations

import os
import signal

__all__ = ["crashpoint", "CRASH_ENV"]

CRASH_ENV = "FIELDKIT_CRASH_AT"
_seen: dict[str, int] = {}


def crashpoint(point: str) -> None:
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _seen[point] = _seen.get(point, 0) + 1
    if _seen[point] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
