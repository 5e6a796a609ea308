"""Poison limits: work that kills its host every time fails its instance, healthy work killed often does not.

Drives the `poison` test app (tests/apps/poison: maxDequeueCount 2, a 2 s lease) on both stores that outlive
the process. The limit counts attempts that started and did not finish, not deliveries: a host holding its
control queues back after an unclean stop, or opening its SQLite file, counts nothing. A first delivery
needs no write, so a crash loop runs its work once more than the limit: the first attempt is recorded
only by the redelivery after it (see the README's "Poison messages").
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from funchost.testing.waiting import wait_until
from tests.integration._durable_helpers import DURABLE, start_public

pytestmark = pytest.mark.crash

APP = "poison"
LIMIT = 2  # maxDequeueCount in tests/apps/poison/host.json
POISONED = r"{n} attempts at it did not finish \(limit {limit};"


def runs(trace: Path) -> int:
    return len(trace.read_text().splitlines()) if trace.exists() else 0


def start_instance(host: FunchostProcess, orchestrator: str, payload: object) -> str:
    instance_id = f"{orchestrator}-{uuid.uuid4().hex[:8]}"
    res = start_public(host, orchestrator, payload, instance_id)
    assert res.status == 202, res.text
    return instance_id


def run_until_it_crashes(start_host: StartHost, trace: Path, expected_runs: int,
                         first: Callable[[FunchostProcess], None] | None = None) -> None:
    """Start a host on the test's task hub and wait until the poisoned work has killed it once more."""
    try:
        host = start_host(APP)
    except RuntimeError as err:  # it died before it answered: the work came back at once
        assert "exited with -9" in str(err), err
    else:
        if first is not None:
            first(host)
        assert host.process is not None
        try:
            host.process.wait(30)
        except Exception:
            pytest.fail(f"the host did not crash within 30 s; its log:\n{host.log()}")
        assert host.process.returncode == -9
    assert runs(trace) == expected_runs


def healthy_work(host: FunchostProcess, steps: int, width: int) -> tuple[str, dict[str, object]]:
    expected = {"chain": steps, "fanOut": width * (width + 1) // 2, "entity": "ping"}
    return start_instance(host, "healthy_work", {"steps": steps, "width": width}), expected


@pytest.mark.parametrize(
    ("orchestrator", "reason"),
    [
        ("call_a_crashing_activity",
         r"Orchestrator function 'call_a_crashing_activity' failed: Activity function 'crash_the_host' failed: "
         r"its work item for instance '{id}' is poison: "),
        ("crash_in_the_orchestrator",
         r"Orchestrator function 'crash_in_the_orchestrator' failed: its ExecutionStarted message to instance "
         r"'{id}' is poison: "),
        ("call_a_crashing_entity",
         r"Orchestrator function 'call_a_crashing_entity' failed: .*Entity 'crasher' operation 'crash' on entity "
         r"@crasher@poisoned is poison: "),
    ],
)
def test_work_that_kills_the_host_every_time_fails_its_instance_and_the_host_stays_up(
    start_host: StartHost, restartable_store: None, tmp_path: Path, orchestrator: str, reason: str
) -> None:
    trace = tmp_path / "runs.txt"
    instance_id = f"poisoned-{orchestrator}"

    def start_the_instance(host: FunchostProcess) -> None:
        try:
            res = start_public(host, orchestrator, {"trace": str(trace)}, instance_id)
            assert res.status == 202, res.text
        except OSError:
            pass  # the host died before it answered; the trace says whether the start was saved

    # Each attempt kills the host; the next host takes the work up again (on Azure after the lease runs
    # out), until LIMIT attempts are recorded: the first attempt, on the first delivery, is not.
    run_until_it_crashes(start_host, trace, 1, first=start_the_instance)
    for attempt in range(2, LIMIT + 2):
        run_until_it_crashes(start_host, trace, attempt)
    host = start_host(APP)
    status = host.wait_for_status(instance_id, timeout=30)

    assert status["runtimeStatus"] == "Failed", status
    expected = reason.format(id=re.escape(instance_id)) + POISONED.format(n=LIMIT, limit=LIMIT)
    assert re.search(expected, str(status["output"])), status["output"]
    assert runs(trace) == LIMIT + 1  # the work was not run again once it was poison
    history = host.status(instance_id, "?showHistory=true").json()["historyEvents"]
    assert (history[-1]["EventType"], history[-1]["OrchestrationStatus"]) == ("ExecutionCompleted", "Failed")
    # Each attempt the host did not survive is in the log as such.
    assert "the host stopped during it" in host.log()
    # The host stays up and serves other work.
    healthy, output = healthy_work(host, steps=3, width=3)
    assert host.wait_for_status(healthy, timeout=30)["output"] == output
    assert host.process is not None and host.process.poll() is None


def test_a_signal_that_kills_the_host_every_time_is_dropped_and_the_other_operations_run_once(
    start_host: StartHost, restartable_store: None, tmp_path: Path
) -> None:
    trace = tmp_path / "runs.txt"
    entity = f"{DURABLE}/entities/Crasher/signalled"

    accepted: list[str] = []

    def signal_three(host: FunchostProcess) -> None:
        # Sent at once, so that they likely share a batch: the pings must not share the crash's fate.
        for op, body in (("ping", None), ("crash", {"trace": str(trace)}), ("ping", None)):
            try:
                assert host.post(f"{entity}?op={op}", body).status == 202
            except OSError:
                return  # the host died before it answered; the rest were not sent
            accepted.append(op)

    run_until_it_crashes(start_host, trace, 1, first=signal_three)
    for attempt in range(2, LIMIT + 2):
        run_until_it_crashes(start_host, trace, attempt)
    host = start_host(APP)
    wait_until(lambda: "operation 'crash' on entity @crasher@signalled is poison" in host.log(),
               "the poisoned signal to be dropped with an error in the log")

    res = host.get(entity)
    assert res.status == 200, res.text
    assert "crash" in accepted, accepted
    assert res.json() == accepted.count("ping"), "each ping ran once, and the dropped crash changed nothing"
    assert runs(trace) == LIMIT + 1
    assert host.process is not None and host.process.poll() is None


def kill_and_restart(start_host: StartHost, host: FunchostProcess, after: float) -> FunchostProcess:
    time.sleep(after)
    host.kill()
    return start_host(APP)


def test_a_healthy_instance_killed_every_second_is_not_failed_as_poison(
    start_host: StartHost, restartable_store: None
) -> None:
    host = start_host(APP)
    instance_id, output = healthy_work(host, steps=60, width=40)
    # Some kills come within the first second after a start (on Azure, while the control queues are still
    # held back after the previous kill), far more kills than the limit allows attempts.
    delays = [0.2, 0.9, 0.5, 1.1, 0.3, 0.8, 0.6, 1.0, 0.4, 0.7]
    unfinished = 0
    for delay in delays:
        host = kill_and_restart(start_host, host, delay)
        unfinished += host.status(instance_id).json()["runtimeStatus"] not in ("Completed", "Failed")
    status = host.wait_for_status(instance_id, timeout=60)

    print(f"{len(delays)} kills; the instance was unfinished after {unfinished} of them")
    assert (status["runtimeStatus"], status["output"]) == ("Completed", output), status["output"]


def with_default_limit(funchost_apps: Path, tmp_path: Path) -> Path:
    """The poison app with the default maxDequeueCount (5), and a 5 s lease: a host holding hundreds of
    messages renews each lease at half-time, which at 2 s is more calls than Azurite answers here."""
    app = tmp_path / "poison_default_limit"
    shutil.copytree(funchost_apps / APP, app)
    host_json = json.loads((app / "host.json").read_text())
    host_json["extensions"]["durableTask"]["storageProvider"] = {"controlQueueVisibilityTimeout": "00:00:05"}
    (app / "host.json").write_text(json.dumps(host_json))
    return app


@pytest.mark.soak
@pytest.mark.timeout(300)
def test_a_large_fan_out_backlog_interrupted_by_many_kills_completes(
    start_host: StartHost, restartable_store: None, funchost_apps: Path, tmp_path: Path
) -> None:
    # The default limit: a kill can cut off the instance's fan-in step (a replay of a long history) too,
    # which is a real unfinished attempt; what must not count is every pending work item at every start.
    app = with_default_limit(funchost_apps, tmp_path)
    host = start_host(app)
    instance_id, output = healthy_work(host, steps=0, width=1500)
    # The backlog first: the step that schedules the 1,500 work items is itself one attempt at the start
    # message, and killed every time it runs it would be poison, rightly.
    wait_until(lambda: host.status(instance_id).json().get("runtimeStatus") == "Running",
               "the fan-out to be scheduled", timeout=60)
    delays = [0.5, 1.0, 0.7, 1.3, 0.6, 1.1] * 3  # 18 kills, far more than the limit
    unfinished = 0
    started = time.monotonic()
    for delay in delays:
        time.sleep(delay)
        host.kill()
        host = start_host(app)
        unfinished += host.status(instance_id).json()["runtimeStatus"] not in ("Completed", "Failed")
    status = host.wait_for_status(instance_id, timeout=180)

    print(f"{len(delays)} kills; the backlog was unfinished after {unfinished} of them; "
          f"{time.monotonic() - started:.1f} s in all")
    assert (status["runtimeStatus"], status["output"]) == ("Completed", output), status["output"]
