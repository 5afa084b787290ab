"""SIGINT and SIGTERM while ``fieldkit process`` runs: noted by a handler, acted on by the driver.

Python's default SIGINT handler raises ``KeyboardInterrupt`` wherever the main thread happens to
be: inside a catalogue transaction, inside distributed's ``sync()`` (whose coroutine then keeps
running on the IO-loop thread), or halfway through closing the cluster, which leaves that
thread running while the interpreter finalises. The handler here only records the signal; the
driver looks at it between tasks (:meth:`StopSignals.requested`), cancels what is pending,
closes the cluster and marks the run ``interrupted``. Nothing is raised from a handler, nothing
in a handler takes a lock, and the previous handlers are put back on exit.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Self

__all__ = ["StopSignals"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Record SIGINT/SIGTERM for the duration of a ``with`` block (main thread only).

    Off the main thread (where Python cannot install handlers, e.g. a run started from a
    thread of a notebook server) the block records nothing and the process keeps its handlers.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> Self:
        """Note SIGINT and SIGTERM from now on (on the main thread; elsewhere nothing changes)."""
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                if signal.getsignal(sig) is signal.SIG_IGN:  # e.g. SIGINT of a job started with '&'
                    continue
                self._previous[sig] = signal.signal(sig, self._note)
        return self

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        # Only an attribute store: a handler runs between two bytecodes of the main thread,
        # possibly while it holds a lock that anything more would need.
        if self.signum is None:
            self.signum = signum

    @property
    def requested(self) -> bool:
        """Whether a stop signal has arrived."""
        return self.signum is not None

    @property
    def name(self) -> str:
        """``SIGINT`` or ``SIGTERM`` (``SIGINT`` when none arrived)."""
        return signal.Signals(self.signum or signal.SIGINT).name
