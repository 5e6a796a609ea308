"""Durable entities on funchost: concurrent signals, calls and signals from orchestrations, errors, reads, listing.

Drives the `entities` test app (tests/apps/entities) through the public Durable HTTP API and through
HTTP routes that use the SDK's own DurableOrchestrationClient.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from funchost.testing.process import FunchostProcess, HttpResult
from funchost.testing.pytest_plugin import StartHost

ENTITIES = "/runtime/webhooks/durabletask/entities"
COUNTER_FAILURE_TEXT = "counter refused the operation"  # raised by the Counter's `fail` operation


@pytest.fixture
def host(start_host: StartHost) -> FunchostProcess:
    return start_host("entities")


def start(host: FunchostProcess, orchestrator: str, payload: Any) -> str:
    """Start an orchestration through the app's SDK starter; returns its instance id."""
    res = host.post(f"/api/orchestrators/{orchestrator}", payload)
    assert res.status == 202, res.text
    return str(res.json()["id"])


def read_state(host: FunchostProcess, name: str, key: str) -> HttpResult:
    return host.get(f"{ENTITIES}/{name}/{key}")


def wait_for_state(
    host: FunchostProcess, name: str, key: str, done: Callable[[Any], bool], timeout: float = 20.0
) -> Any:
    """Poll an entity's state through the public API until `done(state)`; fail with the last state seen."""
    deadline = time.monotonic() + timeout
    last: Any = "(entity never existed)"
    while time.monotonic() < deadline:
        res = read_state(host, name, key)
        if res.status == 200:
            last = res.json()
            if done(last):
                return last
        time.sleep(0.05)
    pytest.fail(f"entity @{name}@{key} did not reach the expected state in {timeout}s; last state: {last!r}")


def signal_concurrently(send: Callable[[int], HttpResult], count: int) -> list[int]:
    with ThreadPoolExecutor(max_workers=32) as pool:
        return [res.status for res in pool.map(send, range(count))]


# --- signals from clients ---------------------------------------------------------------------------


def test_200_concurrent_signals_through_the_public_api(host: FunchostProcess) -> None:
    statuses = signal_concurrently(lambda _: host.post(f"{ENTITIES}/counter/concurrent?op=add", 1), 200)

    assert statuses == [202] * 200
    final = wait_for_state(host, "counter", "concurrent", lambda state: state >= 200)
    assert final == 200
    # Read again through the SDK's read_entity_state: still exactly 200, nothing applied twice.
    assert host.get("/api/counters/concurrent").json() == {"exists": True, "state": 200}


def test_concurrent_signals_through_the_sdk_client(host: FunchostProcess) -> None:
    statuses = signal_concurrently(lambda _: host.post("/api/counters/sdk/add", 1), 100)

    assert statuses == [202] * 100
    # The SDK addresses the entity as "Counter"; entity names are case-insensitive.
    final = wait_for_state(host, "counter", "sdk", lambda state: state >= 100)
    assert final == 100


# --- reads ---------------------------------------------------------------------------------------------


def test_read_entity_state_through_the_sdk_client(host: FunchostProcess) -> None:
    assert host.post(f"{ENTITIES}/counter/readable?op=add", 41).status == 202
    wait_for_state(host, "counter", "readable", lambda state: state == 41)

    res = host.get("/api/counters/readable")

    assert res.status == 200, res.text
    assert res.json() == {"exists": True, "state": 41}


def test_missing_entity_does_not_exist(host: FunchostProcess) -> None:
    public = read_state(host, "counter", "never-signalled")
    through_sdk = host.get("/api/counters/never-signalled")

    assert public.status == 404, public.text
    content_type = {name.lower(): value for name, value in public.headers.items()}.get("content-type", "")
    assert content_type.startswith("application/json"), public.headers
    assert isinstance(public.json(), dict)  # management errors are JSON, which the SDK client parses
    assert through_sdk.status == 200, through_sdk.text
    assert through_sdk.json() == {"exists": False, "state": None}


def test_entity_listing_names_every_key(host: FunchostProcess) -> None:
    for key in ("alpha", "beta", "gamma"):
        assert host.post(f"{ENTITIES}/counter/{key}?op=add", 1).status == 202
    assert host.post(f"{ENTITIES}/journal/other-entity?op=append", "x").status == 202
    for key in ("alpha", "beta", "gamma"):
        wait_for_state(host, "counter", key, lambda state: state == 1)
    wait_for_state(host, "journal", "other-entity", lambda state: state == ["x"])

    res = host.get(f"{ENTITIES}/counter")

    assert res.status == 200, res.text
    listed = res.json()
    assert isinstance(listed, list), listed
    assert sorted(item["entityId"]["key"] for item in listed) == ["alpha", "beta", "gamma"]
    assert {item["entityId"]["name"] for item in listed} == {"counter"}
    assert all("state" not in item for item in listed)

    with_state = host.get(f"{ENTITIES}/counter?fetchState=true").json()
    assert {item["entityId"]["key"]: item["state"] for item in with_state} == {"alpha": 1, "beta": 1, "gamma": 1}


# --- orchestrations calling and signalling ---------------------------------------------------------------


def test_call_entity_from_an_orchestration_returns_the_value(host: FunchostProcess) -> None:
    instance_id = start(host, "add_then_get", {"key": "called", "amounts": [5, 7, 30]})

    status = host.wait_for_status(instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == 42
    assert read_state(host, "counter", "called").json() == 42


def test_entity_error_is_raised_in_the_calling_orchestration(host: FunchostProcess) -> None:
    instance_id = start(host, "call_failing_operation", {"key": "failing", "catch": True})

    status = host.wait_for_status(instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert COUNTER_FAILURE_TEXT in status["output"]["caught"]
    assert "caught" in status["output"]["caught"]
    # The entity keeps serving after a failed operation.
    assert status["output"]["valueAfter"] == 0


def test_uncaught_entity_error_fails_the_orchestration(host: FunchostProcess) -> None:
    instance_id = start(host, "call_failing_operation", {"key": "failing", "catch": False})

    status = host.wait_for_status(instance_id)

    assert status["runtimeStatus"] == "Failed", status
    assert "Orchestrator function 'call_failing_operation' failed" in status["output"]
    assert COUNTER_FAILURE_TEXT in status["output"]


def test_signals_from_an_orchestration_are_applied_in_order(host: FunchostProcess) -> None:
    instance_id = start(host, "signal_in_order", {"key": "ordered", "count": 25})

    status = host.wait_for_status(instance_id)

    assert status["runtimeStatus"] == "Completed", status
    journal = wait_for_state(host, "journal", "ordered", lambda entries: len(entries) >= 25)
    assert journal == list(range(25))
    # add 100, reset, add 1, add 2, add 3: only the order sent ends at 6 (reset first gives 106).
    assert wait_for_state(host, "counter", "ordered", lambda value: value in (6, 106)) == 6
