"""The ``usage`` entity: tokens and runs summed over every workflow, one instance per scope.

Keys are scopes: ``agent:{name}`` (every run of that agent) and ``tenant:{id}`` (every run started for
that tenant). Each workflow signals ``add`` ``{"tokens": int, "runs": int}`` to both scopes after each
child run (``orchestrators._workflow_common.record_usage``); ``get`` returns ``{"scope", "tokens",
"runs"}`` (nothing for a scope never added to); ``delete`` removes the scope.

Concurrent workflows never lose an update: the host runs one entity's operations one at a time, each
on the state the previous one left, so two ``add`` arriving together are both counted. That is why the
totals live in an entity and not in a read-modify-write by each workflow.

State: ``{"tokens": int, "runs": int}``. The state function is pure, so it is unit tested without a host.
"""

# No `from __future__ import annotations`: the Functions worker reads the entity function's annotations.

import json
from collections.abc import Mapping
from typing import Any

import azure.durable_functions as df

import shared_names as names

bp = df.Blueprint()


def empty_usage() -> dict[str, int]:
    return {"tokens": 0, "runs": 0}


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"usage 'add' needs '{name}' as a non-negative integer, got {value!r}")
    return value


def add_usage(state: Mapping[str, Any] | None, amount: Mapping[str, Any]) -> dict[str, int]:
    """``state`` plus ``amount`` (``{"tokens", "runs"}``, each a non-negative integer, missing counts 0).

    Raises:
        ValueError: a count is negative or not an integer (the operation fails; the state is unchanged).
    """
    current = dict(empty_usage(), **(state or {}))
    return {
        "tokens": int(current["tokens"]) + _count(amount.get("tokens", 0), "tokens"),
        "runs": int(current["runs"]) + _count(amount.get("runs", 0), "runs"),
    }


def usage_view(scope: str, state: Mapping[str, Any] | None) -> dict[str, Any]:
    """What ``get`` and ``GET /api/usage/{scope}`` answer."""
    current = dict(empty_usage(), **(state or {}))
    return {"scope": scope, "tokens": int(current["tokens"]), "runs": int(current["runs"])}


def _operation_input(context: df.DurableEntityContext) -> dict[str, Any]:
    value = context.get_input()
    if isinstance(value, str):  # JSON text from some clients
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    return value if isinstance(value, dict) else {}


@bp.entity_trigger(context_name="context", entity_name=names.USAGE_ENTITY)
def usage(context: df.DurableEntityContext) -> None:
    """Entity function registered as ``usage``: ``add``, ``get`` and ``delete``."""
    state = context.get_state()
    operation = context.operation_name
    if operation == "add":
        context.set_state(add_usage(state, _operation_input(context)))
    elif operation == "get":
        if state is not None:  # a result would bring a scope that was never added to into being
            context.set_result(usage_view(context.entity_key, state))
    elif operation == "delete":
        context.destruct_on_exit()
    else:
        raise ValueError(f"usage has no operation {operation!r}")
