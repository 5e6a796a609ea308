"""Management actions against live instances, as the Durable extension answers them.

Starting an id in use (host.json ``overridableExistingInstanceStates``, default ``NonRunningStates``: a live
instance is refused with the extension's 500 and words, a finished one is replaced; its sub-orchestrations stay,
and late results of the replaced run are dropped), purging (only finished instances; a live one is left and
counted 0), a purge racing a large event (never reported deleted while it lives on or comes back), waiting on
the start route for a failed run (its status, not its bare output) and restart under the same rules. Every
test runs on the SQLite and the Azure Storage task hub, through the public HTTP API and the SDK's client.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from funchost.stores.azure import AzureStorageStore
from funchost.stores.azure_settings import storage_settings_from_env
from funchost.stores.base import (
    COMPLETED,
    FAILED,
    RUNNING,
    ActivityTask,
    Checkpoint,
    InstanceQuery,
    InstanceRecord,
    Store,
)
from funchost.stores.sqlite import SqliteStore
from funchost.testing.azurite import Azurite
from funchost.testing.process import FunchostProcess, HttpResult
from funchost.testing.pytest_plugin import StartHost
from tests.integration._durable_helpers import (
    APP,
    DURABLE,
    WAITING_STATUS,
    assert_json_error,
    finished,
    history,
    raise_public,
    rows,
    start,
    start_public,
    unique_id,
    wait_for,
    wait_until_waiting,
)
from tests.paths import TEST_APPS

SUMMARY = "Something went wrong while processing your request"


@pytest.fixture
def host(start_host: StartHost) -> FunchostProcess:
    return start_host(APP)


def already_exists(res: HttpResult, status: str) -> None:
    """DurableTask.AzureStorage's OrchestrationAlreadyExistsException as HttpApiHandler answers it."""
    assert res.status == 500, res.text
    body = res.json()
    assert body["Message"] == SUMMARY, body
    assert body["ExceptionMessage"] == f"An Orchestration instance with the status {status} already exists.", body


def status_of(host: FunchostProcess, instance_id: str) -> dict[str, Any]:
    res = host.status(instance_id)
    assert res.status in (200, 202), res.text
    return res.json()  # type: ignore[no-any-return]


def instance_ids(host: FunchostProcess) -> dict[str, str]:
    res = host.get(f"{DURABLE}/instances")
    assert res.status == 200, res.text
    return {s["instanceId"]: s["runtimeStatus"] for s in res.json()}


def wait_for_file(path: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"{path.name} did not appear in {timeout}s")
        time.sleep(0.02)


# --- starting an id in use ------------------------------------------------------------------------


def test_a_start_of_a_live_instance_id_is_refused_with_the_extensions_answer(host: FunchostProcess) -> None:
    instance_id = unique_id("live")
    assert start_public(host, "wait_for_approval", None, instance_id).status == 202
    wait_until_waiting(host, instance_id)

    running = start_public(host, "echo_input", 1, instance_id)
    through_sdk = host.post(f"/api/start/echo_input?instance_id={instance_id}", 1)
    restarted = host.post(f"{DURABLE}/instances/{instance_id}/restart?restartWithNewInstanceId=false")
    assert host.post(f"{DURABLE}/instances/{instance_id}/suspend?reason=hold").status == 202
    wait_for(host, instance_id, lambda s: s["runtimeStatus"] == "Suspended", "Suspended")
    suspended = start_public(host, "echo_input", 1, instance_id)

    already_exists(running, "Running")
    already_exists(restarted, "Running")
    already_exists(suspended, "Suspended")
    # The SDK's start_new raises on the 500 (the starter hands its message back as a 400).
    assert "An Orchestration instance with the status Running already exists." in assert_json_error(through_sdk, 400)
    # None of them touched the run: the first one, suspended, still waiting.
    status = status_of(host, instance_id)
    assert (status["name"], status["runtimeStatus"], status["customStatus"]) == (
        "wait_for_approval", "Suspended", WAITING_STATUS)
    assert host.post(f"{DURABLE}/instances/{instance_id}/resume?reason=go").status == 202
    assert raise_public(host, instance_id, "approval", "yes").status == 202
    assert finished(host, instance_id)["output"] == "yes"


def test_a_start_of_a_finished_id_replaces_it_and_leaves_its_sub_orchestrations(host: FunchostProcess) -> None:
    parent = unique_id("parent")
    named_child = unique_id("child")
    start(host, "call_children", {"childId": named_child}, instance_id=parent)
    assert finished(host, parent)["output"] == ["Hello Named", "Hello Generated"]
    first_children = {i: s for i, s in instance_ids(host).items() if i != parent}
    assert len(first_children) == 2 and set(first_children.values()) == {"Completed"}

    again = start_public(host, "call_children", {"childId": named_child}, parent)

    assert again.status == 202, again.text
    status = wait_for(host, parent, lambda s: s["runtimeStatus"] == "Completed"
                      and rows(history(host, parent), "SubOrchestrationInstanceCompleted"), "Completed anew")
    assert status["output"] == ["Hello Named", "Hello Generated"]
    # The parent's history is its second run's alone; the first run's generated child is still listed (an
    # instance of its own), beside the second run's; the named child was replaced like any finished id.
    assert len(rows(history(host, parent), "ExecutionStarted")) == 1
    after = instance_ids(host)
    assert set(first_children) <= set(after)
    assert len(after) == 4 and set(after.values()) == {"Completed"}


def test_late_results_of_a_replaced_run_are_dropped(host: FunchostProcess, tmp_path: Path) -> None:
    instance_id = unique_id("replaced")
    old_gate, new_gate = tmp_path / "old-gate", tmp_path / "new-gate"
    start(host, "run_gated_activity", {"path": str(old_gate)}, instance_id=instance_id)
    wait_for_file(Path(f"{old_gate}.started"))
    # Terminated while its activity runs: the activity's result is still on its way.
    assert host.post(f"{DURABLE}/instances/{instance_id}/terminate?reason=replace").status == 202
    wait_for(host, instance_id, lambda s: s["runtimeStatus"] == "Terminated", "Terminated")
    assert start_public(host, "run_gated_activity", {"path": str(new_gate)}, instance_id).status == 202
    wait_for_file(Path(f"{new_gate}.started"))

    old_gate.write_text("old run")
    wait_for_file(Path(f"{old_gate}.done"))
    # Its task id is the new run's task 0 too: had the old result been taken, the run would be over.
    new_gate.write_text("new run")

    assert finished(host, instance_id)["output"] == "gate opened: new run"
    completions = rows(history(host, instance_id, "?showHistory=true&showHistoryOutput=true"), "TaskCompleted")
    assert [c["Result"] for c in completions] == ["new run"]


def app_with(tmp_path: Path, **durable: Any) -> Path:
    """A copy of the orchestrations app whose host.json durableTask section also has ``durable``."""
    app_dir = tmp_path / "orchestrations_app"
    shutil.copytree(TEST_APPS / APP, app_dir, ignore=shutil.ignore_patterns(".funchost", "__pycache__"))
    host_json = json.loads((app_dir / "host.json").read_text())
    host_json["extensions"]["durableTask"].update(durable)
    (app_dir / "host.json").write_text(json.dumps(host_json))
    return app_dir


def test_any_state_lets_a_start_replace_a_live_instance(start_host: StartHost, tmp_path: Path) -> None:
    host = start_host(app_with(tmp_path, overridableExistingInstanceStates="AnyState"))
    instance_id = unique_id("anystate")
    start(host, "wait_for_approval", instance_id=instance_id)
    wait_until_waiting(host, instance_id)

    replaced = start_public(host, "echo_input", {"second": True}, instance_id)

    assert replaced.status == 202, replaced.text
    status = wait_for(host, instance_id, lambda s: s["name"] == "echo_input" and s["runtimeStatus"] == "Completed",
                      "Completed by the second run")
    assert status["output"] == {"second": True}
    assert len(rows(history(host, instance_id), "ExecutionStarted")) == 1


# --- purge ----------------------------------------------------------------------------------------


def test_a_live_instance_is_not_purged(host: FunchostProcess) -> None:
    live = unique_id("live")
    done = unique_id("done")
    start(host, "wait_for_approval", instance_id=live)
    start(host, "echo_input", 1, instance_id=done)
    wait_until_waiting(host, live)
    finished(host, done)

    single = host.delete(f"{DURABLE}/instances/{live}")
    through_sdk = host.delete(f"/api/client/instances/{live}")
    everything = {"createdTimeFrom": "2000-01-01T00:00:00Z"}
    running_only = host.delete(f"{DURABLE}/instances?{urlencode({**everything, 'runtimeStatus': 'Running'})}")
    by_filter = host.delete(f"{DURABLE}/instances?{urlencode(everything)}")

    # HttpApiHandler answers an instance that exists with 200 and what was deleted: nothing, it runs.
    assert (single.status, single.json()) == (200, {"instancesDeleted": 0})
    assert through_sdk.json() == {"instancesDeleted": 0}
    assert_json_error(running_only, 404)  # nothing deleted
    assert (by_filter.status, by_filter.json()) == (200, {"instancesDeleted": 1})  # the finished one only
    assert instance_ids(host) == {live: "Running"}
    assert raise_public(host, live, "approval", "yes").status == 202
    assert finished(host, live)["output"] == "yes"
    assert host.delete(f"{DURABLE}/instances/{live}").json() == {"instancesDeleted": 1}
    assert_json_error(host.status(live), 404)


def stays_gone(host: FunchostProcess, instance_id: str) -> None:
    """404 now and for a second more (longer than the Azure store's deferred status-row writes), and not
    listed: nothing still on its way to the instance brings it back."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert_json_error(host.status(instance_id), 404)
        time.sleep(0.05)
    assert instance_id not in instance_ids(host)


def test_a_result_that_reaches_a_purged_instance_is_dropped(host: FunchostProcess, tmp_path: Path) -> None:
    instance_id = unique_id("purged")
    gate = tmp_path / "gate"
    start(host, "run_gated_activity", {"path": str(gate)}, instance_id=instance_id)
    wait_for_file(Path(f"{gate}.started"))
    assert host.post(f"{DURABLE}/instances/{instance_id}/terminate?reason=purge").status == 202
    wait_for(host, instance_id, lambda s: s["runtimeStatus"] == "Terminated", "Terminated")
    assert host.delete(f"{DURABLE}/instances/{instance_id}").json() == {"instancesDeleted": 1}

    # The activity still runs; its result, larger than a queue message, reaches no instance.
    gate.write_text("y" * 100_000)
    wait_for_file(Path(f"{gate}.done"))

    stays_gone(host, instance_id)


def purge_after(host: FunchostProcess, instance_id: str, delay: float) -> HttpResult:
    time.sleep(delay)
    return host.delete(f"{DURABLE}/instances/{instance_id}")


@pytest.mark.timeout(120)
def test_a_purge_racing_a_large_event_never_reports_a_live_instance_deleted(host: FunchostProcess) -> None:
    # Over the 64 KB of a queue message: on Azure Storage it goes through the payload table.
    large = {"approval": "x" * 100_000}
    outcomes: list[int] = []
    for attempt in range(8):
        instance_id = unique_id(f"race{attempt}")
        start(host, "wait_for_approval", instance_id=instance_id)
        wait_until_waiting(host, instance_id)
        # The event and the purge together, the purge a little later on each try (so that over the tries it
        # lands before, while and after the event is taken): it finds the run live or finished, never between.
        with ThreadPoolExecutor(2) as pool:
            raised = pool.submit(raise_public, host, instance_id, "approval", large)
            purged = pool.submit(purge_after, host, instance_id, attempt * 0.04).result()
        assert raised.result().status == 202
        assert purged.status == 200, purged.text
        deleted = purged.json()["instancesDeleted"]
        outcomes.append(deleted)
        if deleted == 0:
            # Still live when the purge looked: it goes on and finishes with the event.
            assert finished(host, instance_id)["output"] == large
            assert host.delete(f"{DURABLE}/instances/{instance_id}").json() == {"instancesDeleted": 1}
        stays_gone(host, instance_id)
    print(f"purge right after a large event: instancesDeleted per try {outcomes}")


def test_the_stores_purge_only_finished_instances(request: pytest.FixtureRequest, store_kind: str,
                                                  tmp_path: Path) -> None:
    """The stores keep the rule themselves: a live instance handed to ``purge`` is left whole, not counted."""
    store: Store
    if store_kind == "azure":
        server: Azurite = request.getfixturevalue("azurite")
        settings = storage_settings_from_env({"AzureWebJobsStorage": server.connection_string})
        store = AzureStorageStore(settings, f"t{uuid.uuid4().hex[:14]}", poll_max_s=0.2)
    else:
        store = SqliteStore(tmp_path / "hub.sqlite", "PurgeHub")

    async def scenario() -> tuple[int, list[str], int]:
        await store.open(_Quiet())
        try:
            for instance_id, status in (("live", RUNNING), ("done", COMPLETED), ("failed", FAILED)):
                now = time.time()
                rec = InstanceRecord(instance_id=instance_id, name="orch", execution_id=uuid.uuid4().hex,
                                     status=status, input=None, created_time=now, last_updated_time=now)
                await store.commit(Checkpoint(instance=rec, replace_history=True, new_history=[{"EventType": 0}]))
            deleted = await store.purge(["live", "done", "failed", "never-was"])
            left, _ = await store.query_instances(InstanceQuery())
            return deleted, [r.instance_id for r in left], len(await store.load_history("live"))
        finally:
            await store.close()

    assert asyncio.run(scenario()) == (2, ["live"], 1)


class _Quiet:
    """A listener for a store driven directly: nothing here runs what it announces."""

    def instance_ready(self, instance_id: str) -> None:
        pass

    def activity_ready(self, task: ActivityTask) -> None:
        pass


# --- waiting on the start route ---------------------------------------------------------------------


def test_waiting_on_the_start_route_for_a_failed_run_answers_its_status(host: FunchostProcess) -> None:
    failed = host.post(f"{DURABLE}/orchestrators/raise_value_error?timeout=20&pollingInterval=1")
    completed = host.post(f"{DURABLE}/orchestrators/echo_input?timeout=20&pollingInterval=1", {"n": 1})

    # HttpApiHandler: a Completed run's output; for a Failed one the status a status request gives.
    assert failed.status == 200, failed.text
    body = failed.json()
    assert (body["name"], body["runtimeStatus"]) == ("raise_value_error", "Failed")
    assert body["output"] == "Orchestrator function 'raise_value_error' failed: x"
    assert status_of(host, body["instanceId"])["runtimeStatus"] == "Failed"
    assert (completed.status, completed.json()) == (200, {"n": 1})


def test_waiting_on_the_restart_route_answers_like_the_start_route(host: FunchostProcess) -> None:
    instance_id = start(host, "raise_value_error")
    finished(host, instance_id)

    again = host.post(f"{DURABLE}/instances/{instance_id}/restart?restartWithNewInstanceId=false&timeout=20")

    assert again.status == 200, again.text
    assert (again.json()["instanceId"], again.json()["runtimeStatus"]) == (instance_id, "Failed")
