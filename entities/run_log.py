"""The ``run_log`` entity: the events of one agent run, in order, for clients following it.

The run orchestration signals ``append`` with the events of each step. Event ids are numbered by the
run (1, 2, 3 ...), so an append that arrives twice (a retried signal) or a replayed one adds nothing:
an event whose id the log already holds is dropped.
"""

# No `from __future__ import annotations`: the Functions worker reads these functions' annotations.

from typing import Any

import azure.durable_functions as df

import shared_names as names

bp = df.Blueprint()


def append_events(state: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """``state`` with ``events`` added after the last id it holds."""
    log: list[dict[str, Any]] = list(state.get("events") or [])
    last = log[-1]["id"] if log else 0
    for event in sorted(events, key=lambda e: int(e["id"])):
        if int(event["id"]) == last + 1:
            log.append(event)
            last += 1
    return {"events": log}


@bp.entity_trigger(context_name="context", entity_name=names.RUN_LOG_ENTITY)
def run_log(context: df.DurableEntityContext) -> None:
    state = context.get_state(lambda: {"events": []})
    operation = context.operation_name
    if operation == "append":
        context.set_state(append_events(state, list(context.get_input() or [])))
    elif operation == "get":
        context.set_result(state)
    elif operation == "delete":
        context.destruct_on_exit()
    else:
        raise ValueError(f"run_log has no operation {operation!r}")
