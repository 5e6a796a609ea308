"""The Azure Storage task hub against a real Azurite: what it stores, what it delivers, and how it fails.

Store-level tests (no funchost process): each drives ``AzureStorageStore`` as the engine does, through
``open(listener)``, ``commit``, the reads and ``close``, on a task hub of its own in the run's Azurite
(the ``azurite`` fixture of tests/conftest.py). The storage is inspected with the plain Azure SDK
clients where the store's own reads would prove nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from funchost.errors import (
    CheckpointConflictError,
    ConfigError,
    ForeignTaskHubError,
    StorageUnavailableError,
)
from funchost.stores._azure_batch import Operation, TransactionError, submit
from funchost.stores._azure_delivery import encode_message
from funchost.stores.azure import AzureStorageStore
from funchost.stores.azure_settings import StorageSettings, storage_settings_from_env
from funchost.stores.base import (
    COMPLETED,
    PENDING,
    RUNNING,
    ActivityTask,
    Checkpoint,
    EntityRecord,
    InstanceQuery,
    InstanceRecord,
    Json,
    Message,
)
from funchost.testing.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite, free_ports
from funchost.testing.pytest_plugin import start_or_skip

pytestmark = pytest.mark.azurite

T = TypeVar("T")


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[Azurite]:
    """An Azurite of the test's own, for a test that stops and restarts it (the others share the run's)."""
    server = start_or_skip(Azurite(location=tmp_path / "azurite", log_path=tmp_path / "azurite.log"))
    yield server
    server.stop()


@pytest.fixture
def hub() -> str:
    return f"t{uuid.uuid4().hex[:14]}"


def settings_for(server: Azurite) -> StorageSettings:
    return storage_settings_from_env({"AzureWebJobsStorage": server.connection_string})


@pytest.fixture
def settings(azurite: Azurite) -> StorageSettings:
    return settings_for(azurite)


def make_store(settings: StorageSettings, hub: str, **options: Any) -> AzureStorageStore:
    options.setdefault("poll_max_s", 0.2)
    options.setdefault("commit_retry_s", 10.0)
    return AzureStorageStore(settings, hub, **options)


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(scenario, 90))


@dataclass
class Listener:
    """A WorkListener that records what the store announces, and when."""

    ready: list[tuple[float, str]] = field(default_factory=list)
    tasks: list[ActivityTask] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Run at once when an instance is announced, as the engine would load it then; results in ``probed``.
    probes: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = field(default_factory=dict)
    probed: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    on_ready: Callable[[str], object] | None = None

    def instance_ready(self, instance_id: str) -> None:
        self.ready.append((time.time(), instance_id))
        if self.on_ready is not None:
            self.on_ready(instance_id)
        probe = self.probes.pop(instance_id, None)
        if probe is not None:
            self.probed[instance_id] = asyncio.ensure_future(probe())
        self.changed.set()

    def activity_ready(self, task: ActivityTask) -> None:
        self.tasks.append(task)
        self.changed.set()

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"timed out after {timeout}s waiting for {what}")
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.2))

    def announced(self, instance_id: str) -> bool:
        return any(iid == instance_id for _, iid in self.ready)


async def messages_of(store: AzureStorageStore, listener: Listener, instance_id: str, count: int = 1,
                      timeout: float = 15.0) -> list[Message]:
    """Wait until ``count`` messages of the instance are visible, and return them."""
    deadline = time.monotonic() + timeout
    while True:
        found = await store.visible_messages(instance_id, time.time())
        if len(found) >= count or time.monotonic() > deadline:
            break
        listener.changed.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(listener.changed.wait(), 0.1)
    assert len(found) >= count, f"{len(found)} of {count} messages of {instance_id} arrived within {timeout}s"
    return found


def record(instance_id: str, *, status: str = PENDING, input_text: str | None = '"in"', name: str = "orch",
           created: float | None = None, execution_id: str | None = None) -> InstanceRecord:
    now = time.time() if created is None else created
    return InstanceRecord(instance_id=instance_id, name=name, execution_id=execution_id or uuid.uuid4().hex,
                          status=status, input=input_text, created_time=now, last_updated_time=now,
                          engine={"next_task_id": 0})


def started(rec: InstanceRecord) -> Json:
    return {"EventType": 0, "EventId": -1, "Name": rec.name, "Input": rec.input, "Timestamp": "now",
            "OrchestrationInstance": {"InstanceId": rec.instance_id, "ExecutionId": rec.execution_id}}


def incompressible(size: int) -> str:
    """A JSON string value of about ``size`` characters that gzip cannot shrink much."""
    return json.dumps(base64.b64encode(os.urandom(size * 3 // 4)).decode())


def raw_clients(server: Azurite) -> tuple[TableServiceClient, QueueServiceClient]:
    credential = AzureNamedKeyCredential(ACCOUNT_NAME, ACCOUNT_KEY)
    return (TableServiceClient(f"http://127.0.0.1:{server.ports['table']}/{ACCOUNT_NAME}", credential=credential),
            QueueServiceClient(f"http://127.0.0.1:{server.ports['queue']}/{ACCOUNT_NAME}", credential=credential))


async def queue_length(server: Azurite, queue: str) -> int:
    """Messages in a queue, visible or not."""
    tables, queues = raw_clients(server)
    async with tables, queues:
        properties = await queues.get_queue_client(queue).get_queue_properties()
        return int(properties.approximate_message_count or 0)


async def row_count(server: Azurite, table: str, partition: str) -> int:
    tables, queues = raw_clients(server)
    async with tables, queues:
        client = tables.get_table_client(table)
        escaped = partition.replace("'", "''")
        return len([row async for row in client.query_entities(f"PartitionKey eq '{escaped}'")])


# --- round trips --------------------------------------------------------------------------------


def test_start_episode_and_activity_round_trip(settings: StorageSettings, hub: str, azurite: Azurite) -> None:
    async def scenario() -> None:
        store, listener = make_store(settings, hub), Listener()
        await store.open(listener)
        try:
            rec = record("order-1")
            start = started(rec)
            await store.commit(Checkpoint(instance=rec, replace_history=True,
                                          messages=[Message(rec.instance_id, start, rec.execution_id)]))
            loaded = await store.load_instance("order-1")
            assert loaded is not None
            assert (loaded.name, loaded.execution_id, loaded.status, loaded.input) == ("orch", rec.execution_id,
                                                                                    PENDING, '"in"')
            assert loaded.created_time == pytest.approx(rec.created_time, abs=1e-5)
            assert loaded.engine == {"next_task_id": 0}
            assert await store.load_history("order-1") == []

            (message,) = await messages_of(store, listener, "order-1")
            assert listener.announced("order-1")
            assert message.event == start
            assert (message.execution_id, message.dequeue_count) == (rec.execution_id, 1)

            # An episode: the start and a scheduled activity go to history, the activity to the work-item queue.
            scheduled = {"EventType": 4, "EventId": 0, "Name": "say_hello", "Input": '"Tokyo"'}
            rec.status, rec.engine = RUNNING, {"next_task_id": 1}
            await store.commit(Checkpoint(instance=rec, new_history=[start, scheduled], consumed=[message.id],
                                          activities=[ActivityTask("order-1", rec.execution_id, 0, "say_hello",
                                                                   '"Tokyo"')]))
            assert await store.load_history("order-1") == [start, scheduled]
            assert await store.visible_messages("order-1", time.time()) == []
            await listener.until(lambda: bool(listener.tasks), "the activity work item")
            (task,) = listener.tasks
            assert (task.instance_id, task.execution_id, task.task_id, task.name, task.input) == (
                "order-1", rec.execution_id, 0, "say_hello", '"Tokyo"')
            assert task.dequeue_count == 1

            # The activity's result: a completion message; the work item is deleted.
            completed = {"EventType": 5, "EventId": -1, "TaskScheduledId": 0, "Result": '"Hello Tokyo!"'}
            await store.commit(Checkpoint(messages=[Message("order-1", completed, rec.execution_id)],
                                          completed_activity=task.id))
            (result,) = await messages_of(store, listener, "order-1")
            assert result.event == completed

            rec.status, rec.output, rec.completed_time = COMPLETED, '"Hello Tokyo!"', time.time()
            done = {"EventType": 1, "EventId": -1, "OrchestrationStatus": 0, "Result": rec.output}
            await store.commit(Checkpoint(instance=rec, new_history=[completed, done], consumed=[result.id]))
            assert await store.load_history("order-1") == [start, scheduled, completed, done]
            final = await store.load_instance("order-1")
            assert final is not None and (final.status, final.output) == (COMPLETED, '"Hello Tokyo!"')
            assert final.completed_time == pytest.approx(rec.completed_time, abs=1e-5)
        finally:
            await store.close()
        # Nothing is left in the queues: every consumed message and the work item were deleted.
        layout = store.layout
        for queue in [*layout.control_queues, layout.workitem_queue]:
            assert await queue_length(azurite, queue) == 0, queue

    run(scenario())


def test_history_survives_reopening_and_appends_after_it(settings: StorageSettings, hub: str) -> None:
    async def scenario() -> None:
        rec = record("reopen", status=RUNNING)
        events = [{"EventType": 0, "n": i} for i in range(250)]  # more than one table transaction
        first = make_store(settings, hub)
        await first.open(Listener())
        await first.commit(Checkpoint(instance=rec, replace_history=True, new_history=events))
        await first.close()
        second = make_store(settings, hub)
        await second.open(Listener())
        try:
            assert await second.load_history("reopen") == events
            # A host that has not read the history yet still appends after it.
            third = make_store(settings, hub, exclusive=False)
            await third.open(Listener())
            await third.commit(Checkpoint(instance=rec, new_history=[{"EventType": 4, "n": 250}]))
            await third.close()
            assert await second.load_history("reopen") == [*events, {"EventType": 4, "n": 250}]
        finally:
            await second.close()

    run(scenario())


def test_a_new_execution_replaces_a_longer_history(settings: StorageSettings, hub: str, azurite: Azurite) -> None:
    async def scenario() -> None:
        store = make_store(settings, hub)
        await store.open(Listener())
        try:
            rec = record("looping", status=RUNNING)
            await store.commit(Checkpoint(instance=rec, replace_history=True,
                                          new_history=[{"EventType": 0, "n": i} for i in range(5)]))
            rec.execution_id = uuid.uuid4().hex
            await store.commit(Checkpoint(instance=rec, replace_history=True, new_history=[{"EventType": 0}]))
            assert await store.load_history("looping") == [{"EventType": 0}]
            loaded = await store.load_instance("looping")
            assert loaded is not None and loaded.execution_id == rec.execution_id
            # The old execution's rows are gone: one event row and the sentinel remain.
            assert await row_count(azurite, f"{hub}History", "looping") == 2
        finally:
            await store.close()

    run(scenario())


def test_entities_round_trip_list_and_delete(settings: StorageSettings, hub: str) -> None:
    async def scenario() -> None:
        store = make_store(settings, hub)
        await store.open(Listener())
        try:
            now = time.time()
            for key in ("a", "b", "c"):
                await store.commit(Checkpoint(entity=EntityRecord(f"@counter@{key}", json.dumps(key), now,
                                                                  recent=[f"op-{key}"])))
            await store.commit(Checkpoint(entity=EntityRecord("@session@x", '{"turns": []}', now)))
            loaded = await store.load_entity("@counter@b")
            assert loaded is not None
            assert (loaded.state, loaded.recent) == ('"b"', ["op-b"])
            assert loaded.last_modified == pytest.approx(now, abs=1e-5)

            first, token = await store.list_entities("Counter", 2, None)
            assert token is not None
            rest, end = await store.list_entities("Counter", 2, token)
            assert end is None
            assert [e.entity_id for e in first + rest] == ["@counter@a", "@counter@b", "@counter@c"]
            everything, _ = await store.list_entities(None, 10, None)
            assert len(everything) == 4

            big = incompressible(200_000)
            await store.commit(Checkpoint(entity=EntityRecord("@session@x", big, now)))
            again = await store.load_entity("@session@x")
            assert again is not None and again.state == big

            await store.commit(Checkpoint(delete_entity="@counter@b"))
            assert await store.load_entity("@counter@b") is None
        finally:
            await store.close()

    run(scenario())


# --- delivery -----------------------------------------------------------------------------------


def test_a_timer_message_is_announced_and_visible_only_from_its_time(settings: StorageSettings, hub: str) -> None:
    async def scenario() -> None:
        store, listener = make_store(settings, hub), Listener()
        await store.open(listener)
        try:
            fire_at = time.time() + 1.6
            timer = {"EventType": 11, "TimerId": 3, "FireAt": "later"}
            await store.commit(Checkpoint(messages=[Message("timers", timer, "e1", visible_at=fire_at)]))
            await asyncio.sleep(0.8)
            assert not listener.announced("timers")
            assert await store.visible_messages("timers", time.time()) == []
            await listener.until(lambda: listener.announced("timers"), "the timer", timeout=10)
            announced_at = next(at for at, iid in listener.ready if iid == "timers")
            assert announced_at >= fire_at
            (message,) = await store.visible_messages("timers", announced_at)
            assert message.event == timer and message.visible_at == fire_at
            # Asked about an earlier moment, the store does not hand it out.
            assert await store.visible_messages("timers", fire_at - 0.01) == []
        finally:
            await store.close()

    run(scenario())


def test_a_timer_longer_than_a_lease_waits_in_its_queue_and_comes_on_time(settings: StorageSettings,
                                                                          hub: str) -> None:
    async def scenario() -> None:
        store, listener = make_store(settings, hub, visibility_timeout_s=1, poll_max_s=5.0), Listener()
        await store.open(listener)
        try:
            fire_at = time.time() + 2.5
            timer = {"EventType": 11, "TimerId": 7}
            await store.commit(Checkpoint(messages=[Message("later", timer, "e1", visible_at=fire_at)]))
            await asyncio.sleep(1.5)
            assert not listener.announced("later")
            await listener.until(lambda: listener.announced("later"), "the timer", timeout=10)
            announced_at = next(at for at, iid in listener.ready if iid == "later")
            # Received by the queue's poller, woken for it (not after its idle back-off of up to 5 s).
            assert fire_at <= announced_at < fire_at + 1.0
            (message,) = await store.visible_messages("later", announced_at)
            assert message.event == timer and message.dequeue_count == 1
        finally:
            await store.close()

    run(scenario())


def test_a_timer_beyond_what_a_queue_can_hide_is_held_back_again(settings: StorageSettings, hub: str,
                                                                  azurite: Azurite) -> None:
    async def scenario() -> None:
        store, listener = make_store(settings, hub), Listener()
        await store.open(listener)
        try:
            far = time.time() + 30 * 24 * 3600
            await store.commit(Checkpoint(messages=[Message("patient", {"EventType": 11, "TimerId": 0}, "e1",
                                                            visible_at=far)]))
            # Sent hidden for the queue's maximum (7 days): nothing is announced, the message waits in its queue.
            await asyncio.sleep(0.5)
            assert not listener.announced("patient")
            assert await queue_length(azurite, store.layout.control_queue("patient")) == 1
        finally:
            await store.close()

    run(scenario())


def test_a_far_timer_that_comes_up_early_is_hidden_again(settings: StorageSettings, hub: str,
                                                          azurite: Azurite) -> None:
    """What happens after a queue's 7 days: the message is visible, its time is not there yet."""

    async def scenario() -> None:
        store, listener = make_store(settings, hub), Listener()
        await store.open(listener)
        far = time.time() + 30 * 24 * 3600
        outgoing = encode_message(store.layout, Message("patient", {"EventType": 11}, "e1", visible_at=far),
                                  time.time(), 0, hold_within=0)
        tables, queues = raw_clients(azurite)
        async with tables, queues:
            queue = queues.get_queue_client(outgoing.queue)
            try:
                await queue.send_message(outgoing.text, visibility_timeout=1, time_to_live=-1)
                await asyncio.sleep(2.5)  # visible after 1 s: received by the poller, and sent again
                assert not listener.announced("patient")
            finally:
                await store.close()  # hands back what it holds: a held message would show now
            assert await queue_length(azurite, outgoing.queue) == 1  # the copy; the original is deleted
            assert await queue.peek_messages(max_messages=32) == []  # and the copy is hidden

    run(scenario())


def test_messages_are_handed_out_oldest_first_and_up_to_a_limit(settings: StorageSettings, hub: str) -> None:
    async def scenario() -> None:
        store, listener = make_store(settings, hub), Listener()
        await store.open(listener)
        try:
            for batch in range(3):
                await store.commit(Checkpoint(messages=[
                    Message("@counter@k", {"EntityRequest": {"id": f"{batch}-{i}"}}) for i in range(4)]))
            messages = await messages_of(store, listener, "@counter@k", 12)
            assert [m.event["EntityRequest"]["id"] for m in messages] == [f"{b}-{i}" for b in range(3)
                                                                           for i in range(4)]
            first = await store.visible_messages("@counter@k", time.time(), limit=5)
            assert [m.id for m in first] == [m.id for m in messages[:5]]
        finally:
            await store.close()

    run(scenario())


def test_the_messages_of_one_step_are_seen_all_at_once(settings: StorageSettings, hub: str) -> None:
    """Signals an orchestration sends an entity in one step: the entity's first batch has all of them, in
    order, however the sends complete."""

    async def scenario() -> None:
        store, listener = make_store(settings, hub), Listener()
        await store.open(listener)
        try:
            listener.probes["@journal@j"] = lambda: store.visible_messages("@journal@j", time.time())
            await store.commit(Checkpoint(messages=[
                Message("@journal@j", {"EntityRequest": {"id": str(i)}}) for i in range(25)]))
            await listener.until(lambda: "@journal@j" in listener.probed, "the signals")
            first_seen = await listener.probed["@journal@j"]
            assert [m.event["EntityRequest"]["id"] for m in first_seen] == [str(i) for i in range(25)]
        finally:
            await store.close()

    run(scenario())


def test_a_message_not_consumed_comes_back_after_its_lease_with_dequeue_count_two(settings: StorageSettings,
                                                                                   hub: str) -> None:
    async def scenario() -> None:
        crashed, listener = make_store(settings, hub, visibility_timeout_s=2, release_on_close=False), Listener()
        await crashed.open(listener)
        await crashed.commit(Checkpoint(messages=[Message("lost", {"EventType": 6, "Name": "approval"})],
                                        activities=[ActivityTask("lost", "e1", 0, "work", None)]))
        (message,) = await messages_of(crashed, listener, "lost")
        await listener.until(lambda: bool(listener.tasks), "the work item")
        assert (message.dequeue_count, listener.tasks[0].dequeue_count) == (1, 1)
        let_go = time.monotonic()
        await crashed.close()  # as a crash: nothing consumed, leases not handed back

        survivor, second = make_store(settings, hub, visibility_timeout_s=2), Listener()
        await survivor.open(second)
        try:
            (again,) = await messages_of(survivor, second, "lost", timeout=15)
            await second.until(lambda: bool(second.tasks), "the work item again")
            assert time.monotonic() - let_go >= 1.0  # not before the lease ran out
            assert again.event == {"EventType": 6, "Name": "approval"}
            assert again.dequeue_count == 2
            assert second.tasks[0].dequeue_count == 2
        finally:
            await survivor.close()

    run(scenario())


def test_an_activity_result_rides_in_its_work_item_until_the_instance_consumes_it(settings: StorageSettings,
                                                                                  hub: str, azurite: Azurite) -> None:
    """The result is handed to the instance with no storage call; the work item stays leased until the step
    that consumes the result deletes it, so a crash before then brings the work item back (the activity
    runs again, as after a crash before a result is sent), and after it nothing comes back."""

    async def scenario() -> None:
        crashing, listener = make_store(settings, hub, visibility_timeout_s=1, release_on_close=False), Listener()
        await crashing.open(listener)
        await crashing.commit(Checkpoint(activities=[ActivityTask("waiting", "e1", 0, "work", '"in"')]))
        await listener.until(lambda: bool(listener.tasks), "the work item")
        result = {"EventType": 5, "TaskScheduledId": 0, "Result": "1"}
        await crashing.commit(Checkpoint(messages=[Message("waiting", result, "e1")],
                                         completed_activity=listener.tasks[0].id))
        assert listener.announced("waiting")
        (carried,) = await crashing.visible_messages("waiting", time.time())
        assert (carried.event, carried.execution_id, carried.dequeue_count) == (result, "e1", 1)
        assert await queue_length(azurite, crashing.layout.workitem_queue) == 1  # nothing sent, nothing deleted
        await crashing.close()  # a crash: the result was never consumed

        survivor, second = make_store(settings, hub, visibility_timeout_s=1), Listener()
        await survivor.open(second)
        try:
            await second.until(lambda: bool(second.tasks), "the work item, back after its lease")
            (again,) = second.tasks
            assert (again.instance_id, again.task_id, again.input, again.dequeue_count) == ("waiting", 0, '"in"', 2)
            assert await survivor.visible_messages("waiting", time.time()) == []
            await survivor.commit(Checkpoint(messages=[Message("waiting", result, "e1")], completed_activity=again.id))
            (delivered,) = await messages_of(survivor, second, "waiting")
            rec = record("waiting", status=RUNNING, execution_id="e1")
            await survivor.commit(Checkpoint(instance=rec, replace_history=True, new_history=[result],
                                             consumed=[delivered.id]))
            await survivor.query_instances(InstanceQuery())  # waits for the finished step's deletions
            assert await queue_length(azurite, survivor.layout.workitem_queue) == 0
            await asyncio.sleep(1.5)  # past the work item's lease, had it been left
            assert len(second.tasks) == 1
        finally:
            await survivor.close()

    run(scenario())


def test_a_carried_result_is_sent_as_a_message_when_the_host_stops(settings: StorageSettings, hub: str) -> None:
    async def scenario() -> None:
        first, listener = make_store(settings, hub, visibility_timeout_s=60), Listener()
        await first.open(listener)
        await first.commit(Checkpoint(activities=[ActivityTask("stopping", "e1", 0, "work", None)]))
        await listener.until(lambda: bool(listener.tasks), "the work item")
        result = {"EventType": 5, "TaskScheduledId": 0, "Result": "2"}
        await first.commit(Checkpoint(messages=[Message("stopping", result, "e1")],
                                      completed_activity=listener.tasks[0].id))
        await first.close()

        second, listener2 = make_store(settings, hub, visibility_timeout_s=60), Listener()
        await second.open(listener2)
        try:
            (message,) = await messages_of(second, listener2, "stopping", timeout=5)  # far less than the lease
            assert (message.event, message.execution_id) == (result, "e1")
            await asyncio.sleep(0.5)
            assert listener2.tasks == []  # the activity does not run again
        finally:
            await second.close()

    run(scenario())


def test_table_transactions_round_trip_keys_and_types_and_fail_whole(settings: StorageSettings, hub: str,
                                                                     azurite: Azurite) -> None:
    """The store's own transaction codec (``_azure_batch``), read back with the SDK."""
    when = datetime(2026, 11, 22, 19, 58, 5, 803186, tzinfo=timezone.utc)
    partition = "it's a key with spaces, ü and %"

    async def scenario() -> None:
        tables, queues = raw_clients(azurite)
        async with tables, queues:
            table = await tables.create_table(f"{hub}Batch")
            etags = await submit(table, [
                Operation("upsert", {"PartitionKey": partition, "RowKey": "0001", "S": "x\r\n--batch", "I": 7,
                                     "B": True, "F": 1.5, "D": when}),
                Operation("create", {"PartitionKey": partition, "RowKey": "sentinel", "Count": 1}),
            ])
            assert len(etags) == 2 and all(etags)
            row = await table.get_entity(partition, "0001")
            assert (row["S"], row["I"], row["B"], row["F"], row["D"]) == ("x\r\n--batch", 7, True, 1.5, when)
            sentinel = await table.get_entity(partition, "sentinel")
            assert sentinel.metadata["etag"] == etags[1]

            # A second insert of the sentinel, or a replace with an ETag it no longer has, fails the whole
            # transaction: the row written before it in the same transaction is not written either.
            for guard, status in ((Operation("create", {"PartitionKey": partition, "RowKey": "sentinel"}), 409),
                                  (Operation("replace", {"PartitionKey": partition, "RowKey": "sentinel"},
                                             'W/"datetime\'2020-01-01T00%3A00%3A00.0000000Z\'"'), 412)):
                with pytest.raises(TransactionError) as refused:
                    await submit(table, [Operation("upsert", {"PartitionKey": partition, "RowKey": "0002"}), guard])
                assert (refused.value.status_code, refused.value.index) == (status, 1)
                with pytest.raises(ResourceNotFoundError):
                    await table.get_entity(partition, "0002")

            (moved,) = await submit(table, [Operation("replace", {"PartitionKey": partition, "RowKey": "sentinel",
                                                                  "Count": 2}, etags[1])])
            assert (await table.get_entity(partition, "sentinel"))["Count"] == 2 and moved != etags[1]

    run(scenario())


def test_an_abandoned_message_comes_back_with_a_higher_dequeue_count(settings: StorageSettings,
                                                                     hub: str) -> None:
    async def scenario() -> None:
        store, listener = make_store(settings, hub, visibility_timeout_s=60), Listener()
        await store.open(listener)
        try:
            await store.commit(Checkpoint(messages=[Message("failing", {"EventType": 6, "Name": "x"})]))
            for attempt in (1, 2, 3):
                (message,) = await messages_of(store, listener, "failing", timeout=5)  # far less than the lease
                assert message.dequeue_count == attempt
                await store.abandon([message.id])
                assert await store.visible_messages("failing", time.time()) == []
        finally:
            await store.close()

    run(scenario())


def test_held_messages_are_handed_back_at_close(settings: StorageSettings, hub: str) -> None:
    async def scenario() -> None:
        first, listener = make_store(settings, hub, visibility_timeout_s=60), Listener()
        await first.open(listener)
        await first.commit(Checkpoint(messages=[Message("handover", {"EventType": 6})]))
        await messages_of(first, listener, "handover")
        await first.close()
        second, listener2 = make_store(settings, hub, visibility_timeout_s=60), Listener()
        await second.open(listener2)
        try:
            (again,) = await messages_of(second, listener2, "handover", timeout=5)  # far less than the lease
            assert again.dequeue_count == 2
        finally:
            await second.close()

    run(scenario())


def test_leases_are_renewed_while_messages_are_held(settings: StorageSettings, hub: str) -> None:
    async def scenario() -> None:
        holder, listener = make_store(settings, hub, visibility_timeout_s=1), Listener()
        await holder.open(listener)
        other, listener2 = make_store(settings, hub, visibility_timeout_s=1, exclusive=False), Listener()
        try:
            await holder.commit(Checkpoint(messages=[Message("held", {"EventType": 6})]))
            (message,) = await messages_of(holder, listener, "held")
            await other.open(listener2)
            await asyncio.sleep(3.0)  # three lease periods: without renewal the other store would get it
            assert not listener2.announced("held")
            await holder.commit(Checkpoint(consumed=[message.id]))
        finally:
            await other.close()
            await holder.close()

    run(scenario())


def test_messages_to_an_instance_being_created_wait_for_its_rows(settings: StorageSettings, hub: str) -> None:
    async def scenario() -> None:
        store, listener = make_store(settings, hub), Listener()
        await store.open(listener)
        try:
            parent = record("parent", status=RUNNING)
            await store.commit(Checkpoint(instance=parent, replace_history=True, new_history=[started(parent)]))
            # The child id was used before: its old history must not show through.
            old = record("child", status=COMPLETED)
            await store.commit(Checkpoint(instance=old, replace_history=True, new_history=[started(old)]))
            child = record("child")
            child.parent = {"instance_id": "parent", "execution_id": parent.execution_id, "task_id": 0,
                            "name": "orch"}

            async def load_child() -> tuple[InstanceRecord | None, list[Json]]:
                return await store.load_instance("child"), await store.load_history("child")

            listener.probes["child"] = load_child
            await store.commit(Checkpoint(instance=parent, new_instances=[child],
                                          messages=[Message("child", started(child), child.execution_id)]))
            await listener.until(lambda: "child" in listener.probed, "the child's start")
            # Read the moment its start was announced, the child is there, new and with no history.
            loaded, past = await listener.probed["child"]
            assert loaded is not None
            assert (loaded.status, loaded.execution_id, loaded.parent) == (PENDING, child.execution_id, child.parent)
            assert past == []
        finally:
            await store.close()

    run(scenario())


# --- large values -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [100_000, 4_000_000], ids=["100KB", "4MB"])
def test_large_values_round_trip(settings: StorageSettings, hub: str, azurite: Azurite, size: int) -> None:
    async def scenario() -> None:
        store, listener = make_store(settings, hub), Listener()
        await store.open(listener)
        try:
            value = incompressible(size)
            rec = record("big", input_text=value, status=RUNNING)
            rec.custom_status = value
            event = {"EventType": 5, "TaskScheduledId": 0, "Result": value}
            await store.commit(Checkpoint(instance=rec, replace_history=True, new_history=[event],
                                          messages=[Message("big", event, rec.execution_id)],
                                          activities=[ActivityTask("big", rec.execution_id, 1, "work", value)]))
            (message,) = await messages_of(store, listener, "big")
            assert message.event == event
            await listener.until(lambda: bool(listener.tasks), "the work item")
            assert listener.tasks[0].input == value
            loaded = await store.load_instance("big")
            assert loaded is not None and loaded.input == value and loaded.custom_status == value
            assert await store.load_history("big") == [event]
            rec.output, rec.status = value, COMPLETED
            await store.commit(Checkpoint(instance=rec, consumed=[message.id], completed_activity=listener.tasks[0].id))
            listed, _ = await store.query_instances(InstanceQuery(prefix="big"))
            assert [(r.output == value, r.status) for r in listed] == [(True, COMPLETED)]
            assert await store.purge(["big"]) == 1
        finally:
            await store.close()
        # Purge and the consumed message took their large values with them.
        assert await row_count(azurite, f"{hub}Payloads", "big") == 0

    run(scenario())


# --- concurrency, foreign hubs, settings --------------------------------------------------------


def test_a_concurrent_history_write_is_refused_by_etag(settings: StorageSettings, hub: str) -> None:
    async def scenario() -> None:
        one, two = make_store(settings, hub), make_store(settings, hub, exclusive=False)
        await one.open(Listener())
        await two.open(Listener())
        try:
            rec = record("contested", status=RUNNING)
            await one.commit(Checkpoint(instance=rec, replace_history=True, new_history=[{"EventType": 0}]))
            assert await one.load_history("contested") == [{"EventType": 0}]
            assert await two.load_history("contested") == [{"EventType": 0}]
            await one.commit(Checkpoint(instance=rec, new_history=[{"EventType": 4, "by": "one"}]))
            with pytest.raises(CheckpointConflictError) as caught:
                await two.commit(Checkpoint(instance=rec, new_history=[{"EventType": 4, "by": "two"}]))
            assert caught.value.instance_id == "contested"
            assert await one.load_history("contested") == [{"EventType": 0}, {"EventType": 4, "by": "one"}]
            # Having read the history again, the second writer may go on.
            await two.load_history("contested")
            await two.commit(Checkpoint(instance=rec, new_history=[{"EventType": 4, "by": "two"}]))
            assert [e.get("by") for e in await one.load_history("contested")] == [None, "one", "two"]
        finally:
            await one.close()
            await two.close()

    run(scenario())


def test_a_second_start_of_a_live_instance_is_refused_and_a_finished_one_restarts(settings: StorageSettings,
                                                                                  hub: str) -> None:
    async def scenario() -> None:
        store = make_store(settings, hub)
        await store.open(Listener())
        try:
            # Two starts of one id at once, each having found no instance: one wins, the other changes nothing.
            first, second = record("twice"), record("twice")
            results = await asyncio.gather(
                store.commit(Checkpoint(instance=first, replace_history=True, new_history=[started(first)])),
                store.commit(Checkpoint(instance=second, replace_history=True, new_history=[started(second)])),
                return_exceptions=True)
            refused = [r for r in results if isinstance(r, BaseException)]
            assert len(refused) == 1 and isinstance(refused[0], CheckpointConflictError), results
            winner = first if results[0] is None else second
            loaded = await store.load_instance("twice")
            assert loaded is not None and loaded.execution_id == winner.execution_id
            assert await store.load_history("twice") == [started(winner)]

            # Once it has finished, a new execution under the same id replaces it (a restart).
            winner.status = COMPLETED
            await store.commit(Checkpoint(instance=winner, new_history=[{"EventType": 1}]))
            again = make_store(settings, hub, exclusive=False)  # knows nothing of the instance
            await again.open(Listener())
            try:
                restarted = record("twice")
                await again.commit(Checkpoint(instance=restarted, replace_history=True,
                                              new_history=[started(restarted)]))
                assert await again.load_history("twice") == [started(restarted)]
            finally:
                await again.close()
        finally:
            await store.close()

    run(scenario())


def test_a_hub_written_by_another_host_is_refused(settings: StorageSettings, hub: str, azurite: Azurite) -> None:
    async def scenario() -> None:
        tables, queues = raw_clients(azurite)
        async with tables, queues:
            # What DurableTask.AzureStorage leaves: an Instances table with rows, and no funchost marker.
            instances = await tables.create_table(f"{hub}Instances")
            await instances.create_entity({"PartitionKey": "abc", "RowKey": "", "RuntimeStatus": "Running"})
        store = make_store(settings, hub)
        with pytest.raises(ForeignTaskHubError) as caught:
            await store.open(Listener())
        message = str(caught.value)
        assert hub in message and "another host" in message and "--hub" in message

    run(scenario())


def test_a_funchost_hub_opens_again_and_another_partition_count_is_refused(settings: StorageSettings,
                                                                           hub: str) -> None:
    async def scenario() -> None:
        store = make_store(settings, hub)
        await store.open(Listener())
        await store.commit(Checkpoint(instance=record("kept"), replace_history=True))
        await store.close()
        again = make_store(settings, hub)
        await again.open(Listener())
        assert await again.load_instance("kept") is not None
        await again.close()
        with pytest.raises(Exception, match="partitionCount 4"):
            await make_store(settings, hub, partition_count=2).open(Listener())

    run(scenario())


@pytest.mark.parametrize("name", ["ab", "my-hub", "1hub", "x" * 46])
def test_hub_names_that_cannot_name_tables_and_queues_are_refused(settings: StorageSettings, name: str) -> None:
    with pytest.raises(ConfigError, match="3 to 45 letters and digits"):
        AzureStorageStore(settings, name)


def test_storage_that_does_not_answer_fails_open_with_a_clear_error() -> None:
    (port,) = free_ports(1)
    settings = storage_settings_from_env({"AzureWebJobsStorage": (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};QueueEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME}")})
    store = AzureStorageStore(settings, "Unreachable", open_timeout_s=0.5)
    with pytest.raises(StorageUnavailableError) as caught:
        run(store.open(Listener()))
    assert f"127.0.0.1:{port}" in str(caught.value) and "AzureWebJobsStorage" in str(caught.value)
    assert ACCOUNT_KEY not in str(caught.value)


def test_wrong_account_key_fails_open_naming_the_setting(azurite: Azurite, hub: str) -> None:
    wrong = base64.b64encode(b"not the key" * 6).decode()
    connection = azurite.connection_string.replace(ACCOUNT_KEY, wrong)
    store = make_store(storage_settings_from_env({"AzureWebJobsStorage": connection}), hub)
    with pytest.raises(Exception) as caught:
        run(store.open(Listener()))
    assert "AzureWebJobsStorage" in str(caught.value) and "AccountKey" in str(caught.value)
    assert wrong not in str(caught.value)


# --- queries and purge --------------------------------------------------------------------------


def test_query_filters_and_pages(settings: StorageSettings, hub: str) -> None:
    async def scenario() -> None:
        store = make_store(settings, hub)
        await store.open(Listener())
        try:
            base = time.time() - 100
            specs = [("run-a", RUNNING, 0), ("run-b", COMPLETED, 10), ("run-c", RUNNING, 20),
                     ("other-d", COMPLETED, 30), ("run-e", PENDING, 40), ("run'f", COMPLETED, 50)]
            for instance_id, status, offset in specs:
                await store.commit(Checkpoint(instance=record(instance_id, status=status, created=base + offset),
                                              replace_history=True))

            async def ids(query: InstanceQuery) -> list[str]:
                records, token = await store.query_instances(query)
                assert token is None
                return sorted(r.instance_id for r in records)

            assert await ids(InstanceQuery()) == sorted(i for i, _, _ in specs)
            assert await ids(InstanceQuery(statuses=(RUNNING, PENDING))) == ["run-a", "run-c", "run-e"]
            assert await ids(InstanceQuery(prefix="run-")) == ["run-a", "run-b", "run-c", "run-e"]
            assert await ids(InstanceQuery(prefix="run'")) == ["run'f"]
            assert await ids(InstanceQuery(created_from=base + 15, created_to=base + 35)) == ["other-d", "run-c"]
            assert await ids(InstanceQuery(statuses=(COMPLETED,), created_from=base + 5, prefix="run")) == [
                "run'f", "run-b"]

            seen: list[str] = []
            token: str | None = None
            pages = 0
            while True:
                page, token = await store.query_instances(InstanceQuery(top=4, continuation=token))
                assert len(page) <= 4
                seen += [r.instance_id for r in page]
                pages += 1
                if token is None:
                    break
            assert sorted(seen) == sorted(i for i, _, _ in specs) and pages == 2
            with pytest.raises(ValueError):
                await store.query_instances(InstanceQuery(continuation="not-a-token"))
        finally:
            await store.close()

    run(scenario())


def test_purge_removes_instances_and_their_history(settings: StorageSettings, hub: str, azurite: Azurite) -> None:
    async def scenario() -> None:
        store = make_store(settings, hub)
        await store.open(Listener())
        try:
            for instance_id in ("gone-1", "gone-2", "stays"):
                rec = record(instance_id, status=COMPLETED)
                await store.commit(Checkpoint(instance=rec, replace_history=True,
                                              new_history=[started(rec), {"EventType": 1}]))
            assert await store.purge(["gone-1", "gone-2", "never-was"]) == 2
            assert await store.load_instance("gone-1") is None
            assert await store.load_history("gone-2") == []
            assert await row_count(azurite, f"{hub}History", "gone-1") == 0
            assert await store.load_instance("stays") is not None
            records, _ = await store.query_instances(InstanceQuery())
            assert [r.instance_id for r in records] == ["stays"]
            assert await store.purge(["gone-1"]) == 0
        finally:
            await store.close()

    run(scenario())


# --- outages ------------------------------------------------------------------------------------


def test_pollers_and_commits_ride_out_an_azurite_restart(own_azurite: Azurite, hub: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="funchost.stores.azure")

    async def scenario() -> None:
        store, listener = make_store(settings_for(own_azurite), hub, commit_retry_s=30.0), Listener()
        await store.open(listener)
        try:
            await store.commit(Checkpoint(messages=[Message("before", {"EventType": 6})]))
            await messages_of(store, listener, "before")

            await asyncio.to_thread(own_azurite.stop)  # SIGTERM: Azurite saves what it acknowledged
            await asyncio.sleep(2.5)  # every poller fails a few times meanwhile
            assert sum("is not answering" in r.getMessage() for r in caplog.records) == 1

            # A checkpoint made while storage is down waits for it, then lands.
            commit = asyncio.ensure_future(store.commit(Checkpoint(
                messages=[Message("during", {"EventType": 6, "Name": "while down"})])))
            await asyncio.sleep(1.0)
            assert not commit.done()
            await asyncio.to_thread(own_azurite.start)
            await asyncio.wait_for(commit, 30)

            (message,) = await messages_of(store, listener, "during", timeout=20)
            assert message.event == {"EventType": 6, "Name": "while down"}
            # The message delivered before the outage is still held (its lease kept), not delivered again.
            (before,) = await store.visible_messages("before", time.time())
            assert before.dequeue_count == 1
            await store.commit(Checkpoint(messages=[Message("after", {"EventType": 6})]))
            await messages_of(store, listener, "after")
        finally:
            await store.close()
        messages = [r.getMessage() for r in caplog.records]
        assert sum("is not answering" in m for m in messages) == 1, messages
        assert sum("answers again after" in m for m in messages) == 1, messages

    run(scenario())
