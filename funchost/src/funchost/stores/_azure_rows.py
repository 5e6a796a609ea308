"""Table rows of the Azure Storage task hub: instances, history events, entities, to and from records.

An instance's columns are written twice per checkpoint: in the history partition's sentinel row, in
the same table transaction as the history rows (so a record and its history never disagree, whatever
moment a crash hits), and in the ``{Hub}Instances`` row that status queries read. Values too large for a
property are kept in the payload table, written once and referred to by both rows.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from funchost.errors import StoreError
from funchost.stores._azure_layout import SENTINEL_RK, dumps, from_datetime, history_row_key, to_datetime
from funchost.stores._azure_payloads import PayloadTable, PendingPayload, pack
from funchost.stores.base import EntityRecord, InstanceRecord, Json

Row = dict[str, Any]


async def unpack(row: Any, name: str, owner: str, payloads: PayloadTable) -> str | None:
    """The value ``pack`` stored under ``name`` (inline, or in the payload table)."""
    value = row.get(name)
    if value is not None:
        return str(value)
    key = row.get(f"{name}Ref")
    if not key:
        return None
    text = await payloads.get(owner, str(key))
    if text is None:
        raise StoreError(f"The stored {name} of '{owner}' refers to a large value that is missing from the "
                         "task hub's payload table.")
    return text


# --- instances ----------------------------------------------------------------------------------


def instance_columns(rec: InstanceRecord, pending: list[PendingPayload]) -> Row:
    row: Row = {"Name": rec.name, "ExecutionId": rec.execution_id, "RuntimeStatus": rec.status,
                "CreatedTime": to_datetime(rec.created_time), "LastUpdatedTime": to_datetime(rec.last_updated_time)}
    if rec.completed_time is not None:
        row["CompletedTime"] = to_datetime(rec.completed_time)
    owner = rec.instance_id
    pack(row, "Input", rec.input, owner, pending)
    pack(row, "Output", rec.output, owner, pending)
    pack(row, "CustomStatus", rec.custom_status, owner, pending)
    pack(row, "Parent", dumps(rec.parent) if rec.parent else None, owner, pending)
    pack(row, "Engine", dumps(rec.engine), owner, pending)
    return row


def instance_row(rec: InstanceRecord, pending: list[PendingPayload]) -> Row:
    return {"PartitionKey": rec.instance_id, "RowKey": "", **instance_columns(rec, pending)}


async def instance_from_row(row: Any, payloads: PayloadTable) -> InstanceRecord:
    owner = str(row["PartitionKey"])
    texts = await asyncio.gather(*(unpack(row, name, owner, payloads)
                                   for name in ("Input", "Output", "CustomStatus", "Parent", "Engine")))
    input_text, output, custom_status, parent, engine = texts
    completed = row.get("CompletedTime")
    return InstanceRecord(
        instance_id=owner, name=str(row["Name"]), execution_id=str(row["ExecutionId"]),
        status=str(row["RuntimeStatus"]), input=input_text, created_time=from_datetime(row["CreatedTime"]),
        last_updated_time=from_datetime(row["LastUpdatedTime"]), output=output, custom_status=custom_status,
        completed_time=from_datetime(completed) if completed is not None else None,
        parent=json.loads(parent) if parent else None, engine=json.loads(engine) if engine else {},
    )


# --- history ------------------------------------------------------------------------------------


def history_row(instance_id: str, seq: int, execution_id: str, event: Json, pending: list[PendingPayload]) -> Row:
    row: Row = {"PartitionKey": instance_id, "RowKey": history_row_key(seq), "ExecutionId": execution_id}
    kind = event.get("EventType")
    if isinstance(kind, int):
        row["EventType"] = kind  # for people reading the table; the event itself is in Event
    pack(row, "Event", dumps(event), instance_id, pending)
    return row


def sentinel_row(rec: InstanceRecord, count: int, checkpoint_id: str, pending: list[PendingPayload]) -> Row:
    """The row whose ETag guards the history: the count of valid history rows and the instance's columns."""
    return {"PartitionKey": rec.instance_id, "RowKey": SENTINEL_RK, "HistoryEventCount": count,
            "Checkpoint": checkpoint_id, **instance_columns(rec, pending)}


async def events_from_rows(rows: list[Any], count: int, owner: str, payloads: PayloadTable) -> list[Json]:
    """The first ``count`` history rows' events, in order (rows past it are left by an unfinished checkpoint)."""
    ordered = sorted((row for row in rows if row["RowKey"] != SENTINEL_RK), key=lambda row: str(row["RowKey"]))
    valid = [row for row in ordered if int(str(row["RowKey"]), 16) < count]
    if len(valid) != count:
        raise StoreError(f"The history of instance '{owner}' has {len(valid)} of its {count} events; the task "
                         "hub's History table was changed by something other than funchost.")
    texts = await asyncio.gather(*(unpack(row, "Event", owner, payloads) for row in valid))
    return [json.loads(text or "null") for text in texts]


# --- entities -----------------------------------------------------------------------------------


def entity_row(rec: EntityRecord, pending: list[PendingPayload]) -> Row:
    _, name, key = rec.entity_id.split("@", 2)
    row: Row = {"PartitionKey": rec.entity_id, "RowKey": "", "Name": name, "Key": key,
                "LastModified": to_datetime(rec.last_modified)}
    pack(row, "State", rec.state, rec.entity_id, pending)
    pack(row, "Recent", dumps(rec.recent), rec.entity_id, pending)
    return row


async def entity_from_row(row: Any, payloads: PayloadTable) -> EntityRecord:
    owner = str(row["PartitionKey"])
    state, recent = await asyncio.gather(unpack(row, "State", owner, payloads),
                                         unpack(row, "Recent", owner, payloads))
    return EntityRecord(owner, state, from_datetime(row["LastModified"]), recent=json.loads(recent) if recent else [])
