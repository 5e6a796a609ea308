"""Recovery after a SIGKILL, and one host per task hub, through the real HTTP surface.

The `recovery` test app blocks its instances and its entity mid-step on gate files, so that messages sent
to them meanwhile stay leased to the host, unconsumed; the kill leaves those hidden in their queues for a
lease (30 s in the app's host.json). After the restart the tests send newer messages at once and check
that the order-sensitive ones (two events of one name, suspend then resume, entity operations) still
arrive in the order they were sent: once with the killed host's lease journal, which hands its messages
back at once, and once without it (as after a host on another machine died), where order-sensitive
messages wait for the hidden ones while starts and completions go ahead.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from funchost.errors import TaskHubLockedError
from funchost.stores._azure_layout import HOST_RK, MARKER_PK, HubLayout
from funchost.stores._azure_lease_journal import journal_path
from funchost.stores.azure import AzureStorageStore
from funchost.stores.azure_settings import storage_settings_from_env
from funchost.stores.base import Checkpoint, Message
from funchost.testing.azurite import Azurite
from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from funchost.testing.waiting import wait_until
from tests.integration._durable_helpers import DURABLE, event_types, history, raise_public, unique_id

pytestmark = pytest.mark.crash

APP = "recovery"
EVENT = "Step"
PARTITIONS = 4  # the app's partitionCount (the default)
WITH_INPUTS = "?showHistory=true&showHistoryOutput=true"
LESS_THAN_A_LEASE_S = 25.0  # the app's controlQueueVisibilityTimeout is 30 s


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


@dataclass
class InFlight:
    """Work a host was killed in the middle of, each piece with a message to it still leased to that host."""

    events_id: str  # got event "one", and blocked in the step that received it
    suspend_id: str  # got a suspend
    entity_key: str  # got operation 2 while operation 1 ran
    timer_id: str  # its timer, due right after the kill, is leased to the host that created it
    killed_pid: int


def kill_with_messages_in_flight(start_host: StartHost, tmp_path: Path) -> InFlight:
    host = start_host(APP)
    assert host.process is not None
    gates = [new_gate(tmp_path, name) for name in ("events", "suspend", "entity")]
    events_gate, suspend_gate, entity_gate = gates
    # Each blocks mid-step; what is sent to it meanwhile is leased to this host and not consumed.
    events_id = start_public(host, "two_events", {"gate": str(events_gate)})
    assert raise_public(host, events_id, EVENT, "one").status == 202
    suspend_id = start_public(host, "gated_finish", {"gate": str(suspend_gate)})
    entity_key = unique_id("journal")
    signal_journal(host, entity_key, {"value": 1, "gate": str(entity_gate)})
    for gate in gates:
        wait_until(lambda gate=gate: blocked(gate), f"{gate.name} to block")
    assert host.post(f"{DURABLE}/instances/{suspend_id}/suspend?reason=before-kill").status == 202
    signal_journal(host, entity_key, {"value": 2})
    timer_id = start_public(host, "timer_then_done", {"seconds": 2})
    wait_until(lambda: "TimerCreated" in event_types(history(host, timer_id)), "the timer to be created")
    pid = host.process.pid
    host.kill()
    for gate in gates:
        gate.unlink()
    return InFlight(events_id, suspend_id, entity_key, timer_id, pid)


def send_newer(host: FunchostProcess, work: InFlight) -> None:
    """After the restart, while the messages sent before the kill may still be hidden."""
    assert raise_public(host, work.events_id, EVENT, "two").status == 202
    assert host.post(f"{DURABLE}/instances/{work.suspend_id}/resume?reason=after-restart").status == 202
    signal_journal(host, work.entity_key, {"value": 3})


def assert_order_kept(host: FunchostProcess, work: InFlight, timeout: float) -> None:
    events = host.wait_for_status(work.events_id, timeout=timeout)
    assert events["runtimeStatus"] == "Completed", events
    received = [(e["EventType"], e.get("Input")) for e in history(host, work.events_id, WITH_INPUTS)]
    assert events["output"] == ["one", "two"], received  # two events of one name, in the order they were raised
    finished = host.wait_for_status(work.suspend_id, timeout=timeout)  # suspend, then resume: runs to its end
    assert finished["runtimeStatus"] == "Completed", finished
    assert finished["output"] == "done"
    wait_until(lambda: len(journal(host, work.entity_key) or []) >= 3, "the journal to hold three entries",
               timeout=timeout)
    assert journal(host, work.entity_key) == [1, 2, 3]  # entity operations in arrival order
    timer = host.wait_for_status(work.timer_id, timeout=timeout)
    assert timer["runtimeStatus"] == "Completed", timer
    assert timer["output"] == "fired"


def skip_unless_azure(store_kind: str) -> None:
    if store_kind != "azure":
        pytest.skip("only the Azure store has messages a killed host leaves hidden")


def test_a_restart_after_a_kill_gets_the_killed_hosts_messages_back_at_once_and_in_order(
        start_host: StartHost, store_kind: str, tmp_path: Path) -> None:
    skip_unless_azure(store_kind)
    work = kill_with_messages_in_flight(start_host, tmp_path)

    restarted = start_host(APP)
    send_newer(restarted, work)

    # The killed host's messages are handed back from its lease journal: nothing waits for the 30 s lease
    # of host.json, which is longer than any of these waits.
    assert_order_kept(restarted, work, timeout=LESS_THAN_A_LEASE_S)


def test_without_the_killed_hosts_journal_completions_go_ahead_and_order_sensitive_messages_wait(
        start_host: StartHost, store_kind: str, tmp_path: Path) -> None:
    skip_unless_azure(store_kind)
    work = kill_with_messages_in_flight(start_host, tmp_path)
    # As after a host on another machine died: nobody can end its leases, they have to run out.
    journals = list(journal_path("", "", 0, "").parent.glob(f"*-{work.killed_pid}-*.journal"))
    assert journals, "the killed host left no lease journal"
    for path in journals:
        path.unlink()

    restarted = start_host(APP)
    send_newer(restarted, work)
    # A new instance on the same control queue as the one whose event "two" waits behind "one": its start
    # and its activities' completions are not held back.
    same_queue = HubLayout("hub", PARTITIONS).control_queue(work.events_id)
    other_id = next(candidate for candidate in (unique_id("beside") for _ in range(1000))
                    if HubLayout("hub", PARTITIONS).control_queue(candidate) == same_queue)
    res = restarted.post(f"{DURABLE}/orchestrators/gated_finish/{other_id}", {"gate": str(tmp_path / "no-gate")})
    assert res.status == 202, res.text
    beside = restarted.wait_for_status(other_id, timeout=60)
    events_seen = event_types(history(restarted, work.events_id), ("EventRaised",))

    assert beside["runtimeStatus"] == "Completed", beside
    assert events_seen == [], "event 'two' was delivered before 'one', which the killed host held, came back"
    assert_order_kept(restarted, work, timeout=90)


def test_a_second_host_on_the_hub_is_refused_and_one_after_a_kill_starts(start_host: StartHost,
                                                                          tmp_path: Path) -> None:
    first = start_host(APP)
    assert first.process is not None
    second = FunchostProcess(app_dir=first.app_dir, store=first.store, extra_args=first.extra_args, env=first.env,
                             log_path=tmp_path / "second.log")
    with pytest.raises(RuntimeError, match="exited with"):
        second.start(timeout=60)
    assert second.process is not None and second.process.returncode == 1
    assert "already running on the task hub" in second.log()
    if first.store == "azure":
        assert f"pid {first.process.pid}" in second.log(), second.log()  # it names the owner
    instance_id = start_public(first, "timer_then_done", {"seconds": 0})
    assert first.wait_for_status(instance_id, timeout=30)["runtimeStatus"] == "Completed"

    first.kill()
    after_kill = start_host(APP)  # the killed owner's process is gone: its lease is taken over, not refused
    assert after_kill.wait_for_status(instance_id, timeout=30)["runtimeStatus"] == "Completed"


class _Ignore:
    """A WorkListener that ignores what the store announces: the test only writes."""

    def instance_ready(self, instance_id: str) -> None:
        pass

    def activity_ready(self, task: Any) -> None:
        pass


@pytest.mark.azurite
def test_a_host_whose_lease_another_host_took_writes_nothing_more(azurite: Azurite) -> None:
    hub = "t" + uuid.uuid4().hex[:14]
    settings = storage_settings_from_env({"AzureWebJobsStorage": azurite.connection_string})

    async def scenario() -> None:
        store = AzureStorageStore(settings, hub, poll_max_s=0.2, commit_retry_s=5.0)
        await store.open(_Ignore())  # type: ignore[arg-type]
        try:
            await store.commit(Checkpoint(messages=[Message("lease-probe", {"EventType": 15, "Name": "x"})]))
            # Another host takes the row, as it would once the lease had expired (a host on another machine).
            async with TableClient.from_connection_string(azurite.connection_string,
                                                          store.layout.instances_table) as table:
                await table.upsert_entity({"PartitionKey": MARKER_PK, "RowKey": HOST_RK, "Running": True,
                                           "Owner": "elsewhere:1:feed", "Machine": "elsewhere", "Pid": 1,
                                           "Token": "feed", "ExpiresAt": time.time() + 60}, mode=UpdateMode.REPLACE)
            refused: TaskHubLockedError | None = None
            for _ in range(60):  # until its next renewal is answered 412
                try:
                    await store.commit(Checkpoint(messages=[Message("lease-probe", {"EventType": 15, "Name": "y"})]))
                except TaskHubLockedError as err:
                    refused = err
                    break
                await asyncio.sleep(0.25)
            assert refused is not None, "the store went on writing after its lease was taken"
            assert "lost the task hub lease" in str(refused)

            second = AzureStorageStore(settings, hub)
            with pytest.raises(TaskHubLockedError, match="host elsewhere, pid 1"):
                await second.open(_Ignore())  # type: ignore[arg-type]
        finally:
            await store.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
