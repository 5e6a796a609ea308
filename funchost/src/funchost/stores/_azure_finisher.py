"""The end of a checkpoint that is durable already: the instance's status row, then the deletions.

Once a checkpoint's history and sentinel are written, the step is safe: what is left (step 3, the
``{Hub}Instances`` row that status queries read, and step 4, deleting the messages it consumed) only
saves work after a crash. It is done here, off the engine's path, per instance in the order of its
steps, ``DELAY`` after the first step that left work: a running instance's newer row replaces one not
written yet, so a chain of steps writes its row once, not once per step, and the storage calls the
engine waits for do not queue behind these. Reads of one instance go to its sentinel, and a query
first waits for what is pending (``settle``), so this host's queries read its own writes.

A crash before this is done leaves the consumed messages in their queues: they come back when their
leases run out (the delay is far shorter than a lease), the engine drops them as duplicates, and that
step writes the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from funchost.stores._azure_delivery import Lease, QueueHandle
from funchost.stores._azure_payloads import refs_of
from funchost.stores._azure_retry import Outage, describe

logger = logging.getLogger("funchost.stores.azure")

DELAY = 0.25
Row = dict[str, Any]


@dataclass
class _Work:
    row: Row | None = None
    leases: list[tuple[QueueHandle, Lease | None]] = field(default_factory=list)
    stale: set[str] = field(default_factory=set)


class Finisher:
    """Steps 3 and 4 of durable checkpoints, per key (an instance or entity id), off the engine's path."""

    def __init__(self, write_row: Callable[[Row], Awaitable[None]],
                 consume: Callable[[QueueHandle, Lease | None], Awaitable[None]],
                 drop_value: Callable[[str, str], Awaitable[None]], outage: Outage) -> None:
        self._write_row = write_row
        self._outage = outage
        self._consume = consume
        self._drop_value = drop_value
        self._work: dict[str, _Work] = {}
        self._drainers: dict[str, asyncio.Task[None]] = {}
        self._hurry = asyncio.Event()  # set while callers wait for everything to be finished
        self._hurrying = 0

    def add(self, key: str, row: Row | None, leases: list[tuple[QueueHandle, Lease | None]],
            stale: frozenset[str]) -> None:
        if row is None and not leases and not stale:
            return
        work = self._work.setdefault(key, _Work())
        if row is not None:
            work.row = row  # only the newest row matters
        work.leases.extend(leases)
        work.stale.update(stale)
        if key not in self._drainers:
            self._drainers[key] = asyncio.create_task(self._drain(key), name=f"funchost-finish-{key}")

    async def _drain(self, key: str) -> None:
        try:
            while True:
                if not self._hurry.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._hurry.wait(), DELAY)
                work = self._work.pop(key, None)
                if work is not None:
                    await self._finish(key, work)
                if key not in self._work:
                    del self._drainers[key]  # no await since the check: add() starts a new drainer
                    return
        except BaseException:
            self._drainers.pop(key, None)
            raise

    async def _finish(self, key: str, work: _Work) -> None:
        stale = set(work.stale)
        if work.row is not None:
            try:
                await self._write_row(work.row)
            except Exception as err:
                # The consumed messages stay in their queues: they come back when their leases run out, the
                # step is replayed (its events are duplicates by then) and that replay writes the row.
                if self._outage.absorb(err, "status rows not updated (they are when the steps' messages come "
                                            "back)"):
                    return
                logger.warning("instance %s: its status row was not updated (%s); it will be when the step's "
                               "messages are delivered again", key, describe(err))
                return
            stale -= refs_of(work.row)
        await asyncio.gather(*(self._consume(handle, lease) for handle, lease in work.leases))
        await asyncio.gather(*(self._drop_value(key, value) for value in stale))

    async def settle(self, keys: list[str] | None = None, timeout: float | None = None) -> None:
        """Finish now what is pending (for ``keys``, or all) and wait for it."""
        drainers = list(self._drainers.values()) if keys is None else [
            self._drainers[k] for k in keys if k in self._drainers]
        if not drainers:
            return
        self._hurrying += 1
        self._hurry.set()
        try:
            await asyncio.wait(drainers, timeout=timeout)
        finally:
            self._hurrying -= 1
            if self._hurrying == 0:
                self._hurry.clear()

    async def close(self, timeout: float) -> None:
        await self.settle(timeout=timeout)
        for drainer in list(self._drainers.values()):
            drainer.cancel()
        await asyncio.gather(*self._drainers.values(), return_exceptions=True)
        self._drainers.clear()
        self._work.clear()
