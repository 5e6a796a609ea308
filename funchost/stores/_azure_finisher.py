"""The end of a checkpoint that is durable already: a running instance's status row, then the deletions.

Once a checkpoint's history and sentinel are written, the step is safe: what is left (step 3, the
``{Hub}Instances`` row a running instance's status queries read, and step 4, deleting the messages it
consumed) only saves work after a crash. Doing it on the engine's path would make every step of a chain
wait for two more storage calls, and the storage emulator serves one request at a time; so it is done
here, per instance in the order of its steps, once no checkpoint is being written (or after
``MAX_DELAY``). A newer row of the same instance replaces one not written yet; a status query first
waits for what is pending (``settle``), so this host's queries read its own writes.

A crash before this is done leaves the consumed messages in their queues: they come back when their
leases run out, the engine drops them as duplicates, and that step writes the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from funchost.stores._azure_delivery import Lease, QueueHandle
from funchost.stores._azure_payloads import refs_of
from funchost.stores._azure_retry import describe

logger = logging.getLogger("funchost.stores.azure")

MAX_DELAY = 0.1
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
                 drop_value: Callable[[str, str], Awaitable[None]]) -> None:
        self._write_row = write_row
        self._consume = consume
        self._drop_value = drop_value
        self._work: dict[str, _Work] = {}
        self._drainers: dict[str, asyncio.Task[None]] = {}
        self._writing = 0  # checkpoints being written
        self._hurry = 0  # callers waiting for everything to be finished
        self._go = asyncio.Event()
        self._go.set()

    @contextlib.contextmanager
    def checkpoint(self) -> Iterator[None]:
        """Around the durable part of a checkpoint: finishing waits (a little) while one is written."""
        self._writing += 1
        self._update()
        try:
            yield
        finally:
            self._writing -= 1
            self._update()

    def _update(self) -> None:
        if self._writing == 0 or self._hurry > 0:
            self._go.set()
        else:
            self._go.clear()

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
                deadline = time.monotonic() + MAX_DELAY
                while not self._go.is_set() and time.monotonic() < deadline:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._go.wait(), deadline - time.monotonic())
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
        self._hurry += 1
        self._update()
        try:
            await asyncio.wait(drainers, timeout=timeout)
        finally:
            self._hurry -= 1
            self._update()

    async def close(self, timeout: float) -> None:
        await self.settle(timeout=timeout)
        for drainer in list(self._drainers.values()):
            drainer.cancel()
        await asyncio.gather(*self._drainers.values(), return_exceptions=True)
        self._drainers.clear()
        self._work.clear()
