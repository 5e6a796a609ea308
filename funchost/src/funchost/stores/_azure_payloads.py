"""Large values of the Azure Storage task hub: gzip-compressed, in chunks, in the ``{Hub}Payloads`` table.

A queue message holds 64 KiB and a table property 32K characters; inputs, outputs, activity results
and entity states may be megabytes. Such a value is stored here and the message or row keeps a key to it.

Rows: PartitionKey = the owning instance (or entity) id, RowKey = ``{key}-{chunk:05d}``, one binary
chunk each. Keeping every payload of an instance in the instance's partition lets purge remove them with
one range query, and lets the chunks of a value be written in a few table transactions. Keys are
``p-{sha256}`` for values of rows (content-addressed: writing the same value again is a no-op) and
``m-{uuid}`` for messages (unique: each is deleted once its message is consumed).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from funchost.stores._azure_layout import INLINE_CHARS, odata_str, prefix_upper_bound

Retry = Callable[[Callable[[], Awaitable[Any]], str], Awaitable[Any]]

CHUNK_BYTES = 48_000  # a binary property holds 64 KiB
CHUNKS_PER_TRANSACTION = 40  # a transaction carries at most 4 MiB (and base64 adds a third)
KNOWN_LIMIT = 20_000


def value_key(value: str) -> str:
    return f"p-{hashlib.sha256(value.encode('utf-8')).hexdigest()[:40]}"


def new_message_key() -> str:
    return f"m-{uuid.uuid4().hex}"


class PendingPayload:
    """A value to store before the row or message that refers to it is written."""

    __slots__ = ("owner", "key", "text")

    def __init__(self, owner: str, key: str, text: str) -> None:
        self.owner = owner
        self.key = key
        self.text = text


def pack(row: dict[str, Any], name: str, value: str | None, owner: str, pending: list[PendingPayload]) -> None:
    """Put ``value`` in ``row[name]``; when too large, its key in ``row[name + "Ref"]`` and it in ``pending``."""
    if value is None:
        return
    if len(value) <= INLINE_CHARS:
        row[name] = value
        return
    key = value_key(value)
    row[f"{name}Ref"] = key
    pending.append(PendingPayload(owner, key, value))


def refs_of(row: dict[str, Any]) -> set[str]:
    return {str(v) for k, v in row.items() if k.endswith("Ref") and v}


class PayloadTable:
    """Reads and writes large values; ``retry`` wraps every storage call (see ``_azure_retry.with_retry``)."""

    def __init__(self, table: TableClient, retry: Retry) -> None:
        self._table = table
        self._retry = retry
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()  # content-addressed values written

    async def put(self, payload: PendingPayload) -> None:
        ident = (payload.owner, payload.key)
        if payload.key.startswith("p-") and ident in self._known:
            return
        data = gzip.compress(payload.text.encode("utf-8"), compresslevel=6)
        chunks = [data[i:i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
        rows = [{"PartitionKey": payload.owner, "RowKey": f"{payload.key}-{i:05d}", "Data": chunk,
                 "Chunks": len(chunks)} for i, chunk in enumerate(chunks)]
        for start in range(0, len(rows), CHUNKS_PER_TRANSACTION):
            batch = rows[start:start + CHUNKS_PER_TRANSACTION]
            operations: list[Any] = [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in batch]

            async def submit(ops: list[Any] = operations) -> Any:
                return await self._table.submit_transaction(ops)

            await self._retry(submit, f"writing a large value of {payload.owner}")
        if payload.key.startswith("p-"):
            self._remember(ident)

    async def put_all(self, payloads: list[PendingPayload]) -> None:
        unique = {(p.owner, p.key): p for p in payloads}
        await asyncio.gather(*(self.put(p) for p in unique.values()))

    async def get(self, owner: str, key: str) -> str | None:
        """The value, or None when it is not (or not completely) there."""
        query = (f"PartitionKey eq {odata_str(owner)} and RowKey ge {odata_str(key + '-')} "
                 f"and RowKey lt {odata_str(prefix_upper_bound(key + '-'))}")

        async def fetch() -> list[Any]:
            return [row async for row in self._table.query_entities(query)]

        rows: list[Any] = await self._retry(fetch, f"reading a large value of {owner}")
        if not rows or len(rows) != int(rows[0].get("Chunks", -1)):
            return None
        data = b"".join(bytes(row["Data"]) for row in sorted(rows, key=lambda r: str(r["RowKey"])))
        if key.startswith("p-"):
            self._remember((owner, key))
        return gzip.decompress(data).decode("utf-8")

    async def delete(self, owner: str, key: str) -> None:
        """Remove one value (a message's, once the message is consumed). Missing rows are fine."""
        self._known.pop((owner, key), None)
        await self._delete_range(owner, key + "-", prefix_upper_bound(key + "-"))

    async def delete_owner(self, owner: str, prefix: str = "") -> None:
        """Remove every value of ``owner`` (purge), or those whose key starts with ``prefix``."""
        for ident in [k for k in self._known if k[0] == owner and k[1].startswith(prefix)]:
            self._known.pop(ident, None)
        if prefix:
            await self._delete_range(owner, prefix, prefix_upper_bound(prefix))
        else:
            await self._delete_range(owner, None, None)

    async def _delete_range(self, owner: str, low: str | None, high: str | None) -> None:
        query = f"PartitionKey eq {odata_str(owner)}"
        if low is not None and high is not None:
            query += f" and RowKey ge {odata_str(low)} and RowKey lt {odata_str(high)}"

        async def fetch() -> list[Any]:
            return [row async for row in self._table.query_entities(query, select=["PartitionKey", "RowKey"])]

        rows: list[Any] = await self._retry(fetch, f"listing the large values of {owner}")
        await delete_rows(self._table, rows, self._retry, f"deleting the large values of {owner}")

    def _remember(self, ident: tuple[str, str]) -> None:
        self._known[ident] = None
        self._known.move_to_end(ident)
        while len(self._known) > KNOWN_LIMIT:
            self._known.popitem(last=False)


async def delete_rows(table: TableClient, rows: list[Any], retry: Retry, what: str) -> None:
    """Delete rows of one partition in transactions of at most 100; rows already gone are fine."""
    keys = [{"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"]} for row in rows]
    for start in range(0, len(keys), 100):
        batch = keys[start:start + 100]

        async def submit(items: list[dict[str, Any]] = batch) -> None:
            try:
                await table.submit_transaction([("delete", item) for item in items])
            except HttpResponseError as err:
                if err.status_code != 404:
                    raise
                # One row of the batch was already gone (a concurrent delete): delete the rest one by one.
                for item in items:
                    await table.delete_entity(item["PartitionKey"], item["RowKey"])

        await retry(submit, what)
