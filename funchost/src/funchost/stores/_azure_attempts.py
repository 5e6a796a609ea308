"""Attempt counts of the Azure Storage task hub: one row per queue message that has any, in ``{Hub}Attempts``.

A queue's ``dequeue_count`` counts deliveries, and a delivery is not an attempt: a host holding its control
queues back after an unclean stop receives (and so counts) every message again without running anything,
and a host that dies before it starts a message has not tried it. The poison limit counts attempts instead
(``Store.record_attempts``): the engine records one before it runs user code for a message that may have
been attempted before, and after a failure in process. Here that record is a row keyed by the queue and
the queue message id, which stay the same across deliveries (the pop receipt does not).

Calls: none for a message delivered for the first time (``dequeue_count`` 1) that succeeds, which is the
hot path. A redelivered one costs a read when it is received, and a share of one table transaction per
attempt (the messages of one step are in one control queue, one partition of the table); its row is
deleted, off the engine's path, when the message is consumed. At most ``CONCURRENT_CALLS`` calls are under
way at a time: after a crash a large backlog comes back redelivered all at once. A row whose delete
failed is never read again: a queue message id is not reused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from funchost.errors import StoreError
from funchost.stores._azure_layout import HubLayout
from funchost.stores._azure_payloads import Retry
from funchost.stores.base import ActivityTask, Message

if TYPE_CHECKING:  # the delivery module reads attempt counts through this one
    from funchost.stores._azure_delivery import Delivery


CONCURRENT_CALLS = 16
TRANSACTION_ROWS = 100  # the most operations one table transaction takes


def attempts_table_name(layout: HubLayout) -> str:
    return f"{layout.hub}Attempts"


class AttemptTable:
    """Reads and writes the attempt counts of queue messages, by (queue, queue message id)."""

    def __init__(self, service: TableServiceClient, layout: HubLayout, retry: Retry) -> None:
        self.table: TableClient = service.get_table_client(attempts_table_name(layout))
        self.retry = retry
        self._calls = asyncio.Semaphore(CONCURRENT_CALLS)

    async def create(self) -> None:
        async def create() -> None:
            with contextlib.suppress(ResourceExistsError):
                await self.table.create_table()

        await self.retry(create, "opening the task hub")

    async def read(self, queue: str, message_id: str) -> int:
        async def read() -> Any:
            try:
                async with self._calls:
                    return await self.table.get_entity(queue, message_id)
            except ResourceNotFoundError:
                return None

        row = await self.retry(read, "reading an attempt count")
        return int(row.get("Attempts", 0)) if row is not None else 0

    async def write(self, queue: str, counts: dict[str, int]) -> None:
        """Set the attempt counts of messages of one queue, by queue message id."""
        rows = [{"PartitionKey": queue, "RowKey": message_id, "Attempts": n} for message_id, n in counts.items()]
        for first in range(0, len(rows), TRANSACTION_ROWS):
            operations: list[Any] = [("upsert", row, {"mode": UpdateMode.REPLACE})
                                     for row in rows[first:first + TRANSACTION_ROWS]]

            async def submit(operations: list[Any] = operations) -> None:
                async with self._calls:
                    await self.table.submit_transaction(operations)

            await self.retry(submit, "recording attempts")

    async def delete(self, queue: str, message_id: str) -> None:
        async def delete() -> None:
            with contextlib.suppress(ResourceNotFoundError):
                async with self._calls:
                    await self.table.delete_entity(queue, message_id)

        await self.retry(delete, "deleting an attempt count")


async def record_attempts(delivery: Delivery, table: AttemptTable,
                          items: Sequence[Message | ActivityTask]) -> list[int]:
    """``Store.record_attempts`` of the Azure store: one row write per item, all at once."""
    from funchost.stores._azure_delivery import QueueHandle  # imported here: that module imports this one

    handles: list[QueueHandle] = []
    by_queue: dict[str, dict[str, int]] = {}
    for item in items:
        if not isinstance(item.id, QueueHandle):
            raise StoreError(f"not a message of this task hub: {item.id!r}")
        handles.append(item.id)
        by_queue.setdefault(item.id.queue, {})[item.id.message_id] = item.attempts + 1
    await asyncio.gather(*(table.write(queue, counts) for queue, counts in by_queue.items()))
    for item, handle in zip(items, handles, strict=True):
        item.attempts = by_queue[handle.queue][handle.message_id]
        item.redelivered = True
        lease = delivery.leases.get((handle.queue, handle.message_id))
        if lease is not None:
            lease.attempts = item.attempts
            lease.marked = True
            if lease.task is not None:
                lease.task.attempts = item.attempts
    return [item.attempts for item in items]
