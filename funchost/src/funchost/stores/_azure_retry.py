"""Transient storage failures: which errors are worth retrying, bounded retries, one warning per outage.

The SDK clients are built with their own retries off, so a stopped Azurite makes a call fail at once
and this module decides: a poller backs off and tries again until storage answers, a checkpoint retries
for a bounded time and then raises ``StorageUnavailableError`` (the engine runs the step again later,
which is safe because a checkpoint deletes nothing before its history is written).

An outage is logged twice: when the first call fails and when the first call succeeds again. What it
costs meanwhile (consumed messages that could not be deleted, and so come back as duplicates) is counted
(``Outage.absorb``) and told in the second line, not logged once per message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from funchost.errors import StorageUnavailableError

logger = logging.getLogger("funchost.stores.azure")

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
FIRST_DELAY = 0.05
MAX_DELAY = 2.0


def is_transient(err: BaseException) -> bool:
    """Connection refused or dropped, a timeout, throttling or a server error: the same call may succeed later."""
    if isinstance(err, (ServiceRequestError, ServiceResponseError, asyncio.TimeoutError, ConnectionError)):
        return True
    if isinstance(err, HttpResponseError):
        return err.status_code in TRANSIENT_STATUS
    return isinstance(err, OSError)


def status_of(err: BaseException) -> int | None:
    return err.status_code if isinstance(err, HttpResponseError) else None


def describe(err: BaseException) -> str:
    """One line about a storage error, without request ids or response bodies."""
    if isinstance(err, HttpResponseError) and err.status_code is not None:
        error_code = getattr(err, "error_code", None)
        error_code = getattr(error_code, "value", error_code)  # the SDKs' StorageErrorCode is an enum
        code = f" {error_code}" if error_code else ""
        return f"HTTP {err.status_code}{code}"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class Outage:
    """Tracks whether storage answers, so an outage is logged once when it starts and once when it ends."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.since: float | None = None
        self._costs: Counter[str] = Counter()

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, err: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            logger.warning("Azure Storage (%s) is not answering (%s); funchost keeps retrying with back-off and "
                           "resumes when it answers again", self.where, describe(err))

    def absorb(self, err: BaseException, cost: str) -> bool:
        """True when ``err`` is this outage's doing (storage is down and the error says so): then ``cost``
        (what it meant, e.g. "consumed messages not deleted (they come back as duplicates)") is
        counted for the recovery line instead of being logged by the caller."""
        if self.since is None or not (isinstance(err, StorageUnavailableError) or is_transient(err)):
            return False
        self._costs[cost] += 1
        return True

    def recovered(self) -> None:
        if self.since is not None:
            costs = "".join(f"; meanwhile, {cost}: {count}" for cost, count in self._costs.items())
            logger.warning("Azure Storage (%s) answers again after %.1f s; resuming%s", self.where,
                           time.monotonic() - self.since, costs)
            self.since = None
            self._costs.clear()


async def with_retry(call: Callable[[], Awaitable[T]], outage: Outage, *, within: float, what: str) -> T:
    """``await call()``, retrying transient failures with back-off for up to ``within`` seconds.

    Raises:
        StorageUnavailableError: storage kept failing transiently for ``within`` seconds.
        Exception: any other failure, unchanged (404, 409, 412... are answers, not outages).
    """
    deadline = time.monotonic() + within
    delay = FIRST_DELAY
    while True:
        try:
            result = await call()
        except Exception as err:
            if not is_transient(err):
                raise
            outage.failed(err)
            if time.monotonic() + delay > deadline:
                raise StorageUnavailableError(
                    f"Azure Storage ({outage.where}) did not answer for {within:.0f} s while {what} "
                    f"({describe(err)}); the step will be retried."
                ) from err
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
            continue
        outage.recovered()
        return result
