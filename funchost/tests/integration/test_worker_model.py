"""The Python worker's execution model on funchost: where user functions run, and that a function that
blocks stalls nothing but itself.

Drives the `worker_model` test app (tests/apps/worker_model). Its blocking functions wait on gate files
the test opens, so every "while X is blocked, Y still works" check holds X blocked for as long as it takes
Y to finish: a host that Y had to wait behind X would time Y's request out long before the gate opens.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from funchost.testing.process import FunchostProcess, HttpResult
from funchost.testing.pytest_plugin import StartHost
from funchost.testing.waiting import wait_until
from tests.integration._durable_helpers import DURABLE, finished, start_public

APP = "worker_model"
QUICK = 10.0  # seconds a request that must not wait behind a blocked function gets


class Gates:
    """The app's gate files: ``entered`` once a function blocks on one, ``open`` lets it go on."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def wait_entered(self, *names: str) -> None:
        wait_until(lambda: all((self.folder / f"{n}.entered").exists() for n in names), f"gates {names} entered")

    def entered(self, name: str) -> bool:
        return (self.folder / f"{name}.entered").exists()

    def open(self, *names: str) -> None:
        for name in names:
            (self.folder / f"{name}.open").write_text("")


class Background:
    """A request sent from a thread of the test, to be blocked while the test goes on."""

    def __init__(self, host: FunchostProcess, method: str, path: str, body: Any = None) -> None:
        self.result: HttpResult | None = None
        self._thread = threading.Thread(target=self._send, args=(host, method, path, body), daemon=True)
        self._thread.start()

    def _send(self, host: FunchostProcess, method: str, path: str, body: Any) -> None:
        # The host may stop under it (the stop test); join() then says the request did not finish.
        with contextlib.suppress(OSError):
            self.result = host.request(method, path, body, timeout=90.0)

    def join(self, timeout: float = 30.0) -> HttpResult:
        self._thread.join(timeout)
        assert self.result is not None, "the background request did not finish"
        return self.result


@pytest.fixture
def gates(tmp_path: Path) -> Gates:
    return Gates(tmp_path / "gates")


@pytest.fixture
def host(start_host: StartHost, gates: Gates) -> Iterator[FunchostProcess]:
    host = start_host(APP, env={"GATES_DIR": str(gates.folder)})
    yield host
    gates.open(*(p.name.removesuffix(".entered") for p in gates.folder.glob("*.entered")))


def start(host: FunchostProcess, orchestrator: str, payload: Any = None) -> str:
    res = start_public(host, orchestrator, payload)
    assert res.status == 202, res.text
    return str(res.json()["id"])


def completed_output(host: FunchostProcess, instance_id: str, timeout: float = QUICK) -> Any:
    status = finished(host, instance_id, timeout=timeout)
    assert status["runtimeStatus"] == "Completed", status
    return status["output"]


def signal_entity(host: FunchostProcess, key: str, operation: str, value: Any) -> None:
    res = host.post(f"{DURABLE}/entities/Slow/{key}?op={operation}", value, timeout=QUICK)
    assert res.status == 202, res.text


def entity_state(host: FunchostProcess, key: str) -> Any:
    res = host.get(f"{DURABLE}/entities/Slow/{key}", timeout=QUICK)
    return res.json() if res.status == 200 else None


def everything_else_still_works(host: FunchostProcess) -> None:
    """The host's own routes, a sync HTTP function, an orchestration with an activity, and an entity."""
    assert host.get("/admin/host/status", timeout=QUICK).status == 200
    assert host.get("/api/where/sync", timeout=QUICK).status == 200
    assert completed_output(host, start(host, "asyncio_inside"))["value"] == 42
    signal_entity(host, "bystander", "append", "still served")
    wait_until(lambda: entity_state(host, "bystander") == ["still served"], "a bystander entity's operation",
               timeout=QUICK)


# --- where user code runs ---------------------------------------------------------------------------

def test_sync_functions_run_in_pool_threads_with_no_running_loop(host: FunchostProcess) -> None:
    http = host.get("/api/where/sync").json()
    output = completed_output(host, start(host, "asyncio_inside"))

    for seen in (http, output["orchestrator"], output["activity"]):
        assert seen["main_thread"] is False, seen
        assert seen["running_loop"] is False, seen
    assert output["value"] == 42  # asyncio.run inside the orchestrator works


def test_async_functions_run_on_one_loop_in_the_main_thread(host: FunchostProcess) -> None:
    first = host.get("/api/where/async").json()
    second = host.get("/api/where/async").json()
    activity = completed_output(host, start(host, "call_sleeping_activity", 0.01))

    assert first["main_thread"] is True and first["running_loop"] is True
    assert first["loop"] == second["loop"] == activity["loop"]
    assert activity["main_thread"] is True


# --- a function that blocks stalls nothing else -------------------------------------------------------

def test_a_blocked_sync_http_function_stalls_nothing_else(host: FunchostProcess, gates: Gates) -> None:
    blocked = Background(host, "POST", "/api/block/sync/http")
    gates.wait_entered("http")

    everything_else_still_works(host)
    assert host.get("/api/where/async", timeout=QUICK).status == 200

    gates.open("http")
    assert blocked.join().json() == {"released": "http"}


def test_an_async_function_blocking_the_worker_loop_leaves_the_host_and_sync_functions_running(
        host: FunchostProcess, gates: Gates) -> None:
    blocked = Background(host, "POST", "/api/block/async/loop")
    gates.wait_entered("loop")

    # Async functions wait for the worker's loop, as under the Python worker; nothing else does.
    everything_else_still_works(host)

    gates.open("loop")
    assert blocked.join().json() == {"released": "loop"}
    assert host.get("/api/where/async", timeout=QUICK).status == 200


def test_a_blocked_orchestrator_stalls_no_other_instance(host: FunchostProcess, gates: Gates) -> None:
    blocked = start(host, "blocking_orchestrator", "orchestrator")
    gates.wait_entered("orchestrator")

    everything_else_still_works(host)
    assert host.status(blocked).json()["runtimeStatus"] == "Pending"  # its first episode has not ended

    gates.open("orchestrator")
    assert completed_output(host, blocked)["main_thread"] is False


def test_a_blocked_entity_stalls_no_other_entity_and_keeps_its_own_operations_in_order(
        host: FunchostProcess, gates: Gates) -> None:
    signal_entity(host, "busy", "block", "entity")
    gates.wait_entered("entity")
    for n in range(5):
        signal_entity(host, "busy", "append", n)

    everything_else_still_works(host)

    gates.open("entity")
    wait_until(lambda: entity_state(host, "busy") == [0, 1, 2, 3, 4], "the blocked entity's later operations")


def test_a_blocked_sync_activity_stalls_no_other_activity(host: FunchostProcess, gates: Gates) -> None:
    blocked = start(host, "call_blocking_activity", "activity")
    gates.wait_entered("activity")

    everything_else_still_works(host)
    assert completed_output(host, start(host, "call_sleeping_activity", 0.05))["main_thread"] is True

    gates.open("activity")
    assert completed_output(host, blocked)["main_thread"] is False


# --- ordering under concurrency -------------------------------------------------------------------------

def test_episodes_of_one_instance_never_overlap_while_instances_run_side_by_side(host: FunchostProcess) -> None:
    instances = [start(host, "fan_out", 25) for _ in range(4)]

    for instance_id in instances:
        assert completed_output(host, instance_id, timeout=60) == 25
    most = host.get("/api/concurrency").json()
    assert all(most[f"episode:{instance_id}"] == 1 for instance_id in instances), most


def test_each_entity_takes_its_operations_in_arrival_order_while_entities_run_side_by_side(
        host: FunchostProcess) -> None:
    keys = [f"ordered-{k}" for k in range(4)]
    for n in range(20):
        for key in keys:
            signal_entity(host, key, "append", n)

    for key in keys:
        wait_until(lambda key=key: entity_state(host, key) == list(range(20)), f"entity {key}'s 20 operations")
    most = host.get("/api/concurrency").json()
    assert all(most[f"entity:{key}"] == 1 for key in keys), most


# --- the pool's size ---------------------------------------------------------------------------------

@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_python_threadpool_thread_count_bounds_the_sync_pool(start_host: StartHost, gates: Gates) -> None:
    host = start_host(APP, env={"GATES_DIR": str(gates.folder), "PYTHON_THREADPOOL_THREAD_COUNT": "2"})
    blocked = [Background(host, "POST", f"/api/block/sync/pool-{n}") for n in range(3)]

    def entered() -> int:
        return sum(gates.entered(f"pool-{n}") for n in range(3))

    try:
        # The requests arrive in any order; two take the two threads, the third waits for one, as it would
        # under the worker. Given a moment in which a third thread would have taken it, it has not begun.
        wait_until(lambda: entered() >= 2, "two of the three blocking requests to begin")
        time.sleep(0.5)
        assert entered() == 2
        assert host.get("/admin/host/status", timeout=QUICK).status == 200  # the host itself is not in the pool
    finally:
        gates.open("pool-0", "pool-1", "pool-2")
    assert [b.join().status for b in blocked] == [200, 200, 200]
    assert host.get("/api/concurrency").json()["http"] == 2


# --- stopping -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_a_stop_does_not_wait_for_functions_that_block_and_their_activity_runs_again_on_the_next_start(
        start_host: StartHost, gates: Gates) -> None:
    host = start_host(APP, env={"GATES_DIR": str(gates.folder)})
    Background(host, "POST", "/api/block/sync/http")
    instance_id = start(host, "call_blocking_activity", "activity")
    gates.wait_entered("http", "activity")
    assert host.process is not None

    host.process.send_signal(signal.SIGTERM)
    try:
        code = host.process.wait(timeout=QUICK)
    except subprocess.TimeoutExpired:
        pytest.fail(f"funchost still runs {QUICK}s after SIGTERM while functions block:\n{host.log()}")

    assert code == 0
    assert "2 function invocation(s) still running; exiting without waiting for them." in host.log()
    (gates.folder / "activity.entered").unlink()
    restarted = start_host(APP, env={"GATES_DIR": str(gates.folder)})
    gates.wait_entered("activity")  # the activity the stop cut off runs again
    gates.open("activity")
    assert completed_output(restarted, instance_id)["main_thread"] is False
