"""The stop-signal guard of ``fieldkit process``: real signals sent to this process."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from fieldkit.pipeline.stopping import StopSignals


@pytest.mark.reliability("D3")
def test_a_signal_is_noted_not_raised_and_the_handlers_come_back():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with StopSignals() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)  # the default action would end pytest here
        os.kill(os.getpid(), signal.SIGINT)  # the default handler would raise KeyboardInterrupt
        for _ in range(1000):  # handlers run between bytecodes of the main thread
            if stop.requested:
                break
        assert (stop.requested, stop.name) == (True, "SIGTERM")  # the first signal is the one named
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopSignals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_off_the_main_thread_nothing_is_installed():
    seen = []
    thread = threading.Thread(target=lambda: seen.append(StopSignals().install()._previous))
    thread.start()
    thread.join()
    assert seen == [{}]
