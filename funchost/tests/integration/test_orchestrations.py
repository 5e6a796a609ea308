"""The Durable engine through funchost: chaining, fan-out/fan-in, timers, external events,
sub-orchestrations, retries and continue-as-new.

Drives tests/apps/orchestrations over real HTTP: instances start through the app's starter (the
SDK's own `start_new`) or the public API, and every test checks outputs and the recorded history
(`showHistory`), not just that nothing raised.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from tests.integration._durable_helpers import (
    APP,
    DURABLE,
    event_types,
    finished,
    history,
    parse_time,
    raise_public,
    rows,
    start,
    start_public,
    unique_id,
    wait_for,
    wait_until_waiting,
)


@pytest.fixture
def host(start_host: StartHost) -> FunchostProcess:
    return start_host(APP)


# --- chaining and fan-out/fan-in --------------------------------------------------------------


def test_chain_feeds_each_activity_output_to_the_next(host: FunchostProcess) -> None:
    instance_id = start(host, "run_chain", "Tokyo")

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == "Hello Hello Hello Tokyo"
    completed = rows(history(host, instance_id, "?showHistory=true&showHistoryOutput=true"), "TaskCompleted")
    assert [row["Result"] for row in completed] == ["Hello Tokyo", "Hello Hello Tokyo", "Hello Hello Hello Tokyo"]


def test_fan_out_fan_in_sums_fifty_activity_results(host: FunchostProcess) -> None:
    instance_id = start(host, "fan_out_fan_in", 50)

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"count": 50, "sum": sum(n * n for n in range(1, 51))}
    completed = rows(history(host, instance_id), "TaskCompleted")
    assert len(completed) == 50
    assert {row["FunctionName"] for row in completed} == {"square_number"}


# --- durable timers -----------------------------------------------------------------------------


def test_durable_timer_fires_and_not_before_its_fire_time(host: FunchostProcess) -> None:
    instance_id = start(host, "wait_on_timer", 300)

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    fire_at = parse_time(status["output"]["fireAt"])
    resumed_at = parse_time(status["output"]["resumedAt"])
    (fired,) = rows(history(host, instance_id), "TimerFired")
    assert abs(parse_time(fired["FireAt"]) - fire_at) <= timedelta(milliseconds=1), (fired, fire_at)
    assert parse_time(fired["Timestamp"]) >= fire_at
    # The orchestrator's clock in the episode that saw the timer fire is past the fire time too.
    assert resumed_at >= fire_at
    assert fire_at - parse_time(status["createdTime"]) >= timedelta(milliseconds=299)


# --- external events ---------------------------------------------------------------------------


def test_event_raised_before_the_wait_begins_is_kept(host: FunchostProcess) -> None:
    # The orchestrator sits on a 500 ms timer before it waits, so this event arrives early.
    instance_id = start(host, "wait_for_event_after_timer", 500)
    assert raise_public(host, instance_id, "approval", {"decision": "early"}).status == 202

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"decision": "early"}
    events = history(host, instance_id)
    (raised,) = rows(events, "EventRaised")
    (fired,) = rows(events, "TimerFired")
    assert raised["Name"] == "approval"
    assert events.index(raised) < events.index(fired), event_types(events)
    assert parse_time(raised["Timestamp"]) < parse_time(fired["Timestamp"])


def test_event_raised_after_the_wait_begins_completes_it(host: FunchostProcess) -> None:
    instance_id = start(host, "wait_for_approval")
    waiting = wait_until_waiting(host, instance_id)
    assert waiting["output"] is None

    assert raise_public(host, instance_id, "approval", {"decision": "late"}).status == 202
    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"decision": "late"}
    assert status["customStatus"] == {"stage": "approved"}


def test_event_raised_by_the_sdk_right_after_start_new_is_kept(host: FunchostProcess) -> None:
    # start_new and raise_event back to back in one starter: the instance is most likely still Pending.
    res = host.post(
        "/api/start_and_raise/wait_for_approval",
        {"events": [{"name": "approval", "data": {"ok": True}}]},
    )
    assert res.status == 202, res.text

    status = finished(host, res.json()["id"])

    assert status["runtimeStatus"] == "Completed", status
    # SDK 1.7.0 JSON-encodes event data once more than the host decodes it (spec section 5).
    assert status["output"] == json.dumps({"ok": True})


def test_event_raised_through_the_public_api_right_after_start_is_kept(host: FunchostProcess) -> None:
    instance_id = unique_id("pending")
    assert start_public(host, "wait_for_approval", None, instance_id).status == 202
    assert raise_public(host, instance_id, "approval", {"n": 7}).status == 202

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"n": 7}


def test_wait_for_event_with_timeout_takes_the_timer_path(host: FunchostProcess) -> None:
    instance_id = start(host, "wait_for_event_or_timeout", 300)

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"result": "timed out"}
    events = history(host, instance_id)
    assert len(rows(events, "TimerFired")) == 1
    assert rows(events, "EventRaised") == []


def test_wait_for_event_with_timeout_takes_the_event_path(host: FunchostProcess) -> None:
    instance_id = start(host, "wait_for_event_or_timeout", 20_000)
    assert raise_public(host, instance_id, "approval", {"x": 1}).status == 202

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"result": "approved", "value": {"x": 1}}


# --- sub-orchestrations --------------------------------------------------------------------------


def test_sub_orchestrations_with_and_without_instance_id(host: FunchostProcess) -> None:
    child_id = unique_id("child")
    parent_id = start(host, "call_children", {"childId": child_id})

    status = finished(host, parent_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == ["Hello Named", "Hello Generated"]
    named = finished(host, child_id)
    assert (named["name"], named["runtimeStatus"], named["output"]) == ("run_child", "Completed", "Hello Named")
    listing = host.get(f"{DURABLE}/instances")
    assert listing.status == 200, listing.text
    others = [s for s in listing.json() if s["instanceId"] not in (parent_id, child_id)]
    assert len(others) == 1, others
    generated = others[0]
    assert (generated["name"], generated["runtimeStatus"]) == ("run_child", "Completed")
    assert generated["output"] == "Hello Generated"
    # A child started without an id gets "{parent execution id}:{task id}"; it was task 1.
    assert generated["instanceId"].endswith(":1"), generated["instanceId"]
    events = history(host, parent_id)
    completed = rows(events, "SubOrchestrationInstanceCompleted")
    assert [row["FunctionName"] for row in completed] == ["run_child", "run_child"]


def test_sub_orchestration_failure_reaches_the_parent_as_a_catchable_error(host: FunchostProcess) -> None:
    instance_id = start(host, "catch_child_failure")

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert "child broke on purpose" in status["output"]["caught"]
    assert len(rows(history(host, instance_id), "SubOrchestrationInstanceFailed")) == 1


def test_uncaught_sub_orchestration_failure_fails_the_parent(host: FunchostProcess) -> None:
    instance_id = start(host, "propagate_child_failure")

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Failed", status
    assert status["output"].startswith("Orchestrator function 'propagate_child_failure' failed:"), status["output"]
    assert "child broke on purpose" in status["output"]
    children = [s for s in host.get(f"{DURABLE}/instances").json() if s["instanceId"] != instance_id]
    assert [(c["name"], c["runtimeStatus"]) for c in children] == [("fail_child", "Failed")]
    assert children[0]["output"] == "Orchestrator function 'fail_child' failed: child broke on purpose"


# --- retries -------------------------------------------------------------------------------------


def retry_input(tmp_path: Path, failures: int, max_attempts: int) -> dict[str, object]:
    return {
        "counterFile": str(tmp_path / f"attempts-{unique_id('counter')}.txt"),
        "failures": failures,
        "maxAttempts": max_attempts,
        "intervalMs": 100,
    }


def test_retry_succeeds_after_two_failures(host: FunchostProcess, tmp_path: Path) -> None:
    spec = retry_input(tmp_path, failures=2, max_attempts=3)
    instance_id = start(host, "retry_flaky_activity", spec)

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"result": "succeeded on attempt 3"}
    assert Path(str(spec["counterFile"])).read_text() == "3"
    events = history(host, instance_id)
    kinds = ("TaskFailed", "TimerFired", "TaskCompleted")
    assert event_types(events, kinds) == ["TaskFailed", "TimerFired", "TaskFailed", "TimerFired", "TaskCompleted"]
    assert {row["FunctionName"] for row in rows(events, "TaskFailed") + rows(events, "TaskCompleted")} == {
        "fail_first_attempts"
    }
    # Each retry waits the first-retry interval after the failure before the next attempt.
    for failed, fired in zip(rows(events, "TaskFailed"), rows(events, "TimerFired"), strict=True):
        assert parse_time(fired["FireAt"]) - parse_time(failed["Timestamp"]) >= timedelta(milliseconds=99)
        assert parse_time(fired["Timestamp"]) >= parse_time(fired["FireAt"])


def test_retry_exhaustion_surfaces_the_last_error(host: FunchostProcess, tmp_path: Path) -> None:
    spec = retry_input(tmp_path, failures=5, max_attempts=2)
    instance_id = start(host, "retry_flaky_activity", spec)

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    error = status["output"]["error"]
    assert "Activity function 'fail_first_attempts' failed:" in error
    assert "attempt 2 failed" in error
    assert Path(str(spec["counterFile"])).read_text() == "2", "ran more attempts than max_number_of_attempts"
    # After the last failure the host still waits one retry interval before the error surfaces (spec 2c).
    kinds = ("TaskFailed", "TimerFired", "TaskCompleted")
    assert event_types(history(host, instance_id), kinds) == ["TaskFailed", "TimerFired", "TaskFailed", "TimerFired"]


# --- continue-as-new ---------------------------------------------------------------------------


def test_continue_as_new_counter_returns_after_five_generations(host: FunchostProcess) -> None:
    instance_id = start(host, "count_with_continue_as_new", {"count": 0, "limit": 5})

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == 5
    # Each generation is a new execution with a fresh history: only the last one's activity shows.
    events = history(host, instance_id, "?showHistory=true&showHistoryOutput=true")
    assert [row["Result"] for row in rows(events, "TaskCompleted")] == [5]
    assert len(rows(events, "ExecutionStarted")) == 1


def test_events_raised_around_continue_as_new_are_carried_over(host: FunchostProcess) -> None:
    instance_id = start(host, "accumulate_events", {"total": 0, "seen": 0, "expected": 3})
    wait_for(host, instance_id, lambda s: s["runtimeStatus"] == "Running", "Running")
    # A burst: the 2nd and 3rd events arrive while the 1st generation is finishing with continue-as-new.
    statuses = [raise_public(host, instance_id, "add", {"n": n}).status for n in (1, 2, 4)]
    assert statuses == [202, 202, 202]

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"total": 7, "seen": 3}
