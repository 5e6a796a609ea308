"""Attempt counts of the Azure Storage task hub: one row per queue message that has any, in ``{Hub}Attempts``.

A queue's ``dequeue_count`` counts deliveries, and a delivery is not an attempt: a host holding its control
queues back after an unclean stop receives (and so counts) every message again without running anything,
and a host that dies before it starts a message has not tried it. The poison limit counts attempts instead
(``Store.record_attempts``): the engine records one before it runs user code for a message that may have
been attempted before, and after a failure in process. Here that record is a row keyed by the queue and
the queue message id, which stay the same across deliveries (the pop receipt does not).

Calls: none for a message delivered for the first time (``dequeue_count`` 1) that succeeds, which is the
hot path. A redelivered one costs a read when it is received, and a write per attempt; its row is deleted,
off the engine's path, when the message is consumed. A row whose delete failed is never read again: a
queue message id is not reused.
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


def attempts_table_name(layout: HubLayout) -> str:
    return f"{layout.hub}Attempts"


class AttemptTable:
    """Reads and writes the attempt counts of queue messages, by (queue, queue message id)."""

    def __init__(self, service: TableServiceClient, layout: HubLayout, retry: Retry) -> None:
        self.table: TableClient = service.get_table_client(attempts_table_name(layout))
        self.retry = retry

    async def create(self) -> None:
        async def create() -> None:
            with contextlib.suppress(ResourceExistsError):
                await self.table.create_table()

        await self.retry(create, "opening the task hub")

    async def read(self, queue: str, message_id: str) -> int:
        async def read() -> Any:
            try:
                return await self.table.get_entity(queue, message_id)
            except ResourceNotFoundError:
                return None

        row = await self.retry(read, "reading an attempt count")
        return int(row.get("Attempts", 0)) if row is not None else 0

    async def write(self, queue: str, message_id: str, attempts: int) -> None:
        row = {"PartitionKey": queue, "RowKey": message_id, "Attempts": attempts}
        await self.retry(lambda: self.table.upsert_entity(row, mode=UpdateMode.REPLACE), "recording an attempt")

    async def delete(self, queue: str, message_id: str) -> None:
        async def delete() -> None:
            with contextlib.suppress(ResourceNotFoundError):
                await self.table.delete_entity(queue, message_id)

        await self.retry(delete, "deleting an attempt count")


async def record_attempts(delivery: Delivery, table: AttemptTable,
                          items: Sequence[Message | ActivityTask]) -> list[int]:
    """``Store.record_attempts`` of the Azure store: one row write per item, all at once."""
    from funchost.stores._azure_delivery import QueueHandle  # imported here: that module imports this one

    async def one(item: Message | ActivityTask) -> int:
        handle = item.id
        if not isinstance(handle, QueueHandle):
            raise StoreError(f"not a message of this task hub: {handle!r}")
        attempts = item.attempts + 1
        await table.write(handle.queue, handle.message_id, attempts)
        lease = delivery.leases.get((handle.queue, handle.message_id))
        if lease is not None:
            lease.attempts = attempts
            lease.marked = True
            if lease.task is not None:
                lease.task.attempts = attempts
        item.attempts = attempts
        item.redelivered = True
        return attempts

    return list(await asyncio.gather(*(one(item) for item in items)))
