"""The Durable management API on funchost, through the SDK's own client and the public HTTP API.

Check-status responses, get_status (custom status, history, input), the showHistory shape,
wait_for_completion, suspend/resume (events and activity results held), terminate, purge (one
instance and by filter), restart, queries (get_status_all / get_status_by) and paging, and the
rules for starting: unknown orchestrators and instance ids that are still active. Each SDK call
is made by a real `durable_client_input` route of tests/apps/orchestrations.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from tests.integration._durable_helpers import (
    APP,
    DURABLE,
    WAITING_STATUS,
    assert_json_error,
    event_types,
    finished,
    header,
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

HIDDEN_ROWS = {"OrchestratorStarted", "OrchestratorCompleted", "TaskScheduled", "SubOrchestrationInstanceCreated"}


@pytest.fixture
def host(start_host: StartHost) -> FunchostProcess:
    return start_host(APP)


def utc_text(moment: datetime) -> str:
    """The timestamp format the SDK sends in createdTimeFrom/createdTimeTo."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def wait_for_file(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"{path.name} did not appear in {timeout}s")
        time.sleep(0.02)


def status_in(host: FunchostProcess, instance_id: str, runtime_status: str) -> dict[str, Any]:
    return wait_for(host, instance_id, lambda s: s["runtimeStatus"] == runtime_status, runtime_status)


# --- check-status responses and get_status -----------------------------------------------------


def test_check_status_response_links_drive_the_instance(host: FunchostProcess) -> None:
    res = host.post("/api/start/wait_for_approval")

    assert res.status == 202, res.text
    links = res.json()
    assert header(res, "Location") == links["statusQueryGetUri"]
    assert links["statusQueryGetUri"].startswith(host.base_url + DURABLE + "/instances/" + links["id"])
    wait_until_waiting(host, links["id"])
    running = host.get(links["statusQueryGetUri"])
    assert running.status == 202, running.text
    assert running.json()["instanceId"] == links["id"]
    assert running.json()["runtimeStatus"] == "Running"
    assert header(running, "Location") and header(running, "Retry-After")
    send = host.post(links["sendEventPostUri"].replace("{eventName}", "approval"), {"via": "link"})
    assert send.status == 202, send.text
    finished(host, links["id"])
    done = host.get(links["statusQueryGetUri"])
    assert done.status == 200, done.text
    assert (done.json()["runtimeStatus"], done.json()["output"]) == ("Completed", {"via": "link"})


def test_custom_status_is_visible_in_get_status(host: FunchostProcess) -> None:
    instance_id = start(host, "wait_for_approval")
    public = wait_until_waiting(host, instance_id)

    through_sdk = host.get(f"/api/client/instances/{instance_id}")

    assert public["customStatus"] == WAITING_STATUS
    assert through_sdk.status == 200, through_sdk.text
    assert through_sdk.json()["customStatus"] == WAITING_STATUS
    assert through_sdk.json()["runtimeStatus"] == "Running"
    assert through_sdk.json()["name"] == "wait_for_approval"


def test_sdk_get_status_with_history_and_input(host: FunchostProcess) -> None:
    instance_id = start(host, "run_chain", "Oslo")
    finished(host, instance_id)

    res = host.get(f"/api/client/instances/{instance_id}?history=true&history_output=true&input=true")

    assert res.status == 200, res.text
    status = res.json()
    assert (status["runtimeStatus"], status["name"]) == ("Completed", "run_chain")
    assert status["input"] == "Oslo"
    assert status["output"] == "Hello Hello Hello Oslo"
    assert parse_time(status["createdTime"]) <= parse_time(status["lastUpdatedTime"])
    events = status["historyEvents"]
    assert event_types(events) == [
        "ExecutionStarted",
        "TaskCompleted",
        "TaskCompleted",
        "TaskCompleted",
        "ExecutionCompleted",
    ]
    assert rows(events, "TaskCompleted")[-1]["Result"] == "Hello Hello Hello Oslo"


def test_sdk_get_status_of_an_unknown_instance_is_empty(host: FunchostProcess) -> None:
    res = host.get("/api/client/instances/never-started")

    assert res.status == 404, res.text


def test_wait_for_completion_returns_the_output_or_the_check_status_response(host: FunchostProcess) -> None:
    done = host.post("/api/run/fan_out_fan_in", 3)
    assert (done.status, done.json()) == (200, {"count": 3, "sum": 14})

    pending = host.post("/api/run/wait_for_approval?timeout_ms=300&interval_ms=50")
    assert pending.status == 202, pending.text
    assert header(pending, "Location") == pending.json()["statusQueryGetUri"]
    assert host.status(pending.json()["id"]).json()["runtimeStatus"] in ("Pending", "Running")

    failed = host.post("/api/run/raise_value_error")
    assert failed.status == 500, failed.text
    assert failed.json()["runtimeStatus"] == "Failed"
    assert failed.json()["output"] == "Orchestrator function 'raise_value_error' failed: x"


def test_failed_instance_status_is_500_only_when_asked(host: FunchostProcess) -> None:
    instance_id = start(host, "raise_value_error")
    finished(host, instance_id)

    default = host.status(instance_id)
    asked = host.status(instance_id, "?returnInternalServerErrorOnFailure=true")

    assert (default.status, default.json()["runtimeStatus"]) == (200, "Failed")
    assert (asked.status, asked.json()["runtimeStatus"]) == (500, "Failed")
    assert asked.json()["output"] == "Orchestrator function 'raise_value_error' failed: x"


# --- the showHistory shape (spec section 5) ----------------------------------------------------


def test_show_history_shape(host: FunchostProcess) -> None:
    instance_id = start(host, "run_chain", "Tokyo")
    finished(host, instance_id)

    plain = host.status(instance_id).json()
    events = history(host, instance_id, "?showHistory=true&showInput=false")
    with_output = history(host, instance_id, "?showHistory=true&showHistoryOutput=true")
    with_input = history(host, instance_id, "?showHistory=true&showInput=true")
    without_input = host.status(instance_id, "?showInput=false").json()

    assert plain.get("historyEvents") is None
    assert plain["input"] == "Tokyo"  # the public API shows the input unless showInput=false
    assert without_input.get("input") is None
    assert event_types(events) == [
        "ExecutionStarted",
        "TaskCompleted",
        "TaskCompleted",
        "TaskCompleted",
        "ExecutionCompleted",
    ]
    assert not HIDDEN_ROWS & set(event_types(with_output))
    for row in events + with_output + with_input:
        assert isinstance(row["EventType"], str)
        assert "EventId" not in row and "IsPlayed" not in row, row
        parse_time(row["Timestamp"])
    assert events[0]["FunctionName"] == "run_chain"
    assert events[-1]["OrchestrationStatus"] == "Completed"
    for row in rows(events, "TaskCompleted"):
        assert row["FunctionName"] == "say_hello"
        assert parse_time(row["ScheduledTime"]) <= parse_time(row["Timestamp"])
    # Result only with showHistoryOutput.
    assert all("Result" not in row for row in events + with_input), events
    assert [row["Result"] for row in rows(with_output, "TaskCompleted")] == [
        "Hello Tokyo",
        "Hello Hello Tokyo",
        "Hello Hello Hello Tokyo",
    ]
    assert with_output[-1]["Result"] == "Hello Hello Hello Tokyo"
    # Input of the completion rows only with showInput.
    assert all("Input" not in row for row in events), events
    assert [row["Input"] for row in rows(with_input, "TaskCompleted")] == ["Tokyo", "Hello Tokyo", "Hello Hello Tokyo"]


def test_show_history_of_a_sub_orchestration_and_a_timer(host: FunchostProcess) -> None:
    parent_id = start(host, "call_children", {"childId": unique_id("child")})
    timer_id = start(host, "wait_on_timer", 100)
    finished(host, parent_id)
    finished(host, timer_id)

    parent = history(host, parent_id, "?showHistory=true&showHistoryOutput=true")
    timer = history(host, timer_id)

    assert event_types(parent, ("SubOrchestrationInstanceCompleted",)) == ["SubOrchestrationInstanceCompleted"] * 2
    for row in rows(parent, "SubOrchestrationInstanceCompleted"):
        assert row["FunctionName"] == "run_child"
        assert parse_time(row["ScheduledTime"]) <= parse_time(row["Timestamp"])
    assert [row["Result"] for row in rows(parent, "SubOrchestrationInstanceCompleted")] == [
        "Hello Named",
        "Hello Generated",
    ]
    assert not HIDDEN_ROWS & set(event_types(parent))
    (fired,) = rows(timer, "TimerFired")
    assert parse_time(fired["Timestamp"]) >= parse_time(fired["FireAt"])


# --- suspend / resume ------------------------------------------------------------------------------


def test_events_raised_while_suspended_are_held_until_resume(host: FunchostProcess) -> None:
    instance_id = start(host, "wait_for_approval")
    wait_until_waiting(host, instance_id)

    assert host.post(f"/api/client/instances/{instance_id}/suspend?reason=hold").status == 202
    suspended = status_in(host, instance_id, "Suspended")
    assert raise_public(host, instance_id, "approval", {"decision": "while suspended"}).status == 202
    time.sleep(0.5)  # give a wrongly delivered event time to complete the instance
    still = host.status(instance_id)

    assert suspended["customStatus"] == WAITING_STATUS
    assert still.status == 202, still.text
    assert (still.json()["runtimeStatus"], still.json()["output"]) == ("Suspended", None)
    assert still.json()["customStatus"] == WAITING_STATUS
    assert host.post(f"/api/client/instances/{instance_id}/resume?reason=go").status == 202
    status = finished(host, instance_id)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"decision": "while suspended"}
    kinds = event_types(history(host, instance_id), ("ExecutionSuspended", "ExecutionResumed"))
    assert kinds == ["ExecutionSuspended", "ExecutionResumed"]


def test_activity_completing_while_suspended_does_not_advance_until_resume(
    host: FunchostProcess, tmp_path: Path
) -> None:
    gate = tmp_path / "gate.txt"
    instance_id = start(host, "run_gated_activity", {"path": str(gate)})
    wait_for_file(Path(f"{gate}.started"))

    assert host.post(f"{DURABLE}/instances/{instance_id}/suspend?reason=hold").status == 202
    status_in(host, instance_id, "Suspended")
    staged = tmp_path / "gate.tmp"
    staged.write_text("open sesame")
    staged.rename(gate)  # atomic: the activity never reads a half-written gate
    wait_for_file(Path(f"{gate}.done"))
    time.sleep(0.5)  # give the activity's result time to (wrongly) complete the instance
    still = host.status(instance_id, "?showHistory=true")

    assert (still.json()["runtimeStatus"], still.json()["output"]) == ("Suspended", None)
    assert rows(still.json()["historyEvents"], "TaskCompleted") == []
    assert host.post(f"{DURABLE}/instances/{instance_id}/resume?reason=go").status == 202
    status = finished(host, instance_id)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == "gate opened: open sesame"


# --- terminate ------------------------------------------------------------------------------------


def test_terminate_sets_terminated_with_the_reason_as_output(host: FunchostProcess) -> None:
    instance_id = start(host, "wait_for_approval")
    wait_until_waiting(host, instance_id)

    res = host.post(f"/api/client/instances/{instance_id}/terminate?reason=stop%20now")

    assert res.status == 202, res.text
    status = finished(host, instance_id)
    assert (status["runtimeStatus"], status["output"]) == ("Terminated", "stop now")
    assert event_types(history(host, instance_id))[-1] in ("ExecutionTerminated", "ExecutionCompleted")
    # An event raised afterwards is refused, and the output stays the reason.
    assert_json_error(raise_public(host, instance_id, "approval", {"late": True}), 410)
    assert host.status(instance_id).json()["output"] == "stop now"


def test_terminate_of_a_completed_instance_is_410(host: FunchostProcess) -> None:
    instance_id = start(host, "run_chain", "Lima")
    finished(host, instance_id)

    res = host.post(f"{DURABLE}/instances/{instance_id}/terminate?reason=too%20late")

    assert_json_error(res, 410)
    status = host.status(instance_id).json()
    assert (status["runtimeStatus"], status["output"]) == ("Completed", "Hello Hello Hello Lima")


# --- purge ----------------------------------------------------------------------------------------


def test_purge_one_instance(host: FunchostProcess) -> None:
    public_id = start(host, "run_chain", "A")
    sdk_id = start(host, "run_chain", "B")
    finished(host, public_id)
    finished(host, sdk_id)

    purged = host.delete(f"{DURABLE}/instances/{public_id}")

    assert (purged.status, purged.json()) == (200, {"instancesDeleted": 1})
    assert_json_error(host.status(public_id), 404)
    assert_json_error(host.delete(f"{DURABLE}/instances/{public_id}"), 404)
    # Through the SDK: purge_instance_history gives 1, then 0 (the SDK maps the 404).
    assert host.delete(f"/api/client/instances/{sdk_id}").json() == {"instancesDeleted": 1}
    assert host.delete(f"/api/client/instances/{sdk_id}").json() == {"instancesDeleted": 0}
    assert host.get(f"/api/client/instances/{sdk_id}").status == 404
    assert host.get(f"{DURABLE}/instances").json() == []


@pytest.mark.timeout(60)
def test_purge_by_created_time_and_runtime_status(host: FunchostProcess) -> None:
    old = [start(host, "echo_input", n, instance_id=f"old-{n}") for n in range(2)]
    for instance_id in old:
        finished(host, instance_id)
    # Created times may be stored to the second: keep a full second either side of the boundary.
    time.sleep(1.1)
    boundary = datetime.now(timezone.utc)
    time.sleep(1.1)
    new = [start(host, "echo_input", n, instance_id=f"new-{n}") for n in range(2)]
    for instance_id in new:
        finished(host, instance_id)
    waiting = start(host, "wait_for_approval", instance_id="new-waiting")
    wait_until_waiting(host, waiting)

    recent_completed = urlencode({"createdTimeFrom": utc_text(boundary), "runtimeStatus": "Completed"})
    res = host.delete(f"{DURABLE}/instances?{recent_completed}")

    assert (res.status, res.json()) == (200, {"instancesDeleted": 2})
    remaining = {s["instanceId"]: s["runtimeStatus"] for s in host.get(f"{DURABLE}/instances").json()}
    assert remaining == {"old-0": "Completed", "old-1": "Completed", "new-waiting": "Running"}
    # The SDK's purge_instance_history_by, from a starter: the old Completed ones go, Running stays.
    all_completed = urlencode({"from": "2000-01-01T00:00:00+00:00", "statuses": "Completed"})
    sdk = host.delete(f"/api/client/instances?{all_completed}")
    assert (sdk.status, sdk.json()) == (200, {"instancesDeleted": 2})
    assert [s["instanceId"] for s in host.get(f"{DURABLE}/instances").json()] == ["new-waiting"]
    none_left = host.delete(f"{DURABLE}/instances?{recent_completed}")
    assert_json_error(none_left, 404)


# --- restart --------------------------------------------------------------------------------------


def test_restart_with_the_same_and_with_a_new_instance_id(host: FunchostProcess) -> None:
    instance_id = start(host, "stamp_start", "v1", instance_id=unique_id("restart"))
    first = finished(host, instance_id)["output"]

    same = host.post(f"/api/client/instances/{instance_id}/restart?new_id=false")
    assert (same.status, same.json()) == (202, {"id": instance_id})
    rerun = wait_for(
        host,
        instance_id,
        lambda s: s["runtimeStatus"] == "Completed" and s["output"]["startedAt"] != first["startedAt"],
        "Completed by a second run",
    )
    assert rerun["output"]["input"] == "v1"
    assert parse_time(rerun["output"]["startedAt"]) > parse_time(first["startedAt"])

    renewed = host.post(f"/api/client/instances/{instance_id}/restart?new_id=true")
    assert renewed.status == 202, renewed.text
    new_id = renewed.json()["id"]
    assert new_id != instance_id
    copy = finished(host, new_id)
    assert (copy["name"], copy["runtimeStatus"], copy["output"]["input"]) == ("stamp_start", "Completed", "v1")

    public = host.post(f"{DURABLE}/instances/{instance_id}/restart?restartWithNewInstanceId=true")
    assert public.status == 202, public.text
    public_id = public.json()["id"]
    assert public_id not in (instance_id, new_id)
    assert finished(host, public_id)["output"]["input"] == "v1"


# --- queries and paging ---------------------------------------------------------------------------


def query_ids(host: FunchostProcess, **params: str) -> set[str]:
    res = host.get(f"/api/client/instances?{urlencode(params)}")
    assert res.status == 200, res.text
    return {status["instanceId"] for status in res.json()}


def test_get_status_by_status_and_prefix_through_the_sdk(host: FunchostProcess) -> None:
    prefix = unique_id("query")
    done = [start(host, "echo_input", n, instance_id=f"{prefix}-done-{n}") for n in range(3)]
    waiting = [start(host, "wait_for_approval", instance_id=f"{prefix}-wait-{n}") for n in range(2)]
    other = start(host, "echo_input", 9, instance_id=unique_id("other"))
    for instance_id in [*done, other]:
        finished(host, instance_id)
    for instance_id in waiting:
        wait_until_waiting(host, instance_id)

    assert query_ids(host, prefix=prefix, statuses="Running") == set(waiting)
    assert query_ids(host, prefix=prefix, statuses="Completed") == set(done)
    assert query_ids(host, prefix=prefix, statuses="Running,Completed") == set(done + waiting)
    assert query_ids(host, prefix=prefix) == set(done + waiting)
    assert query_ids(host, statuses="Completed") == {*done, other}
    assert query_ids(host, prefix=prefix, statuses="Failed") == set()
    everything = host.get("/api/client/all_instances")
    assert everything.status == 200, everything.text
    by_id = {s["instanceId"]: s for s in everything.json()}
    assert set(by_id) == {*done, *waiting, other}
    assert by_id[done[1]]["output"] == 1 and by_id[done[1]]["name"] == "echo_input"
    assert by_id[waiting[0]]["runtimeStatus"] == "Running"


@pytest.mark.timeout(60)
def test_get_status_by_created_time_range_through_the_sdk(host: FunchostProcess) -> None:
    early = [start(host, "echo_input", n) for n in range(2)]
    # Created times may be stored to the second: keep a full second either side of the boundary.
    time.sleep(1.1)
    boundary = datetime.now(timezone.utc).isoformat()
    time.sleep(1.1)
    late = [start(host, "echo_input", n) for n in range(2)]

    assert query_ids(host, to=boundary) == set(early)
    assert query_ids(host, **{"from": boundary}) == set(late)
    assert query_ids(host, **{"from": "2000-01-01T00:00:00+00:00", "to": "2000-01-02T00:00:00+00:00"}) == set()


@pytest.mark.timeout(180)
def test_public_api_pages_with_a_continuation_token(host: FunchostProcess) -> None:
    ids = [f"page-{n:03d}" for n in range(120)]
    for n, instance_id in enumerate(ids):
        res = start_public(host, "echo_input", n, instance_id)
        assert res.status == 202, res.text

    pages: list[list[str]] = []
    token: str | None = None
    for _ in range(6):
        res = host.get(f"{DURABLE}/instances?top=50", headers={"x-ms-continuation-token": token} if token else {})
        assert res.status == 200, res.text
        pages.append([status["instanceId"] for status in res.json()])
        token = header(res, "x-ms-continuation-token")
        if not token or not pages[-1]:
            break

    assert [len(page) for page in pages][:3] == [50, 50, 20], [len(page) for page in pages]
    assert all(len(page) == 0 for page in pages[3:])
    seen = [instance_id for page in pages for instance_id in page]
    assert len(seen) == len(set(seen)), "an instance came back on two pages"
    assert sorted(seen) == ids


# --- starting: unknown orchestrators, active ids --------------------------------------------------


def test_starting_an_unknown_orchestrator_is_refused_with_its_name(host: FunchostProcess) -> None:
    through_sdk = host.post("/api/start/nope", {"any": "input"})
    public = start_public(host, "nope", {"any": "input"})

    assert "nope" in assert_json_error(through_sdk, 400)
    assert "nope" in assert_json_error(public, 400)
    assert host.get(f"{DURABLE}/instances").json() == []


def test_starting_an_instance_id_that_is_still_active_is_refused(host: FunchostProcess) -> None:
    instance_id = unique_id("active")
    assert start_public(host, "wait_for_approval", None, instance_id).status == 202
    pending_or_running = start_public(host, "wait_for_approval", None, instance_id)
    wait_until_waiting(host, instance_id)
    running = start_public(host, "wait_for_approval", None, instance_id)
    through_sdk = host.post(f"/api/start/wait_for_approval?instance_id={instance_id}")
    assert host.post(f"{DURABLE}/instances/{instance_id}/suspend?reason=hold").status == 202
    status_in(host, instance_id, "Suspended")
    suspended = start_public(host, "wait_for_approval", None, instance_id)

    # The extension's answer (OrchestrationAlreadyExistsException through HttpApiHandler): a 500 that names
    # the status the instance is in.
    assert "already exists" in assert_json_error(pending_or_running, 500)
    assert "An Orchestration instance with the status Running already exists." in assert_json_error(running, 500)
    assert "with the status Suspended already exists." in assert_json_error(suspended, 500)
    # The SDK's start_new raises; the starter hands back the SDK's message as a 400.
    assert "with the status Running already exists." in assert_json_error(through_sdk, 400)
    # None of the refused starts touched the instance: still the first run, suspended, waiting.
    status = host.status(instance_id).json()
    assert (status["runtimeStatus"], status["customStatus"]) == ("Suspended", WAITING_STATUS)


def test_sdk_start_new_twice_with_the_same_id_raises(host: FunchostProcess) -> None:
    instance_id = unique_id("twice")

    res = host.post(f"/api/start_twice/wait_for_approval/{instance_id}")

    assert res.status == 200, res.text
    body = res.json()
    assert (body["firstId"], body["secondId"]) == (instance_id, None)
    assert any(f"An Orchestration instance with the status {status} already exists." in body["secondError"]
               for status in ("Pending", "Running")), body
    assert wait_until_waiting(host, instance_id)["runtimeStatus"] == "Running"


def test_starting_a_completed_instance_id_again_runs_it_anew(host: FunchostProcess) -> None:
    instance_id = unique_id("again")
    start(host, "run_chain", "A", instance_id=instance_id)
    assert finished(host, instance_id)["output"] == "Hello Hello Hello A"

    assert start(host, "run_chain", "B", instance_id=instance_id) == instance_id

    status = wait_for(
        host, instance_id, lambda s: s["output"] == "Hello Hello Hello B", "Completed with the second run's output"
    )
    assert status["runtimeStatus"] == "Completed"
    # The new run has its own history, not the first run's rows plus its own.
    assert len(rows(history(host, instance_id), "TaskCompleted")) == 3
