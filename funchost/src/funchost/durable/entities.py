"""One entity batch: queued operations in, new state and replies out (protocol spec section 3).

The engine runs one batch per entity at a time, in arrival order, so an entity never sees two
operations at once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

from funchost.app_loader import DurableHandler
from funchost.durable import history as h
from funchost.stores.base import EntityRecord, Json, Message
from funchost.worker import call_here

logger = logging.getLogger(__name__)


def entity_id(name: str, key: str) -> str:
    """Entity names are lower-cased in ids, as the extension does."""
    return f"@{name.lower()}@{key}"


def split_entity_id(value: str) -> tuple[str, str]:
    _, name, key = value.split("@", 2)
    return name, key


def operation_request(operation: str, input_text: str | None, request_id: str, *, signal: bool,
                      parent: str | None = None, parent_execution: str | None = None) -> Json:
    """The RequestMessage the extension queues for an entity."""
    request: Json = {"op": operation, "input": input_text, "id": request_id,
                     "parent": parent, "parentExecution": parent_execution}
    if signal:
        request["signal"] = True
    return request


@dataclass
class BatchOutcome:
    state: EntityRecord | None  # None: the entity no longer exists
    replies: list[Message] = field(default_factory=list)


def run_batch(handler: DurableHandler, entity: str, current: EntityRecord | None, requests: list[Json],
              invoke: Callable[..., Any] = call_here) -> BatchOutcome:
    """Run ``requests`` (RequestMessages, in order) against the entity's current state; ``invoke`` calls the
    SDK's handler (the engine passes the worker's, which runs an ``async def`` one on the worker's loop)."""
    name, key = split_entity_id(entity)
    batch = [{"name": r.get("op"), "input": json.dumps(r.get("input")) if r.get("input") is not None else None,
              "isSignal": bool(r.get("signal"))} for r in requests]
    body = {"self": {"name": name, "key": key}, "exists": current is not None,
            "state": current.state if current else None, "batch": batch}
    now = time.time()
    try:
        raw = invoke(handler.handle, func.EntityContext(json.dumps(body)))
        result = json.loads(raw)
        results = result.get("results") or []
    except Exception as exc:
        # The SDK raises only for internal errors: every operation of the batch fails, state is kept.
        logger.exception("entity %s: batch of %d operations failed", entity, len(requests))
        message = json.dumps(f"Entity '{name}' failed: {exc}")
        results = [{"isError": True, "result": message} for _ in requests]
        result = {"entityExists": current is not None, "entityState": current.state if current else None}
    replies = []
    for request, outcome in zip(requests, results, strict=False):
        if request.get("signal") or not request.get("parent"):
            if outcome.get("isError"):
                logger.warning("entity %s: signalled operation %r failed: %s", entity, request.get("op"),
                               outcome.get("result"))
            continue
        payload: Json = {"result": outcome.get("result")}
        if outcome.get("isError"):
            payload["exceptionType"] = "Error"
        reply = h.event_raised(now, str(request["id"]), json.dumps(payload))
        reply["MessageId"] = f"reply:{request['id']}"
        replies.append(Message(str(request["parent"]), reply, request.get("parentExecution")))
    state = EntityRecord(entity, result.get("entityState"), now) if result.get("entityExists") else None
    return BatchOutcome(state, replies)
