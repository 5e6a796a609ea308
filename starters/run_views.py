"""What the run API shows: an `agent_run` instance's status as the run JSON, and its events as SSE text.

Pure functions over plain JSON (the Durable status of an instance as the HTTP API spells it, and the
state of the `run_log` entity), so every mapping here is unit-tested without a host. The route
handlers in `starters.runs_api` and `starters.agents_api` fetch those two inputs through the SDK's
client and hand them over.

Status mapping (see the design of issue 3): Pending → pending; Running, Suspended, ContinuedAsNew →
the custom status' state (running | awaiting_approval); Completed → the output's status (completed |
cancelled | budget_exceeded); Failed → failed, with the host's "Orchestrator function ... failed:"
prefix stripped from the error; Terminated → terminated.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import shared_names as names
from orchestrators.run_contract import RUN_STATES, TERMINAL_RUN_STATES
from starters._http import BadRequestError

# Durable runtime statuses, as the HTTP API spells them.
TERMINAL_RUNTIME_STATUSES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
_ACTIVE_RUNTIME_STATUSES = ("Running", "Suspended", "ContinuedAsNew")

# Which runtime statuses can hold a run in each API state (to narrow a listing on the host's side).
RUNTIME_STATUSES_OF_STATE: Mapping[str, tuple[str, ...]] = {
    "pending": ("Pending",),
    "running": _ACTIVE_RUNTIME_STATUSES,
    "awaiting_approval": _ACTIVE_RUNTIME_STATUSES,
    "completed": ("Completed",),
    "cancelled": ("Completed", "Canceled"),
    "budget_exceeded": ("Completed",),
    "failed": ("Failed",),
    "terminated": ("Terminated",),
}

# Event types that end a run's event stream; `run_terminated` is synthesized by the API.
FINAL_EVENT_TYPES = frozenset({"run_finished", "run_failed", "run_terminated"})
SSE_RETRY_MS = 1000

_HOST_FAILURE_PREFIX = re.compile(r"^Orchestrator function '[^']*' failed:\s*")
_EXCEPTION_PREFIX = re.compile(r"^\w*Error:\s*")


def _as_dict(value: Any) -> dict[str, Any]:
    """A JSON object given as a dict or as JSON text; anything else is `{}`."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def iso_time(value: datetime | None) -> str | None:
    """A timestamp as the API shows it: ISO 8601 in UTC with a `Z`."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def failure_message(output: Any) -> str:
    """The error of a failed run: the host's failure text without its prefix."""
    if isinstance(output, dict):
        text = str(output.get("error") or output.get("message") or json.dumps(output))
    else:
        text = "" if output is None else str(output)
    text = _HOST_FAILURE_PREFIX.sub("", text.strip())
    text = _EXCEPTION_PREFIX.sub("", text, count=1)
    return text or "the run failed"


def is_agent_run(status: Mapping[str, Any]) -> bool:
    """True when `status` is that of an existing `agent_run` instance."""
    return status.get("name") == names.AGENT_RUN and bool(status.get("instanceId"))


def run_state(status: Mapping[str, Any]) -> str:
    """The API state of a run (one of `RUN_STATES`)."""
    runtime = str(status.get("runtimeStatus") or "")
    if runtime == "Pending":
        return "pending"
    if runtime == "Completed":
        reported = _as_dict(status.get("output")).get("status")
        return reported if reported in TERMINAL_RUN_STATES else "completed"
    if runtime == "Failed":
        return "failed"
    if runtime == "Terminated":
        return "terminated"
    if runtime == "Canceled":
        return "cancelled"
    state = _as_dict(status.get("customStatus")).get("state")
    return state if state in ("running", "awaiting_approval") else "running"


def run_view(status: Mapping[str, Any]) -> dict[str, Any]:
    """The run JSON of `GET /api/runs/{id}` for the Durable status of an `agent_run` instance."""
    custom = _as_dict(status.get("customStatus"))
    request = _as_dict(status.get("input"))
    state = run_state(status)
    runtime = status.get("runtimeStatus")
    result = _as_dict(status.get("output")) if runtime == "Completed" else {}

    error: str | None = None
    if runtime == "Failed":
        error = failure_message(status.get("output"))
    elif runtime == "Terminated":
        reason = status.get("output")
        error = f"terminated: {reason}" if isinstance(reason, str) and reason else "terminated"
    elif result.get("error"):
        error = str(result["error"])

    usage = (
        result.get("usage") or custom.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    )
    tags = custom.get("tags") if "tags" in custom else request.get("tags")
    return {
        "id": status.get("instanceId"),
        "agent": custom.get("agent") or request.get("agent"),
        "session_id": custom.get("session_id", request.get("session_id")),
        "status": state,
        "turns": int(result.get("turns") or custom.get("turns") or 0),
        "output": result.get("output"),
        "usage": usage,
        "pending_approvals": list(custom.get("pending_approvals") or []) if state == "awaiting_approval" else [],
        "tags": dict(tags or {}),
        "created_at": status.get("createdTime"),
        "updated_at": status.get("lastUpdatedTime"),
        "error": error,
    }


def run_links(api_base: str, run_id: str, query: str = "") -> dict[str, str]:
    """The absolute URLs of a run's routes.

    Args:
        api_base: Origin and route prefix, e.g. `http://localhost:7071/api` (no trailing slash).
        run_id: The run.
        query: A query string to append to every URL (e.g. `code=...`), without the `?`.
    """
    base = f"{api_base}/runs/{quote(run_id, safe='')}"
    suffix = f"?{query}" if query else ""
    return {
        "status": f"{base}{suffix}",
        "events": f"{base}/events{suffix}",
        "approvals": f"{base}/approvals{suffix}",
        "steer": f"{base}/steer{suffix}",
        "cancel": f"{base}/cancel{suffix}",
        "terminate": f"{base}/terminate{suffix}",
    }


# --- listing ---------------------------------------------------------------------------------------

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class RunFilter:
    """The filters of `GET /api/runs`; every one given must match (AND)."""

    agent: str | None = None
    session_id: str | None = None
    states: frozenset[str] = frozenset()
    tag: tuple[str, str] | None = None

    def runtime_statuses(self) -> list[str]:
        """The Durable runtime statuses that can hold a matching run (empty: any)."""
        found: set[str] = set()
        for state in self.states:
            found.update(RUNTIME_STATUSES_OF_STATE[state])
        return sorted(found)

    def matches(self, run: Mapping[str, Any]) -> bool:
        if self.agent is not None and run.get("agent") != self.agent:
            return False
        if self.session_id is not None and run.get("session_id") != self.session_id:
            return False
        if self.states and run.get("status") not in self.states:
            return False
        if self.tag is not None:
            key, value = self.tag
            if (run.get("tags") or {}).get(key) != value:
                return False
        return True


def parse_run_filter(params: Mapping[str, str]) -> RunFilter:
    """The filters of a listing from its query parameters.

    `status` is one state or several separated by commas; `tag` is `key:value` (the value may itself
    contain ':').

    Raises:
        BadRequestError: an unknown status or a tag without `key:`.
    """
    states: set[str] = set()
    raw_status = params.get("status")
    if raw_status is not None:
        parts = [p.strip() for p in raw_status.split(",") if p.strip()]
        unknown = [p for p in parts if p not in RUN_STATES]
        if unknown or not parts:
            raise BadRequestError(
                "invalid_query",
                f"Query parameter 'status' must be one or more of {', '.join(RUN_STATES)}, separated by commas.",
            )
        states.update(parts)
    tag: tuple[str, str] | None = None
    raw_tag = params.get("tag")
    if raw_tag is not None:
        key, sep, value = raw_tag.partition(":")
        if not sep or not key:
            raise BadRequestError("invalid_query", "Query parameter 'tag' must be 'key:value'.")
        tag = (key, value)
    return RunFilter(
        agent=params.get("agent") or None,
        session_id=params.get("session_id") or None,
        states=frozenset(states),
        tag=tag,
    )


def _newest_first_key(run: Mapping[str, Any]) -> tuple[str, str]:
    return (str(run.get("created_at") or ""), str(run.get("id") or ""))


def encode_continuation(run: Mapping[str, Any]) -> str:
    raw = json.dumps(list(_newest_first_key(run)), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continuation(token: str) -> tuple[str, str]:
    """The position a continuation token stands for.

    Raises:
        BadRequestError: the token was not made by `encode_continuation`.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created, run_id = json.loads(raw.decode())
        if not isinstance(created, str) or not isinstance(run_id, str):
            raise ValueError(token)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, RecursionError):
        raise BadRequestError("invalid_query", "Query parameter 'continuation' is not a token this API gave.") from None
    return created, run_id


def page_runs(
    runs: Iterable[Mapping[str, Any]], *, top: int, continuation: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `runs`, newest first, and the token of the next page (None on the last page).

    The token holds the position (creation time, id) of the page's last run rather than an offset,
    so a run started between two page requests neither repeats an item nor pushes one out of sight.
    """
    ordered = sorted((dict(r) for r in runs), key=_newest_first_key, reverse=True)
    if continuation:
        after = decode_continuation(continuation)
        ordered = [r for r in ordered if _newest_first_key(r) < after]
    page = ordered[:top]
    token = encode_continuation(page[-1]) if len(ordered) > top else None
    return page, token


# --- events ----------------------------------------------------------------------------------------


def parse_cursor(last_event_id: str | None, after: str | None) -> int:
    """The id of the last event a client has: `Last-Event-ID` wins over `?after=` (default 0).

    An EventSource reconnects to the URL it was opened with (which may carry `?after=`) and adds the
    header, so the header is the newer of the two.

    Raises:
        BadRequestError: the value is not a non-negative integer.
    """
    for name, raw in (("Last-Event-ID", last_event_id), ("after", after)):
        if raw is None or not raw.strip():
            continue
        try:
            value = int(raw.strip())
        except ValueError:
            value = -1
        if value < 0:
            raise BadRequestError("invalid_cursor", f"'{name}' must be a non-negative integer event id.")
        return value
    return 0


def _final_event(status: Mapping[str, Any], event_id: int) -> dict[str, Any]:
    """The event that closes the stream of a terminal run whose log does not end with one."""
    at = status.get("lastUpdatedTime")
    runtime = status.get("runtimeStatus")
    if runtime == "Terminated":
        reason = status.get("output")
        data: dict[str, Any] = {"reason": reason if isinstance(reason, str) and reason else None}
        return {"id": event_id, "type": "run_terminated", "at": at, "data": data}
    if runtime == "Failed":
        return {
            "id": event_id,
            "type": "run_failed",
            "at": at,
            "data": {"error": failure_message(status.get("output"))},
        }
    view = run_view(status)
    return {
        "id": event_id,
        "type": "run_finished",
        "at": at,
        "data": {"status": view["status"], "output": view["output"]},
    }


def run_events(log_state: Any, status: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The events of a run so far, and whether that is all of them.

    Args:
        log_state: The `run_log` entity's state (`{"events": [...]}`), None when it does not exist yet.
        status: The run's Durable status.

    Returns:
        The events in id order (1, 2, 3 ...), and True when the run is terminal and every event it
        emitted has reached the log. The orchestration signals its events to the log and counts them
        in its custom status (`event_count`) in the same step, so a terminal run's log is complete once
        it holds that many. A terminal run whose log does not end with `run_finished` or `run_failed`
        (a terminated run; a run that failed before its first step) gets a final event with the next id.
    """
    events: list[dict[str, Any]] = []
    for event in _as_dict(log_state).get("events") or []:
        # The entity appends without gaps; stop at a gap rather than ever skip an id.
        if isinstance(event, dict) and event.get("id") == len(events) + 1:
            events.append(event)
    if status.get("runtimeStatus") not in TERMINAL_RUNTIME_STATUSES:
        return events, False
    expected = _as_dict(status.get("customStatus")).get("event_count")
    if isinstance(expected, int) and len(events) < expected:
        return events, False
    if not events or events[-1].get("type") not in FINAL_EVENT_TYPES:
        events.append(_final_event(status, len(events) + 1))
    return events, True


def events_after(events: Iterable[Mapping[str, Any]], cursor: int) -> list[dict[str, Any]]:
    return [dict(e) for e in events if int(e["id"]) > cursor]


def sse_text(events: Iterable[Mapping[str, Any]], *, retry_ms: int = SSE_RETRY_MS) -> str:
    """Server-Sent Events text: a `retry:` line, then one message per event (`id`, `event`, `data`)."""
    parts = [f"retry: {retry_ms}\n\n"]
    for event in events:
        data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        parts.append(f"id: {event['id']}\nevent: {event['type']}\ndata: {data}\n\n")
    return "".join(parts)
