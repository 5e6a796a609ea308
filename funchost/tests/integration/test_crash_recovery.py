"""kill -9 of funchost in the middle of work, then a restart on the same task hub: nothing is lost.

Drives the `crashy` test app (tests/apps/crashy) on every store that outlives the process: a SQLite file,
and an Azure Storage task hub in Azurite. Only the host is killed, never Azurite (see
funchost.testing.azurite for why). Each test kills the host with SIGKILL while an instance is in flight,
starts a new host on the same task hub (the `start_host` fixture reuses the test's SQLite file, or its
Azure task hub name) and checks the instance completes with the right output, that acknowledged messages
survive, and that activities whose completion was recorded are not run again (at-least-once only for
the ones in flight at the kill).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from funchost.testing.waiting import wait_until

pytestmark = pytest.mark.crash

FAN_OUT = 40
EXPECTED_SUM = FAN_OUT * (FAN_OUT + 1) // 2  # each activity returns index + 1


def start(host: FunchostProcess, orchestrator: str, payload: Any) -> str:
    instance_id = f"crash-{uuid.uuid4().hex[:12]}"
    res = host.post(f"/api/orchestrators/{orchestrator}/{instance_id}", payload)
    assert res.status == 202, res.text
    assert res.json()["id"] == instance_id
    return instance_id


def runs_per_index(marker_dir: Path) -> dict[int, int]:
    """How many times each fan-out activity ran: one line per run in the file named by its index."""
    return {int(path.name): len(path.read_text().splitlines()) for path in marker_dir.iterdir()}


def history(host: FunchostProcess, instance_id: str) -> list[dict[str, Any]]:
    res = host.status(instance_id, "?showHistory=true&showHistoryOutput=true")
    assert res.status in (200, 202), res.text
    return list(res.json().get("historyEvents") or [])


def decode(value: Any) -> Any:
    """A history Result as a value: the API may give it as JSON or as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def completed_indices(events: list[dict[str, Any]]) -> set[int]:
    """Fan-out indices whose TaskCompleted is in the recorded history."""
    return {decode(event.get("Result"))["index"] for event in events if event.get("EventType") == "TaskCompleted"}


def kill_mid_fan_out(host: FunchostProcess, marker_dir: Path) -> str:
    """Start the fan-out and SIGKILL the host once some, but not all, activities have started."""
    instance_id = start(host, "fan_out_markers", {"dir": str(marker_dir), "count": FAN_OUT})
    wait_until(lambda: len(runs_per_index(marker_dir)) >= 8, "8 fan-out activities to start")
    started = len(runs_per_index(marker_dir))
    assert started < FAN_OUT, (
        "the whole fan-out started at once, so the kill cannot land in its middle; "
        "is maxConcurrentActivityFunctions (4 in crashy/host.json) honoured?"
    )
    return instance_id


def test_kill_during_fan_out_then_restart_completes(start_host: StartHost, tmp_path: Path) -> None:
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    host = start_host("crashy")
    instance_id = kill_mid_fan_out(host, marker_dir)

    host.kill()
    assert len(runs_per_index(marker_dir)) < FAN_OUT

    restarted = start_host("crashy")
    status = restarted.wait_for_status(instance_id, timeout=60)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"sum": EXPECTED_SUM, "count": FAN_OUT}
    assert sorted(runs_per_index(marker_dir)) == list(range(FAN_OUT))


def test_activities_completed_before_the_kill_are_not_run_again(start_host: StartHost, tmp_path: Path) -> None:
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    host = start_host("crashy")
    instance_id = kill_mid_fan_out(host, marker_dir)
    wait_until(
        lambda: len(completed_indices(history(host, instance_id))) >= 4, "4 activity completions recorded in history"
    )

    recorded = completed_indices(history(host, instance_id))  # read right before the kill
    host.kill()
    assert 4 <= len(recorded) < FAN_OUT, recorded

    restarted = start_host("crashy")
    status = restarted.wait_for_status(instance_id, timeout=60)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"sum": EXPECTED_SUM, "count": FAN_OUT}
    runs = runs_per_index(marker_dir)
    assert sorted(runs) == list(range(FAN_OUT)), "an activity never ran"
    ran_again = {index: runs[index] for index in recorded if runs[index] != 1}
    assert not ran_again, f"activities recorded as completed before the kill ran again: {ran_again}"
    final_completed = completed_indices(history(restarted, instance_id))
    assert final_completed == set(range(FAN_OUT))


def test_kill_during_timer_wait_then_restart_completes_after_the_timer(start_host: StartHost) -> None:
    host = start_host("crashy")
    instance_id = start(host, "wait_on_timer", {"seconds": 2, "value": "after-crash"})
    wait_until(
        lambda: any(e.get("EventType") == "TimerCreated" for e in history(host, instance_id)),
        "the durable timer to be recorded",
    )

    host.kill()
    restarted = start_host("crashy")
    status = restarted.wait_for_status(instance_id, timeout=30)
    observed_at = datetime.now(timezone.utc)

    assert status["runtimeStatus"] == "Completed", status
    output = status["output"]
    assert output["value"] == "after-crash"
    fire_at = datetime.fromisoformat(output["fireAt"])
    assert datetime.fromisoformat(output["resumedAt"]) >= fire_at
    assert observed_at >= fire_at, "the timer fired before it was due"


def test_event_acknowledged_before_the_kill_is_not_lost(start_host: StartHost) -> None:
    host = start_host("crashy")
    instance_id = start(host, "wait_for_approval", None)
    host.wait_for_status(instance_id, statuses=("Running",))

    raised = host.post(
        f"/runtime/webhooks/durabletask/instances/{instance_id}/raiseEvent/Approval",
        {"approved": True, "by": "crash-test"},
    )
    assert raised.status == 202, raised.text
    host.kill()

    restarted = start_host("crashy")
    status = restarted.wait_for_status(instance_id, timeout=30)

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"approval": {"approved": True, "by": "crash-test"}}


@pytest.mark.parametrize(("orchestrator", "given", "output"), [
    ("echo_input", {"n": 1}, {"n": 1}),  # its last step consumes its start message
    ("run_chain", "Ada", "Hello Hello Hello Ada"),  # its last step consumes the result its work item carried
])
def test_a_kill_right_after_an_instance_finished_leaves_its_listing_right(
    start_host: StartHost, orchestrator: str, given: Any, output: Any
) -> None:
    """The Azure store writes the row that queries list shortly after the step's history; a kill in between
    used to leave the listing at Pending or Running for good, while the instance's own status said Completed.
    What that step consumed comes back to the next host, which writes the finished record again."""
    host = start_host("orchestrations")
    instance_id = f"listed-{uuid.uuid4().hex[:12]}"
    res = host.post(f"/runtime/webhooks/durabletask/orchestrators/{orchestrator}/{instance_id}", given)
    assert res.status == 202, res.text
    wait_until(lambda: host.status(instance_id).json().get("runtimeStatus") == "Completed", "the instance to finish",
               timeout=30)
    host.kill()
    host = start_host("orchestrations")

    def listed_status() -> str | None:
        listed = host.get(f"/runtime/webhooks/durabletask/instances?instanceIdPrefix={instance_id}").json()
        return listed[0]["runtimeStatus"] if listed else None

    wait_until(lambda: listed_status() == "Completed", "the listing to say Completed", timeout=30)
    assert host.status(instance_id).json()["output"] == output
