"""What the workflow API shows: any workflow instance's Durable status as one JSON view, whatever its kind.

Pure functions over plain JSON (the Durable status of an instance as the HTTP API spells it, see
``starters.runs_api.status_json``), so every mapping is unit tested without a host; the routes of
``starters.workflows_api`` fetch the statuses and hand them over. The view only relies on what every
workflow orchestration promises (``orchestrators._workflow_common``): a ``WorkflowProgress`` custom
status and a JSON object as output, so it serves kinds written later without a change.

Status mapping: Pending → pending; Running, Suspended, ContinuedAsNew → running; Completed → completed;
Failed → failed (the host's "Orchestrator function ... failed:" prefix stripped from the error);
Terminated and Canceled → terminated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from orchestrators._workflow_common import WORKFLOW_KINDS, kind_of
from orchestrators.run_contract import event_data as _as_dict
from starters._http import BadRequestError
from starters.run_views import failure_message, run_links, run_state

WORKFLOW_STATES = ("pending", "running", "completed", "failed", "terminated")

_STATE_OF_RUNTIME: Mapping[str, str] = {
    "Pending": "pending",
    "Running": "running",
    "Suspended": "running",
    "ContinuedAsNew": "running",
    "Completed": "completed",
    "Failed": "failed",
    "Terminated": "terminated",
    "Canceled": "terminated",
}
RUNTIME_STATUSES_OF_STATE: Mapping[str, tuple[str, ...]] = {
    state: tuple(runtime for runtime, mapped in _STATE_OF_RUNTIME.items() if mapped == state)
    for state in WORKFLOW_STATES
}
MAX_LISTED = 100
DEFAULT_LISTED = 50


def is_workflow(status: Mapping[str, Any]) -> bool:
    """True when ``status`` is that of an existing workflow orchestration instance."""
    return kind_of(str(status.get("name") or "")) is not None and bool(status.get("instanceId"))


def workflow_status(status: Mapping[str, Any]) -> str:
    """The API status of a workflow (one of ``WORKFLOW_STATES``)."""
    return _STATE_OF_RUNTIME.get(str(status.get("runtimeStatus") or ""), "running")


def workflow_links(api_base: str, workflow_id: str, query: str = "") -> dict[str, str]:
    """The workflow's own URL (``api_base`` like ``http://host:7071/api``; ``query`` without ``?``)."""
    suffix = f"?{query}" if query else ""
    return {"status": f"{api_base}/workflows/{quote(workflow_id, safe='')}{suffix}"}


def _error(status: Mapping[str, Any]) -> str | None:
    runtime = status.get("runtimeStatus")
    if runtime == "Failed":
        return failure_message(status.get("output"))
    if runtime in ("Terminated", "Canceled"):
        reason = status.get("output")
        return f"terminated: {reason}" if isinstance(reason, str) and reason else "terminated"
    return None


def workflow_summary(status: Mapping[str, Any]) -> dict[str, Any]:
    """The view without children and output: what a listing shows of each workflow."""
    custom = _as_dict(status.get("customStatus"))
    state = workflow_status(status)
    return {
        "id": status.get("instanceId"),
        "kind": custom.get("kind") or kind_of(str(status.get("name") or "")),
        "status": state,
        "state": custom.get("state") or state,
        "progress": dict(custom.get("progress") or {}),
        "created_at": status.get("createdTime"),
        "updated_at": status.get("lastUpdatedTime"),
        "error": _error(status),
    }


def workflow_view(
    status: Mapping[str, Any],
    child_statuses: Mapping[str, Mapping[str, Any] | None],
    api_base: str,
    query: str = "",
) -> dict[str, Any]:
    """The JSON of ``GET /api/workflows/{id}``.

    Args:
        status: The workflow instance's Durable status.
        child_statuses: The Durable status of each child run id of its custom status (None: not
            created yet, so ``pending``).
        api_base: Origin and route prefix for the children's links.
        query: A query string for those links (e.g. ``code=...``), without the ``?``.
    """
    summary = workflow_summary(status)
    custom = _as_dict(status.get("customStatus"))
    children: list[dict[str, Any]] = []
    for child in custom.get("children") or []:
        if not isinstance(child, Mapping) or not child.get("run_id"):
            continue
        run_id = str(child["run_id"])
        found = child_statuses.get(run_id)
        links = run_links(api_base, run_id, query)
        children.append(
            {
                "run_id": run_id,
                "role": child.get("role"),
                "status": run_state(found) if found else "pending",
                "links": {"status": links["status"], "events": links["events"]},
            }
        )
    output = status.get("output") if status.get("runtimeStatus") == "Completed" else None
    return {
        "id": summary["id"],
        "kind": summary["kind"],
        "status": summary["status"],
        "state": summary["state"],
        "progress": summary["progress"],
        "output": _as_dict(output) if output is not None else None,
        "children": children,
        "created_at": summary["created_at"],
        "updated_at": summary["updated_at"],
        "error": summary["error"],
    }


def parse_workflow_filter(params: Mapping[str, str]) -> tuple[str | None, frozenset[str]]:
    """The ``kind`` and ``status`` filters of a listing (status: one or several, comma-separated).

    Raises:
        BadRequestError: an unknown kind or status.
    """
    kind = params.get("kind") or None
    if kind is not None and kind not in WORKFLOW_KINDS:
        raise BadRequestError("invalid_query", f"Query parameter 'kind' must be one of {', '.join(WORKFLOW_KINDS)}.")
    states: set[str] = set()
    raw = params.get("status")
    if raw is not None:
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if not parts or any(p not in WORKFLOW_STATES for p in parts):
            raise BadRequestError(
                "invalid_query",
                f"Query parameter 'status' must be one or more of {', '.join(WORKFLOW_STATES)}, separated by commas.",
            )
        states.update(parts)
    return kind, frozenset(states)


def newest_first(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(views, key=lambda v: (str(v.get("created_at") or ""), str(v.get("id") or "")), reverse=True)
