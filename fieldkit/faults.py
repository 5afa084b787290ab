"""Fault injection for the crash tests: ``FIELDKIT_CRASH_AT=point[:n]`` SIGKILLs this process
the n-th time (default 1st) it reaches ``point``. Unset in normal use: a dictionary lookup.

``FIELDKIT_PAUSE_AT=point[:n]`` instead *pauses* there: the process writes its pid to the file
named by ``FIELDKIT_PAUSE_FILE`` and waits until a test removes it, having meanwhile done to the
world what it wants to test (H4's tests terminate the catalogue connection of a paused ingest
from another connection, mid-transaction)."""

from __future__ import annotations

import os
import signal
import time

__all__ = ["crashpoint", "CRASH_ENV", "PAUSE_ENV", "PAUSE_FILE_ENV"]

CRASH_ENV = "FIELDKIT_CRASH_AT"
PAUSE_ENV = "FIELDKIT_PAUSE_AT"
PAUSE_FILE_ENV = "FIELDKIT_PAUSE_FILE"
PAUSE_LIMIT_S = 120.0  # a test that never releases the pause does not hang the process forever
_seen: dict[str, int] = {}


def crashpoint(point: str) -> None:
    for env in (CRASH_ENV, PAUSE_ENV):
        spec = os.environ.get(env)
        if not spec:
            continue
        name, _, nth = spec.partition(":")
        if name != point:
            continue
        key = f"{env}:{point}"
        _seen[key] = _seen.get(key, 0) + 1
        if _seen[key] != int(nth or 1) and not (env == CRASH_ENV and _seen[key] > int(nth or 1)):
            continue
        if env == CRASH_ENV:
            os.kill(os.getpid(), signal.SIGKILL)
        _pause(os.environ[PAUSE_FILE_ENV])


def _pause(path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(str(os.getpid()))
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
