"""Rewind of failed orchestrations, through the public HTTP API and the SDK's own `client.rewind`.

Drives tests/apps/rewind on every store. Its steps fail until the test creates a `fixed` file and
count their runs in files, so a test sees which steps ran again: only the failed ones (a failed
sub-orchestration is rewound in place, not started again), and the instance then finishes with the
output it would have had. Also pinned: the reason recorded as the Durable extension records it (a
GenericEvent whose Data is the reason, the cleared rows marked "Rewound: <type>"), the extension's
answers for instances that are not Failed and for unknown ids, a step run with retries, an
orchestrator whose own code raised, and a rewind by a host started after the failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from funchost.testing.waiting import wait_until
from tests.integration._durable_helpers import DURABLE, finished, history, wait_for

APP = "rewind"
NOT_FAILED = "The rewind operation is only supported on failed orchestration instances."


@pytest.fixture
def host(start_host: StartHost) -> FunchostProcess:
    return start_host(APP)


def start(host: FunchostProcess, orchestrator: str, payload: dict[str, Any]) -> str:
    res = host.post(f"/api/start/{orchestrator}", payload)
    assert res.status == 202, res.text
    return str(res.json()["id"])


def failed(host: FunchostProcess, instance_id: str) -> dict[str, Any]:
    status = finished(host, instance_id)
    assert status["runtimeStatus"] == "Failed", status
    return status


def rewind_public(host: FunchostProcess, instance_id: str, reason: str) -> Any:
    return host.post(f"{DURABLE}/instances/{quote(instance_id)}/rewind?reason={quote(reason)}")


def rewind_with_sdk(host: FunchostProcess, instance_id: str, reason: str) -> Any:
    return host.post(f"/api/rewind/{quote(instance_id)}?reason={quote(reason)}")


def runs(folder: Path, kind: str = "runs") -> dict[str, int]:
    """How often each step started (or, with kind "ended", finished), by step name."""
    return {path.name.removeprefix(f"{kind}-"): len(path.read_text().splitlines())
            for path in folder.glob(f"{kind}-*")}


def fix(folder: Path) -> None:
    (folder / "fixed").write_text("fixed")


def generic_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["EventType"] == "GenericEvent"]


def test_rewound_activity_runs_again_and_the_instance_completes(host: FunchostProcess, tmp_path: Path) -> None:
    instance_id = start(host, "flaky_chain", {"dir": str(tmp_path)})
    status = failed(host, instance_id)
    assert "step second is broken" in status["output"]
    fix(tmp_path)
    (tmp_path / "hold").write_text("hold")  # the re-run step waits for `release`

    res = rewind_with_sdk(host, instance_id, "fixed the bug")

    assert res.status == 202, res.text
    assert host.status(instance_id).json()["runtimeStatus"] in ("Pending", "Running")
    wait_until(lambda: runs(tmp_path).get("second") == 2, "the failed step to run again")
    assert host.status(instance_id).json()["runtimeStatus"] == "Running"  # the step is held
    (tmp_path / "release").write_text("go")
    status = finished(host, instance_id)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == ["first ok", "second ok", "third ok"]
    assert runs(tmp_path) == {"first": 1, "second": 2, "third": 1}
    # As DurableTask.AzureStorage records it: the cleared rows stay as GenericEvents saying what they were,
    # and the message that resumed the instance is a GenericEvent carrying the reason.
    events = history(host, instance_id)
    assert [e.get("Reason") for e in generic_events(events)] == [
        "Rewound: TaskScheduled", "Rewound: TaskFailed", "Rewound: ExecutionCompleted", None]
    assert generic_events(events)[-1]["Data"] == "fixed the bug"
    assert [e["OrchestrationStatus"] for e in events if e["EventType"] == "ExecutionCompleted"] == ["Completed"]


def test_fan_out_runs_again_only_the_tasks_that_failed(host: FunchostProcess, tmp_path: Path) -> None:
    instance_id = start(host, "flaky_fan_out", {"dir": str(tmp_path), "count": 6, "failing": [1, 4]})
    failed(host, instance_id)
    # The first failure fails the instance; the rewind comes once no task of the first run is still running.
    wait_until(lambda: len(runs(tmp_path, "ended")) == 6, "every task of the fan-out to end")
    answered = {e["Input"]["name"]: e["EventType"] for e in history(host, instance_id)
                if e["EventType"] in ("TaskCompleted", "TaskFailed")}
    completed_before = {name for name, kind in answered.items() if kind == "TaskCompleted"}
    assert "TaskFailed" in answered.values() and len(completed_before) >= 2, answered
    fix(tmp_path)

    res = rewind_public(host, instance_id, "retry the broken items")

    assert res.status == 202 and res.body == b"", res.text
    status = finished(host, instance_id)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == [f"item-{i} ok" for i in range(6)]
    # A task whose result was recorded before the failure keeps it; the failed ones (and any whose result
    # came after the failure and was dropped) run again.
    assert runs(tmp_path) == {f"item-{i}": 1 if f"item-{i}" in completed_before else 2 for i in range(6)}
    assert {f"item-{i}" for i in (1, 4)}.isdisjoint(completed_before)


def test_failed_sub_orchestration_is_rewound_in_place(host: FunchostProcess, tmp_path: Path) -> None:
    instance_id = start(host, "flaky_parent", {"dir": str(tmp_path)})
    failed(host, instance_id)
    child_id = f"{instance_id}-child"
    child_before = failed(host, child_id)
    fix(tmp_path)

    res = rewind_with_sdk(host, instance_id, "child fixed")

    assert res.status == 202, res.text
    status = finished(host, instance_id)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == {"before": "parent-before ok",
                                "child": ["child-first ok", "child-second ok", "child-third ok"]}
    child = finished(host, child_id)
    assert child["runtimeStatus"] == "Completed"
    assert child["createdTime"] == child_before["createdTime"]  # the same run, not a new one
    assert runs(tmp_path) == {"parent-before": 1, "child-first": 1, "child-second": 2, "child-third": 1}
    # The child is the deepest failed instance: it gets the reason; the parent resumes on the child's answer.
    assert generic_events(history(host, child_id))[-1]["Data"] == "child fixed"
    parent_events = history(host, instance_id)
    assert [e.get("Reason") for e in generic_events(parent_events)] == [
        "Rewound: SubOrchestrationInstanceFailed", "Rewound: ExecutionCompleted"]
    assert [e["EventType"] for e in parent_events].count("SubOrchestrationInstanceCompleted") == 1


def test_retried_step_starts_over_after_a_rewind(host: FunchostProcess, tmp_path: Path) -> None:
    instance_id = start(host, "retried_step", {"dir": str(tmp_path)})
    failed(host, instance_id)
    assert runs(tmp_path) == {"before": 1, "retried": 2}
    fix(tmp_path)

    res = rewind_public(host, instance_id, "")

    assert res.status == 202, res.text
    status = finished(host, instance_id)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == ["before ok", "retried ok", "after ok"]
    assert runs(tmp_path) == {"before": 1, "retried": 3, "after": 1}


def test_orchestrator_code_that_raised_runs_again(host: FunchostProcess, tmp_path: Path) -> None:
    instance_id = start(host, "raise_until_fixed", {"dir": str(tmp_path)})
    first_failure = failed(host, instance_id)["output"]
    assert "the orchestrator's own code is broken" in first_failure

    # What the extension does: the failed ExecutionCompleted is cleared and the code replays; unchanged code
    # fails the same way again.
    assert rewind_public(host, instance_id, "again").status == 202
    status = wait_for(host, instance_id, lambda s: s["runtimeStatus"] == "Failed"
                      and any(e.get("Data") == "again" for e in generic_events(history(host, instance_id))),
                      "Failed again")
    assert status["output"] == first_failure

    fix(tmp_path)
    assert rewind_public(host, instance_id, "code fixed").status == 202
    status = finished(host, instance_id)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == ["before-raise ok", "after-raise ok"]
    assert runs(tmp_path) == {"before-raise": 1, "after-raise": 1}


def test_instances_that_have_not_failed_get_the_extensions_answers(host: FunchostProcess, tmp_path: Path) -> None:
    fix(tmp_path)
    completed = start(host, "flaky_chain", {"dir": str(tmp_path)})
    assert finished(host, completed)["runtimeStatus"] == "Completed"
    running = start(host, "wait_for_go", {})
    wait_for(host, running, lambda s: s["runtimeStatus"] == "Running", "Running")
    terminated = start(host, "wait_for_go", {})
    wait_for(host, terminated, lambda s: s["runtimeStatus"] == "Running", "Running")
    assert host.post(f"{DURABLE}/instances/{terminated}/terminate?reason=stop").status == 202
    wait_for(host, terminated, lambda s: s["runtimeStatus"] == "Terminated", "Terminated")

    # HttpApiHandler: 410 Gone for Completed, Terminated and Canceled ...
    for instance_id in (completed, terminated):
        assert rewind_public(host, instance_id, "x").status == 410
        sdk = rewind_with_sdk(host, instance_id, "x")
        assert sdk.status == 400 and sdk.json()["error"]["message"] == NOT_FAILED
    # ... and DurableClient.RewindAsync's InvalidOperationException for the rest, which the handler's catch-all
    # answers with 500; the SDK has no wording for that status and reports the payload.
    res = rewind_public(host, running, "x")
    assert res.status == 500, res.text
    assert res.json()["ExceptionMessage"] == NOT_FAILED
    sdk = rewind_with_sdk(host, running, "x")
    assert sdk.status == 400 and NOT_FAILED in sdk.json()["error"]["message"]
    assert finished(host, completed)["runtimeStatus"] == "Completed"
    assert host.status(running).json()["runtimeStatus"] == "Running"
    # An unknown id: 404, which the SDK words itself.
    assert rewind_public(host, "no-such-instance", "x").status == 404
    sdk = rewind_with_sdk(host, "no-such-instance", "x")
    assert sdk.json()["error"]["message"] == "No instance with ID no-such-instance found."


def test_rewind_by_a_host_started_after_the_failure(start_host: StartHost, tmp_path: Path) -> None:
    first = start_host(APP)
    instance_id = start(first, "flaky_parent", {"dir": str(tmp_path)})
    failed(first, instance_id)
    first.stop()
    fix(tmp_path)

    second = start_host(APP)
    res = rewind_with_sdk(second, instance_id, "after a restart")

    assert res.status == 202, res.text
    status = finished(second, instance_id)
    assert status["runtimeStatus"] == "Completed", status
    assert runs(tmp_path) == {"parent-before": 1, "child-first": 1, "child-second": 2, "child-third": 1}
