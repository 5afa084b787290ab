"""The retry policy of catalogue writes on a server (docs/reliability.md, H4): one home.

A PostgreSQL write can fail for reasons that go away: a serialization failure or a deadlock
(SQLSTATE ``40001``, ``40P01``: the server rolled the transaction back, retrying is the documented
answer), or a lost connection (the server restarted, an administrator terminated the backend, the
network dropped). A connection lost *during COMMIT* leaves the outcome unknown: the transaction
may have committed. fieldkit's writes are keyed naturally (a recording by its content hash, a
card file by (session, raw path), a run's derivative rows by (run, recording, channel)), so
running the same write again is safe; where a write creates a row without such a key (a new
processing run), the caller gives ``landed``, which looks the row up by what the write set, and
a retry after a lost connection returns the row that landed instead of writing a second one.

Retries back off exponentially with jitter; when they run out the command stops with
:class:`~fieldkit.errors.CatalogueUnavailableError` (exit 75): what was committed is kept and the
same command resumes. SQLite catalogues are never retried here (their lock waits are the busy
timeout's business, :mod:`fieldkit.catalogue.engine`), so their behaviour and speed are unchanged.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from fieldkit.config.settings import redact_url
from fieldkit.errors import CatalogueUnavailableError

if TYPE_CHECKING:
    import contextlib

    from sqlalchemy.orm import Session


class Catalogue(Protocol):
    """What a retried write needs of :class:`fieldkit.catalogue.engine.Catalogue` (which imports
    this module: a protocol, not an import, keeps the two free of a cycle)."""

    url: str

    def write(self) -> contextlib.AbstractContextManager[Session]: ...

    def read(self) -> contextlib.AbstractContextManager[Session]: ...

__all__ = ["RetryPolicy", "DEFAULT_POLICY", "transient_kind", "write_with_retry", "unavailable"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: serialization_failure, deadlock_detected: the server rolled back; run the transaction again.
RETRY_SQLSTATES = frozenset({"40001", "40P01"})
#: connection_exception (08…), operator intervention (57P01 admin shutdown / terminated backend,
#: 57P02 crash shutdown, 57P03 cannot connect now).
CONNECTION_SQLSTATES = ("08", "57P")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a catalogue write."""

    attempts: int = 6
    first_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def delays(self) -> Iterator[float]:
        """The waits between attempts: exponential, with full jitter (two writers that failed
        together do not retry together)."""
        for attempt in range(self.attempts - 1):
            yield random.uniform(0.5, 1.0) * min(self.max_delay_s, self.first_delay_s * 2 ** attempt)


DEFAULT_POLICY = RetryPolicy()


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def transient_kind(exc: BaseException) -> str | None:
    """``"serialization"``, ``"connection"``, or None when retrying cannot help."""
    for e in _chain(exc):
        if isinstance(e, CatalogueUnavailableError):
            return "connection"
        orig = e.orig if isinstance(e, sa.exc.DBAPIError) else e
        state = getattr(orig, "sqlstate", None)
        if state in RETRY_SQLSTATES:
            return "serialization"
        if isinstance(e, sa.exc.DBAPIError) and e.connection_invalidated:
            return "connection"
        if state and state.startswith(CONNECTION_SQLSTATES):
            return "connection"
        if state is None and type(orig).__name__ == "OperationalError" and isinstance(e, sa.exc.OperationalError):
            return "connection"  # psycopg raises these without a SQLSTATE: refused, closed, timed out
    return None


def unavailable(url: str, exc: BaseException, *, attempts: int | None = None) -> CatalogueUnavailableError:
    """The error a command stops with when the catalogue server stays out of reach."""
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    tried = f" after {attempts} attempts" if attempts else ""
    return CatalogueUnavailableError(
        f"the catalogue {redact_url(url)} is out of reach{tried} ({first}); what was committed "
        "before is kept.",
        hint="Check that the PostgreSQL server is up and reachable, then run the same command again: it resumes.")


def write_with_retry(catalogue: Catalogue, work: Callable[[Session], T], *,
                     landed: Callable[[Session], T | None] | None = None,
                     on_retry: Callable[[], None] | None = None, what: str = "write",
                     policy: RetryPolicy = DEFAULT_POLICY) -> T:
    """Run ``work`` in one writer transaction, retrying transient server failures.

    Parameters
    ----------
    catalogue
        The catalogue; on SQLite ``work`` runs once, as in ``with catalogue.write()``.
    work
        The transaction's body; must be safe to run again (naturally keyed writes).
    landed
        After a lost connection: looks up, in a fresh session, whether the write committed
        after all and returns its result (None: it did not, write again).
    on_retry
        Called before each new attempt (e.g. to forget ids cached from a rolled-back attempt).
    what
        Named in the log line of each retry.
    policy
        Attempts and back-off.

    Raises
    ------
    CatalogueUnavailableError
        When every attempt failed on a transient error (exit 75; the command resumes).
    """
    if make_url(catalogue.url).get_backend_name() == "sqlite":
        with catalogue.write() as s:
            return work(s)
    delays = policy.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            with catalogue.write() as s:
                return work(s)
        except Exception as exc:
            kind = transient_kind(exc)
            if kind is None:
                raise
            delay = next(delays, None)
            if delay is None:
                raise unavailable(catalogue.url, exc, attempts=attempt) from exc
            log.warning("catalogue %s failed (%s: %s); attempt %d of %d in %.1f s", what, kind,
                        str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else "",
                        attempt + 1, policy.attempts, delay)
            time.sleep(delay)
            if on_retry is not None:
                on_retry()
            if kind == "connection" and landed is not None:
                try:
                    with catalogue.read() as s:
                        found = landed(s)
                except Exception as again:
                    if transient_kind(again) is None:
                        raise
                    continue  # still unreachable: the next attempt writes (or fails) again
                if found is not None:
                    return found
