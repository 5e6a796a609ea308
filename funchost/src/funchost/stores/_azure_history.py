"""The ``{Hub}History`` table: history rows, and the sentinel whose ETag guards every write of them.

An instance's partition holds one row per event (row key: its sequence number as 16 hex digits) and
a ``sentinel`` row with the number of valid events (``HistoryEventCount``), the id of the checkpoint
that wrote it, and the instance's columns (see ``_azure_rows``). A checkpoint's rows and its sentinel
update go in one table transaction (at most 100 operations and 4 MiB; a longer history is written in
several, the sentinel in the last), conditional on the ETag this host last saw: a second writer gets
``CheckpointConflictError`` and writes nothing. Rows past the count (left by a checkpoint that failed
half-way, or by a longer history a new execution replaced) are never read.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from funchost.errors import CheckpointConflictError
from funchost.stores._azure_batch import Operation, submit
from funchost.stores._azure_layout import SENTINEL_RK, history_row_key, odata_str
from funchost.stores._azure_payloads import PayloadTable, PendingPayload, Retry, delete_rows, refs_of
from funchost.stores._azure_retry import describe, status_of
from funchost.stores._azure_rows import Row, events_from_rows, history_row, sentinel_row
from funchost.stores.base import PENDING, TERMINAL_STATUSES, InstanceRecord, Json

logger = logging.getLogger("funchost.stores.azure")

ROWS_PER_TRANSACTION = 99  # a table transaction holds 100 operations; the last one is the sentinel
CHARS_PER_TRANSACTION = 2_000_000  # and at most 4 MiB


@dataclass(frozen=True)
class Sentinel:
    """What this host last read or wrote of an instance's sentinel: its ETag (None: no sentinel), count
    of valid events, the large values its columns refer to, and whether its run had finished."""

    etag: str | None
    count: int
    refs: frozenset[str] = frozenset()
    terminal: bool = False

    @staticmethod
    def of(row: Any) -> Sentinel:
        return Sentinel(str(row.metadata["etag"]), int(row.get("HistoryEventCount") or 0), frozenset(refs_of(row)),
                        row.get("RuntimeStatus") in TERMINAL_STATUSES)


@dataclass
class PreparedHistory:
    """A checkpoint's history write, built before its messages are sent (its large values go first)."""

    instance_id: str
    rows: list[Row]
    sentinel: Row
    known: Sentinel | None  # None: not known (a new execution of an id that may have been used)


class HistoryTable:
    def __init__(self, client: TableClient, payloads: PayloadTable, retry: Retry) -> None:
        self._client = client
        self._payloads = payloads
        self._retry = retry
        self._sentinels: dict[str, Sentinel] = {}

    def forget(self, instance_id: str) -> None:
        self._sentinels.pop(instance_id, None)

    async def sentinel(self, instance_id: str) -> Any:
        """The sentinel row, or None."""

        async def get() -> Any:
            try:
                return await self._client.get_entity(instance_id, SENTINEL_RK)
            except ResourceNotFoundError:
                return None

        return await self._retry(get, f"reading the history of {instance_id}")

    async def load(self, instance_id: str) -> list[Json]:
        query = f"PartitionKey eq {odata_str(instance_id)}"

        async def fetch() -> list[Any]:
            return [row async for row in self._client.query_entities(query)]

        rows: list[Any] = await self._retry(fetch, f"reading the history of {instance_id}")
        sentinel = next((row for row in rows if row["RowKey"] == SENTINEL_RK), None)
        if sentinel is None:
            # No entry for an id that has no history: every read of an unknown id would add one.
            self._sentinels.pop(instance_id, None)
            return []
        state = Sentinel.of(sentinel)
        if state.terminal:
            self._sentinels.pop(instance_id, None)  # see ``write``: finished runs keep no entry
        else:
            self._sentinels[instance_id] = state
        return await events_from_rows(rows, state.count, instance_id, self._payloads)

    async def prepare(self, record: InstanceRecord, events: list[Json], replace: bool,
                      pending: list[PendingPayload], *, replace_live: bool = False) -> PreparedHistory:
        iid = record.instance_id
        known = self._sentinels.get(iid)
        if replace_live:
            # A start allowed to replace a live run (overridableExistingInstanceStates AnyState): guarded by the
            # ETag of the run it replaces, so a run another writer started since is still a conflict.
            if known is None:
                row = await self.sentinel(iid)
                known = Sentinel.of(row) if row is not None else None
        elif replace and record.status == PENDING and known is not None and not known.terminal:
            # A start (or restart) of the id. What this host last wrote of it may be a start that another
            # request of this host made after this one checked the id was free: guarding the write with
            # that ETag would replace a live run. A start may only create the history, or replace a
            # finished one (see ``write``).
            known = None
        if known is None and (not replace or record.status != PENDING):
            # Not known: a step of a run whose entry was dropped, or a continue-as-new or rewind of it.
            row = await self.sentinel(iid)
            known = Sentinel.of(row) if row is not None else Sentinel(None, 0)
        start = 0 if replace else (known.count if known else 0)
        rows = [history_row(iid, start + i, record.execution_id, ev, pending) for i, ev in enumerate(events)]
        sentinel = sentinel_row(record, start + len(rows), _checkpoint_id(), pending)
        return PreparedHistory(iid, rows, sentinel, known)

    async def write(self, prepared: PreparedHistory) -> frozenset[str]:
        """Write the rows and move the sentinel; returns the large values the previous sentinel referred to."""
        iid = prepared.instance_id
        batches: list[list[Row]] = [[]]
        size = 0
        for row in prepared.rows:
            chars = len(str(row.get("Event", "")))
            if len(batches[-1]) >= ROWS_PER_TRANSACTION or size + chars > CHARS_PER_TRANSACTION:
                batches.append([])
                size = 0
            batches[-1].append(row)
            size += chars
        # Rows past the sentinel's count are invisible to readers, so the earlier batches may land
        # without the guard; the last one moves the count and is the one the ETag guards.
        for batch in batches[:-1]:
            ops = [Operation("upsert", row) for row in batch]
            await self._retry(functools.partial(submit, self._client, ops), f"writing the history of {iid}")
        final = [Operation("upsert", row) for row in batches[-1]]
        attempts = 0
        state = prepared.known

        async def write() -> list[str | None]:
            nonlocal attempts
            attempts += 1
            if state is not None and state.etag is not None:
                guard = Operation("replace", prepared.sentinel, state.etag)
            else:
                guard = Operation("create", prepared.sentinel)
            return await submit(self._client, [*final, guard])

        while True:
            try:
                result = await self._retry(write, f"writing the history of {iid}")
                etag = str(result[-1])
                break
            except HttpResponseError as err:
                if status_of(err) not in (404, 409, 412):
                    raise
                row = await self.sentinel(iid)
                if row is not None and attempts > 1 and row.get("Checkpoint") == prepared.sentinel["Checkpoint"]:
                    etag = str(row.metadata["etag"])  # an earlier attempt did land; its answer was lost
                    break
                if (prepared.known is None and state is None and row is not None and status_of(err) == 409
                        and row.get("RuntimeStatus") in TERMINAL_STATUSES):
                    # A new execution of an id whose run has finished (a restart): replace it, still guarded.
                    # A live run is another writer's, started since this host looked: that is a conflict.
                    state = Sentinel.of(row)
                    continue
                self._sentinels.pop(iid, None)
                raise CheckpointConflictError(iid) from err
        count = int(prepared.sentinel["HistoryEventCount"])
        if prepared.sentinel.get("RuntimeStatus") in TERMINAL_STATUSES:
            # A finished run is written again only by a new execution or a rewind, which read or create
            # its sentinel anyway: keeping its ETag would hold one entry per instance ever finished.
            self._sentinels.pop(iid, None)
        else:
            self._sentinels[iid] = Sentinel(etag, count, frozenset(refs_of(prepared.sentinel)))
        previous = state.count if state is not None else 0
        if previous > count:
            await self._drop_rows(iid, count, previous)
        return state.refs if state is not None else frozenset()

    async def _drop_rows(self, instance_id: str, start: int, end: int) -> None:
        """Delete the rows a replaced (longer) history left past the new count; readers ignore them anyway."""
        rows = [{"PartitionKey": instance_id, "RowKey": history_row_key(seq)} for seq in range(start, end)]
        try:
            await delete_rows(self._client, rows, self._retry, f"trimming the history of {instance_id}")
        except Exception as err:
            logger.warning("instance %s: old history rows were left behind (%s); they are never read",
                           instance_id, describe(err))

    @staticmethod
    def empty(record: InstanceRecord, pending: list[PendingPayload]) -> Row:
        """The sentinel of a sub-orchestration created Pending: an empty history (its id may have been used)."""
        return sentinel_row(record, 0, _checkpoint_id(), pending)

    async def write_empty(self, instance_id: str, sentinel: Row) -> None:
        result = await self._retry(lambda: self._client.upsert_entity(sentinel, mode=UpdateMode.REPLACE),
                                   f"creating instance {instance_id}")
        self._sentinels[instance_id] = Sentinel(str(result["etag"]), 0, frozenset(refs_of(sentinel)))

    async def purge(self, instance_id: str) -> None:
        """The sentinel first: from then on the instance has no history to read, whatever is left of it."""
        query = f"PartitionKey eq {odata_str(instance_id)}"

        async def keys() -> list[Any]:
            return [row async for row in self._client.query_entities(query, select=["PartitionKey", "RowKey"])]

        rows: list[Any] = await self._retry(keys, f"purging {instance_id}")
        await self._retry(lambda: self._client.delete_entity(instance_id, SENTINEL_RK), f"purging {instance_id}")
        self.forget(instance_id)
        await delete_rows(self._client, [r for r in rows if r["RowKey"] != SENTINEL_RK], self._retry,
                          f"purging {instance_id}")


def _checkpoint_id() -> str:
    return uuid.uuid4().hex
