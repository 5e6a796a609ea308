"""Recovery after a SIGKILL, and one host per task hub, through the real HTTP surface.

The `recovery` test app blocks its instances and its entity mid-step on gate files, so that messages sent
to them meanwhile stay leased to the host, unconsumed; the kill leaves those hidden in their queues for a
lease (30 s in the app's host.json). After the restart the test sends newer messages at once and checks
that the order-sensitive ones (two events of one name, suspend then resume, entity operations) still
arrive in the order they were sent, while a completion (a durable timer firing) is delivered without
waiting for the hidden messages to come back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from funchost.testing.waiting import wait_until
from tests.integration._durable_helpers import DURABLE, event_types, history, raise_public, unique_id

pytestmark = pytest.mark.crash

APP = "recovery"
EVENT = "Step"


def start_public(host: FunchostProcess, orchestrator: str, payload: Any) -> str:
    instance_id = unique_id(orchestrator.replace("_", "-"))
    res = host.post(f"{DURABLE}/orchestrators/{orchestrator}/{instance_id}", payload)
    assert res.status == 202, res.text
    return instance_id


def signal_journal(host: FunchostProcess, key: str, item: dict[str, Any]) -> None:
    res = host.post(f"{DURABLE}/entities/Journal/{key}?op=append", item)
    assert res.status == 202, res.text


def journal(host: FunchostProcess, key: str) -> list[Any] | None:
    res = host.get(f"{DURABLE}/entities/Journal/{key}")
    return res.json() if res.status == 200 else None  # type: ignore[no-any-return]


def new_gate(folder: Path, name: str) -> Path:
    gate = folder / name
    gate.write_text("closed")
    return gate


def blocked(gate: Path) -> bool:
    return gate.with_name(gate.name + ".blocked").exists()


def test_after_a_kill_completions_go_ahead_while_order_sensitive_messages_keep_their_order(
        start_host: StartHost, store_kind: str, tmp_path: Path) -> None:
    if store_kind != "azure":
        pytest.skip("only the Azure store has messages a killed host leaves hidden")
    host = start_host(APP)
    events_gate, suspend_gate, entity_gate = (new_gate(tmp_path, name) for name in ("events", "suspend", "entity"))

    # Each blocks mid-step; what is sent to it meanwhile is leased to this host and not consumed.
    events_id = start_public(host, "two_events", {"gate": str(events_gate)})
    suspend_id = start_public(host, "gated_finish", {"gate": str(suspend_gate)})
    entity_key = unique_id("journal")
    signal_journal(host, entity_key, {"value": 1, "gate": str(entity_gate)})
    for gate in (events_gate, suspend_gate, entity_gate):
        wait_until(lambda gate=gate: blocked(gate), f"{gate.name} to block")
    assert raise_public(host, events_id, EVENT, "one").status == 202
    assert host.post(f"{DURABLE}/instances/{suspend_id}/suspend?reason=before-kill").status == 202
    signal_journal(host, entity_key, {"value": 2})
    # A completion in flight at the kill: a timer that fires after it.
    timer_id = start_public(host, "timer_then_done", {"seconds": 2})
    wait_until(lambda: "TimerCreated" in event_types(history(host, timer_id)), "the timer to be created")
    host.kill()
    for gate in (events_gate, suspend_gate, entity_gate):
        gate.unlink()

    restarted = start_host(APP)
    # Sent after the restart, while the ones sent before the kill are still hidden (leased to the dead host).
    assert raise_public(restarted, events_id, EVENT, "two").status == 202
    assert restarted.post(f"{DURABLE}/instances/{suspend_id}/resume?reason=after-restart").status == 202
    signal_journal(restarted, entity_key, {"value": 3})

    timer = restarted.wait_for_status(timer_id, timeout=60)
    # The completion went ahead while the older event was still hidden: the newer one waits behind it.
    events_seen = event_types(history(restarted, events_id), ("EventRaised",))
    assert timer["runtimeStatus"] == "Completed", timer
    assert timer["output"] == "fired"
    assert events_seen == [], "an event was delivered before the one the dead host held came back"

    events = restarted.wait_for_status(events_id, timeout=90)
    assert events["runtimeStatus"] == "Completed", events
    assert events["output"] == ["one", "two"]
    finished = restarted.wait_for_status(suspend_id, timeout=90)  # suspend, then resume: it runs to the end
    assert finished["runtimeStatus"] == "Completed", finished
    assert finished["output"] == "done"
    wait_until(lambda: len(journal(restarted, entity_key) or []) >= 3, "the journal to hold three entries",
               timeout=90)
    assert journal(restarted, entity_key) == [1, 2, 3]


def test_a_second_host_on_the_hub_is_refused_and_one_after_a_kill_starts(start_host: StartHost,
                                                                          tmp_path: Path) -> None:
    first = start_host(APP)
    assert first.process is not None
    second = FunchostProcess(app_dir=first.app_dir, store=first.store, extra_args=first.extra_args, env=first.env,
                             log_path=tmp_path / "second.log")
    with pytest.raises(RuntimeError, match="exited with"):
        second.start(timeout=60)
    assert second.process is not None and second.process.returncode not in (0, None)
    assert "already running on the task hub" in second.log()
    if first.store == "azure":
        assert f"pid {first.process.pid}" in second.log(), second.log()  # it names the owner
    instance_id = start_public(first, "timer_then_done", {"seconds": 0})
    assert first.wait_for_status(instance_id, timeout=30)["runtimeStatus"] == "Completed"

    first.kill()
    after_kill = start_host(APP)  # the killed owner's process is gone: its lease is taken over, not refused
    assert after_kill.wait_for_status(instance_id, timeout=30)["runtimeStatus"] == "Completed"
