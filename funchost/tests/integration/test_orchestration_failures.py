"""Failures on funchost's Durable engine: how they are worded, unknown functions, non-determinism.

An orchestrator that raises, an activity that raises, a call to a function that is not
registered (which must fail the instance at once rather than leave it Running) and an
orchestrator whose code changed under a waiting instance, found when the host replays it after
a restart. Drives tests/apps/orchestrations over real HTTP.
"""

from __future__ import annotations

import re

import pytest

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from tests.integration._durable_helpers import (
    APP,
    finished,
    history,
    raise_public,
    rows,
    start,
    unique_id,
    wait_until_waiting,
)

STEP_TWO_SETTING = "ORCHESTRATIONS_APP_STEP_TWO"  # read by the app's `switch_step_two`


@pytest.fixture
def host(start_host: StartHost) -> FunchostProcess:
    return start_host(APP)


def test_orchestrator_exception_fails_the_instance_with_the_host_wording(host: FunchostProcess) -> None:
    instance_id = start(host, "raise_value_error")

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Failed", status
    assert status["output"] == "Orchestrator function 'raise_value_error' failed: x"
    events = history(host, instance_id)
    # The activity scheduled before the raise still ran and was recorded.
    assert [row["FunctionName"] for row in rows(events, "TaskCompleted")] == ["echo_value"]
    (completed,) = rows(events, "ExecutionCompleted")
    assert completed["OrchestrationStatus"] == "Failed"
    # The host log says so too, as the Durable extension traces it.
    assert f"{instance_id}: Function 'raise_value_error (Orchestrator)' failed with an error. Reason: x" in host.log()


def test_uncaught_activity_failure_fails_the_orchestration_and_names_the_activity(host: FunchostProcess) -> None:
    instance_id = start(host, "fail_on_activity_error")

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Failed", status
    output = status["output"]
    assert output.startswith("Orchestrator function 'fail_on_activity_error' failed:"), output
    assert "Activity function 'raise_activity_error' failed:" in output
    assert "kaboom from the activity" in output
    (failed,) = rows(history(host, instance_id), "TaskFailed")
    assert failed["FunctionName"] == "raise_activity_error"
    assert "kaboom from the activity" in failed["Reason"]


def test_caught_activity_failure_carries_the_activity_error(host: FunchostProcess) -> None:
    instance_id = start(host, "catch_activity_error")

    status = finished(host, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    caught = status["output"]["caught"]
    assert "Activity function 'raise_activity_error' failed:" in caught
    assert "ValueError" in caught
    assert "caught kaboom" in caught


@pytest.mark.parametrize(
    ("orchestrator", "missing"),
    [
        ("call_missing_activity", "nope"),
        ("call_missing_sub_orchestrator", "nope_orchestrator"),
        ("call_missing_entity", "nope_entity"),
    ],
)
def test_calling_an_unregistered_function_fails_the_instance_at_once(
    host: FunchostProcess, orchestrator: str, missing: str
) -> None:
    instance_id = start(host, orchestrator)

    # "At once": well before any timeout a stuck instance would need to be noticed.
    status = finished(host, instance_id, timeout=10.0)

    assert status["runtimeStatus"] == "Failed", status
    assert re.search(rf"\b{missing}\b", status["output"], re.IGNORECASE), status["output"]


@pytest.mark.timeout(120)
def test_changed_orchestrator_code_fails_the_replay_as_non_deterministic(start_host: StartHost) -> None:
    first = start_host(APP, env={STEP_TWO_SETTING: "record_route_a"})
    instance_id = unique_id("nondeterministic")
    start(first, "switch_step_two", instance_id=instance_id)
    wait_until_waiting(first, instance_id, {"stage": "waiting to proceed"})
    assert [row["FunctionName"] for row in rows(history(first, instance_id), "TaskCompleted")] == [
        "echo_value",
        "record_route_a",
    ]
    first.stop()

    # Same task hub, new code: step 2 (task id 1) now calls record_route_b.
    second = start_host(APP, env={STEP_TWO_SETTING: "record_route_b"})
    assert second.status(instance_id).json()["runtimeStatus"] == "Running"
    assert raise_public(second, instance_id, "proceed", "go").status == 202
    status = finished(second, instance_id)

    assert status["runtimeStatus"] == "Failed", status
    output = status["output"]
    assert "Non-deterministic" in output
    assert "record_route_a" in output and "record_route_b" in output
    assert re.search(r"\b1\b", output), f"the task id (1) is not named: {output}"


def test_unchanged_orchestrator_code_replays_fine_after_a_restart(start_host: StartHost) -> None:
    # The control for the test above: same setting on both runs, so the replay agrees.
    first = start_host(APP, env={STEP_TWO_SETTING: "record_route_b"})
    instance_id = start(first, "switch_step_two")
    wait_until_waiting(first, instance_id, {"stage": "waiting to proceed"})
    first.stop()

    second = start_host(APP, env={STEP_TWO_SETTING: "record_route_b"})
    assert raise_public(second, instance_id, "proceed", "go").status == 202
    status = finished(second, instance_id)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == ["one", "route b: two", "go"]
