"""Helpers shared by the Durable engine and management API tests (the `orchestrations` test app).

They only speak HTTP to a running funchost: the app's SDK starters under /api and the public
Durable HTTP API under /runtime/webhooks/durabletask.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest

from funchost.testing.process import FunchostProcess, HttpResult

APP = "orchestrations"
DURABLE = "/runtime/webhooks/durabletask"
TERMINAL = ("Completed", "Failed", "Terminated")
WAITING_STATUS = {"stage": "waiting for approval"}  # set by the app's `wait_for_approval`


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def start(host: FunchostProcess, orchestrator: str, payload: Any = None, instance_id: str | None = None) -> str:
    """Start through the app's starter, i.e. the SDK's `start_new`; returns the instance id."""
    query = f"?instance_id={quote(instance_id)}" if instance_id else ""
    res = host.post(f"/api/start/{orchestrator}{query}", payload)
    assert res.status == 202, f"start of {orchestrator} answered {res.status}: {res.text}"
    return str(res.json()["id"])


def start_public(
    host: FunchostProcess, orchestrator: str, payload: Any = None, instance_id: str | None = None
) -> HttpResult:
    """Start through the public API: POST orchestrators/{name}[/{id}]."""
    suffix = f"/{quote(instance_id)}" if instance_id else ""
    return host.post(f"{DURABLE}/orchestrators/{orchestrator}{suffix}", payload)


def raise_public(host: FunchostProcess, instance_id: str, event: str, data: Any) -> HttpResult:
    return host.post(f"{DURABLE}/instances/{instance_id}/raiseEvent/{event}", data)


def finished(host: FunchostProcess, instance_id: str, timeout: float = 20.0, query: str = "") -> dict[str, Any]:
    """The status once terminal (Completed, Failed or Terminated)."""
    return host.wait_for_status(instance_id, TERMINAL, timeout=timeout, query=query)


def wait_for(
    host: FunchostProcess,
    instance_id: str,
    done: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """Poll the public status until `done(status)`; fail with the last status seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        res = host.status(instance_id)
        if res.status in (200, 202):
            last = res.json()
            if done(last):
                return last  # type: ignore[no-any-return]
        time.sleep(0.03)
    pytest.fail(f"instance {instance_id} never became {what} in {timeout}s; last status: {last!r}")


def wait_until_waiting(host: FunchostProcess, instance_id: str, custom_status: Any = None) -> dict[str, Any]:
    """Wait until the instance runs and publishes `custom_status` (it does just before it waits)."""
    expected = WAITING_STATUS if custom_status is None else custom_status
    return wait_for(
        host,
        instance_id,
        lambda s: s.get("runtimeStatus") == "Running" and s.get("customStatus") == expected,
        f"Running with customStatus {expected!r}",
    )


def history(host: FunchostProcess, instance_id: str, query: str = "?showHistory=true") -> list[dict[str, Any]]:
    res = host.status(instance_id, query)
    assert res.status in (200, 202), res.text
    events = res.json().get("historyEvents")
    assert isinstance(events, list), f"no historyEvents in {res.text}"
    return events


def event_types(events: list[dict[str, Any]], keep: tuple[str, ...] | None = None) -> list[str]:
    types = [str(e["EventType"]) for e in events]
    return [t for t in types if keep is None or t in keep]


def rows(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [e for e in events if e["EventType"] == event_type]


def parse_time(text: str) -> datetime:
    """Durable timestamps: ISO 8601 with up to 7 fraction digits and `Z`; always timezone-aware."""
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None, f"timestamp without a timezone: {text}"
    return parsed


def header(res: HttpResult, name: str) -> str | None:
    for key, value in res.headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def error_text(res: HttpResult) -> str:
    """All the text of a JSON error body, whatever its shape ({"error": {...}}, {"Message": ...})."""
    return " ".join(_strings(json.loads(res.text)))


def json_error_problem(res: HttpResult, status: int) -> str | None:
    """What is wrong with an error answer that should be `status` with a JSON message, or None."""
    if res.status != status:
        return f"expected {status}, got {res.status}: {res.text[:300]!r}"
    content_type = header(res, "Content-Type") or ""
    if "application/json" not in content_type:
        return f"Content-Type {content_type!r}, body {res.text[:300]!r}"
    try:
        text = error_text(res)
    except json.JSONDecodeError:
        return f"body is not JSON: {res.text[:300]!r}"
    if len(text.strip()) < 5:
        return f"JSON error without a message: {res.text[:300]}"
    return None


def assert_json_error(res: HttpResult, status: int) -> str:
    """A 4xx answer with a JSON body that says something; returns the body's text."""
    problem = json_error_problem(res, status)
    assert problem is None, problem
    return error_text(res)
