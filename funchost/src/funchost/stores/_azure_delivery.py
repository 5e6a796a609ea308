"""Delivery from the task hub's queues: sending, pollers, leases, timers, and the envelope of each message.

A message is leased while this host holds it: hidden in its queue (the visibility timeout) and kept in
memory per instance for ``visible_messages``, its lease renewed at half-time until a checkpoint consumes
it. When the lease runs out (this host crashed, or lost touch with storage for longer) the message comes
back to whichever host receives it next, with a ``dequeue_count`` that says how often it was delivered.

A message this host sends for immediate delivery is sent hidden already, leased from the start: the
send's answer carries the receipt a receive would give, so the message is handed to the engine at once
with no receive call and no polling delay (a step of a chain costs one send, not a send and a receive).
An activity's result needs no message at all: the work item, still leased, carries it to its instance
(``carry``) and is deleted by the step that consumes it.
Pollers, one per control queue and one for the work-item queue, receive everything else: timers when
they come due, and what a previous host left. An idle poller backs off from ``poll_min`` to ``poll_max``.

Order: an instance is handed its held messages oldest first, by the time and position its sender gave
them. After a host stopped uncleanly, the messages it held stay hidden until their leases run out, and
messages sent since could overtake them. Only some kinds of message care (``order_sensitive``):
completions (an activity's or sub-orchestration's result, a timer firing) and starts may arrive in any
order, since the engine matches a completion to its task by id and keeps events that arrive before their
instance's start; an instance's external events (two of one name are received in the order they came),
suspend, resume and terminate, and everything sent to an entity (it applies operations in arrival order)
may not. So ``hold`` keeps back only order-sensitive messages, and only on a control queue that may
still hide a message of the dead host: one whose approximate message count (which counts hidden messages
too, and is never below the true count) its poller has not yet matched with what it received. Such a
queue is held until one lease has passed and its poller has received what is visible; a queue whose
count it matched is handed over at once. Everything else (completions, starts, work items, queues with
nothing hidden) goes to the engine at once, so a restart after a kill resumes without waiting a lease.
A queue that holds timers not yet due keeps its hidden count above what can be received, and so waits
the lease for its order-sensitive messages; the count cannot tell a timer from a leased message.

A killed host's messages need not wait for their leases when its successor runs on the same machine: each
host journals the receipts of the messages it holds (``_azure_lease_journal``), and the successor hands
them back before its pollers start. The hold above then ends as soon as its pollers have received them.

What DurableTask.AzureStorage does after a crash (as its src/DurableTask.AzureStorage README describes
it, with its partition leases): a new worker takes a control queue once the dead worker's partition lease
(a blob lease) has expired, and the dead worker's own leased messages come back when their visibility timeout ends; a
message stamped later than the instance's last checkpoint is put back on the queue until the history
catches up (its ``AbandoningMessage`` case). It describes nothing that restores arrival order between a
message hidden that way and a newer one. funchost matches the lease hand-over (one host lease per hub,
``_azure_host_lease``) and goes further on order: it keeps arrival order for the kinds of message whose
order changes an outcome. Its completions need no timestamp check: a step is saved before the messages
it sent are delivered, and the engine keeps a completion until its instance has started.

Order is also why an instance whose messages were handed back undone (``abandon``) gets no messages
until those are received again.

A queue message is JSON: ``{"v": 1, "id": <uuid>, "k": "m" | "a", "i": <instance id>, ...}``, with the
event (``"e"``) or activity fields inline, or ``"p"``: the key of the whole envelope in the payload table
when it is larger than a queue message may be. A timer is a message sent hidden until its fire time
(at most 7 days; a later one is sent again, hidden again, when it comes up early).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from funchost.stores._azure_attempts import AttemptTable
from funchost.stores._azure_layout import MAX_VISIBILITY_S, MESSAGE_CHARS, HubLayout, dumps
from funchost.stores._azure_lease_journal import LeaseJournal
from funchost.stores._azure_payloads import PayloadTable, PendingPayload, Retry, new_message_key
from funchost.stores._azure_retry import Outage, describe, is_transient, status_of
from funchost.stores.base import ActivityTask, Message, WorkListener

logger = logging.getLogger("funchost.stores.azure")

ENVELOPE_VERSION = 1
BATCH = 32  # the most messages one receive call returns
RESEND_BEYOND_S = 60.0  # a timer that comes up more than this early is sent again rather than held
OUTAGE_MAX_DELAY = 2.0
CONCURRENT_CALLS = 32


@dataclass(frozen=True)
class QueueHandle:
    """``Message.id`` / ``ActivityTask.id`` of this store: one queue message, as delivered.

    The store renews the lease and so changes the pop receipt; it deletes with the newest one it holds.
    """

    queue: str
    message_id: str
    pop_receipt: str = field(compare=False)


@dataclass
class Lease:
    """A queue message this host holds (received, not yet consumed)."""

    handle: QueueHandle
    receipt: str
    renew_at: float  # time.monotonic() at which to extend the lease
    envelope_id: str
    owner: str
    payload_key: str | None
    dequeue_count: int
    order: tuple[float, int] = (0.0, 0)
    visible_at: float = 0.0
    execution_id: str | None = None
    event_text: str | None = None  # messages: the event, parsed afresh for every read
    task: ActivityTask | None = None
    taken: bool = False
    renewing: asyncio.Future[None] | None = None
    carries: Message | None = None  # a work item that now carries its activity's result (``carry``)
    attempts: int = 0  # attempts at it that did not finish (``_azure_attempts``)
    marked: bool = False  # it has an attempt row, to delete when it is consumed
    ordered: bool = True  # order-sensitive (``order_sensitive``): held back while its queue is (``hold``)


@dataclass
class Outgoing:
    """A message ready to send, and a payload to store before it (``payload``)."""

    queue: str
    text: str
    envelope: dict[str, Any]  # the whole envelope, also when ``text`` only refers to it
    visible_at: float
    hold: bool  # sent leased to this host, which hands it over (at ``visible_at``) without a receive
    visibility_s: int  # otherwise: seconds to keep it hidden, until a poller receives it
    payload: PendingPayload | None


def encode_message(layout: HubLayout, message: Message, sent_at: float, n: int, hold_within: float) -> Outgoing:
    envelope: dict[str, Any] = {"v": ENVELOPE_VERSION, "id": uuid.uuid4().hex, "k": "m", "i": message.instance_id,
                                "x": message.execution_id, "t": message.visible_at, "s": sent_at, "n": n,
                                "e": message.event}
    return _outgoing(layout.control_queue(message.instance_id), envelope, message.visible_at, sent_at, hold_within)


def encode_activity(layout: HubLayout, task: ActivityTask, sent_at: float, n: int) -> Outgoing:
    envelope: dict[str, Any] = {"v": ENVELOPE_VERSION, "id": uuid.uuid4().hex, "k": "a", "i": task.instance_id,
                                "x": task.execution_id, "tid": task.task_id, "f": task.name, "in": task.input,
                                "s": sent_at, "n": n}
    return _outgoing(layout.workitem_queue, envelope, 0.0, sent_at, 1.0)


def _outgoing(queue: str, envelope: dict[str, Any], visible_at: float, now: float, hold_within: float) -> Outgoing:
    # Due within a lease: this host holds it from the start (and renews the lease if it must wait longer).
    hold = visible_at - now < hold_within
    if hold:
        envelope["h"] = 1  # delivered by its sender once before any receive: counts as one dequeue
    text = dumps(envelope)
    payload = None
    if len(text) > MESSAGE_CHARS:
        key = new_message_key()
        payload = PendingPayload(envelope["i"], key, text)
        small = {name: envelope[name] for name in ("v", "id", "k", "i", "s", "n", "h") if name in envelope}
        text = dumps(small | {"t": visible_at, "p": key})
    return Outgoing(queue, text, envelope, visible_at, hold, hidden_for(visible_at, now), payload)


# Completions and starts: the engine matches each to its task (or waits for the start), so their order
# does not change what an instance does. Any other kind, and anything sent to an entity, keeps its order.
ORDER_FREE_EVENTS = frozenset({
    0,  # ExecutionStarted
    5, 6,  # TaskCompleted, TaskFailed
    8, 9,  # SubOrchestrationInstanceCompleted, SubOrchestrationInstanceFailed
    11,  # TimerFired
})


def order_sensitive(instance_id: str, event: Any) -> bool:
    """Whether a message must not overtake an older one for the same instance (see the module docstring)."""
    if instance_id.startswith("@"):  # an entity: operations apply in arrival order
        return True
    return not (isinstance(event, dict) and event.get("EventType") in ORDER_FREE_EVENTS)


def hidden_for(visible_at: float, now: float) -> int:
    """Whole seconds to hide a message (rounded down: the receiver holds it the last fraction of a second)."""
    return max(0, min(int(visible_at - now), MAX_VISIBILITY_S))


def _quiet(done: asyncio.Future[None]) -> None:
    """Done-callback of a best-effort call: its failure is fine (the message comes back), and not logged."""
    if not done.cancelled():
        done.exception()


class Delivery:
    """The pollers and the messages they hold, for one open store."""

    def __init__(self, layout: HubLayout, queues: dict[str, QueueClient], payloads: PayloadTable, outage: Outage,
                 retry: Retry, *, lease_s: int, poll_min: float, poll_max: float, activity_prefetch: int,
                 control_prefetch: int, journal: LeaseJournal | None = None) -> None:
        self.layout = layout
        self.journal = journal  # every lease taken and ended, for a successor if this host is killed
        self.queues = queues
        self.payloads = payloads
        self.outage = outage
        self.retry = retry
        self.lease_s = lease_s
        self.poll_min = poll_min
        self.poll_max = poll_max
        self.activity_prefetch = activity_prefetch
        self.control_prefetch = control_prefetch
        self.listener: WorkListener | None = None
        self.leases: dict[tuple[str, str], Lease] = {}
        self._by_instance: dict[str, dict[tuple[str, str], Lease]] = {}
        self._by_envelope: dict[str, Lease] = {}
        self._held_per_queue: Counter[str] = Counter()
        self._room: dict[str, asyncio.Event] = {}
        self._wakes: dict[str, asyncio.Event] = {}  # set: poll now (a timer this host sent is due)
        self._wake_timers: set[asyncio.TimerHandle] = set()
        self._hidden: Counter[str] = Counter()
        self._timers: dict[tuple[str, float], asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._errors_logged: set[tuple[str, str]] = set()
        self._calls = asyncio.Semaphore(CONCURRENT_CALLS)
        self._hold_until: float | None = None  # time.monotonic() before which control queues are held back
        self._held_back: set[str] = set()  # control queues whose order-sensitive messages wait (``hold``)
        self._hidden_at_start: dict[str, int] = {}  # control queue -> its approximate count at ``hold``
        self._received_since: dict[str, set[str]] = {}  # control queue -> message ids received since ``hold``
        self._returning: dict[str, set[str]] = {}  # instance -> envelope ids handed back, not received again
        self.attempts: AttemptTable | None = None  # where redelivered messages' attempt counts are read

    # --- lifecycle ----------------------------------------------------------------------------

    def hold(self, seconds: float, counts: dict[str, int]) -> None:
        """Before ``start``, after an unclean stop: keep order-sensitive messages of the control queues
        back for ``seconds`` and until each queue's poller has then received what is visible, so that
        messages a crashed host held (hidden until their leases run out) are delivered before those sent
        after them. ``counts``: each queue's approximate message count, read now; a queue whose poller
        receives that many messages hides nothing and is handed over at once (a queue missing from it
        is held the whole time)."""
        self._hold_until = time.monotonic() + seconds
        self._held_back = {queue for queue in self.layout.control_queues if counts.get(queue) != 0}
        self._hidden_at_start = {queue: counts[queue] for queue in self._held_back if queue in counts}
        self._received_since = {queue: set() for queue in self._held_back}
        if not self._held_back:
            self._hold_until = None

    def holding_back(self) -> int:
        """How many control queues still hold their order-sensitive messages back."""
        return len(self._held_back)

    def start(self, listener: WorkListener) -> None:
        self.listener = listener
        for queue in [*self.layout.control_queues, self.layout.workitem_queue]:
            self._room[queue] = asyncio.Event()
            self._wakes[queue] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._poll(queue), name=f"funchost-poll-{queue}"))
        self._tasks.append(asyncio.create_task(self._renew_leases(), name="funchost-lease-renewal"))

    async def stop(self, release: bool) -> bool:
        """Stop polling and renewing; with ``release``, send carried results as messages and hand held
        messages back. True when nothing that was held is left hidden in a queue (everything was handed
        back, or nothing was held)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for timer in [*self._timers.values(), *self._wake_timers]:
            timer.cancel()
        self._timers.clear()
        self._wake_timers.clear()
        self.listener = None
        held = [lease for lease in self.leases.values() if not lease.taken]
        carried = [lease for lease in held if lease.carries is not None]
        if release and carried:
            # Results not consumed yet: sent as messages, so the next host need not run their activities again.
            with contextlib.suppress(asyncio.TimeoutError):
                sent = await asyncio.wait_for(asyncio.gather(*(self._send_carried(lease) for lease in carried),
                                                             return_exceptions=True), timeout=5.0)
                done = {id(lease) for lease, ok in zip(carried, sent, strict=True) if ok is True}
                held = [lease for lease in held if id(lease) not in done]
        released = not held
        if release and held:
            # Hand the messages back at once instead of when their leases run out.
            with contextlib.suppress(asyncio.TimeoutError):
                results = await asyncio.wait_for(asyncio.gather(*(self._release(lease) for lease in held),
                                                                return_exceptions=True), timeout=5.0)
                released = not any(isinstance(result, BaseException) for result in results)
        self.leases.clear()
        self._by_instance.clear()
        self._by_envelope.clear()
        self._returning.clear()
        if self.journal is not None:
            self.journal.close(remove=released)
        return released

    async def _send_carried(self, lease: Lease) -> bool:
        """Send a carried result as a message to its instance, then delete the work item that carried it."""
        assert lease.carries is not None
        outgoing = encode_message(self.layout, lease.carries, time.time(), 0, 0.0)
        if outgoing.payload is not None:
            await self.payloads.put_all([outgoing.payload])
        async with self._calls:
            await self.queues[outgoing.queue].send_message(outgoing.text, time_to_live=-1,
                                                           visibility_timeout=outgoing.visibility_s)
        await self.delete(lease.handle, lease)
        return True

    async def _release(self, lease: Lease) -> None:
        async with self._calls:
            await self.queues[lease.handle.queue].update_message(lease.handle.message_id, lease.receipt,
                                                                 visibility_timeout=0)
        self._journal_ended(lease.handle)

    def _journal_held(self, queue: str, message_id: str, receipt: str) -> None:
        if self.journal is not None and receipt:
            self.journal.held(queue, message_id, receipt)

    def _journal_ended(self, handle: QueueHandle) -> None:
        if self.journal is not None:
            self.journal.ended(handle.queue, handle.message_id)

    # --- what the store asks ------------------------------------------------------------------

    def visible(self, instance_id: str, now: float, limit: int | None) -> list[Message]:
        if self._hidden[instance_id] > 0 or instance_id in self._returning:
            return []
        held = self._by_instance.get(instance_id)
        if not held:
            return []
        holding = self._holding(instance_id)
        leases = sorted((lease for lease in held.values()
                         if lease.visible_at <= now and not lease.taken and not (holding and lease.ordered)),
                        key=lambda lease: lease.order)
        if limit is not None:
            leases = leases[:limit]
        return [Message(instance_id, json.loads(lease.event_text or "{}"), lease.execution_id, lease.visible_at,
                        id=lease.handle, dequeue_count=lease.dequeue_count, attempts=lease.attempts,
                        redelivered=lease.dequeue_count > 1 or lease.marked) for lease in leases]

    async def send(self, outgoing: Outgoing) -> Lease | None:
        """Send a message. One due soon is leased to this host from the start, and returned to be handed
        over (``admit``) when the caller's other messages are sent too; a later one is hidden in its queue
        until it is due, and its poller is woken for it."""
        queue = self.queues[outgoing.queue]

        async def send() -> QueueMessage:
            async with self._calls:
                return await queue.send_message(outgoing.text, time_to_live=-1, visibility_timeout=(
                    self.lease_s if outgoing.hold else outgoing.visibility_s))

        sent: QueueMessage = await self.retry(send, f"sending to {outgoing.queue}")
        if outgoing.hold:
            self._journal_held(outgoing.queue, sent.id, sent.pop_receipt or "")
        if self.listener is None:
            return None
        if outgoing.hold:
            handle = QueueHandle(outgoing.queue, sent.id, sent.pop_receipt or "")
            payload_key = outgoing.payload.key if outgoing.payload is not None else None
            return self._lease(handle, outgoing.envelope, payload_key, 1, outgoing.visible_at)
        if outgoing.visibility_s > 0:
            self._wake_later(outgoing.queue, outgoing.visibility_s)
        return None

    def carry(self, work_item: Any, result: Message) -> bool:
        """Deliver an activity's result to its instance in the work item's own lease, instead of sending it.

        The work item stays in its queue, leased, until the step that consumes the result deletes it: the
        result is as safe as the work item was (a crash before the instance's history holds the result
        brings the work item back, and the activity runs again, as after a crash before a result is sent),
        and a chain step saves a send and a delete. False when this host does not hold the work item (any
        more), or holds it for a second time or more: the caller sends the result instead. A result carried
        again and again would count the work item's deliveries, not its own, and a result that keeps
        failing its instance must reach the poison limit under its own name, while an activity that keeps
        failing (crashing the host) must reach it under the activity's.
        """
        if not isinstance(work_item, QueueHandle) or self.listener is None:
            return False
        lease = self.leases.get((work_item.queue, work_item.message_id))
        if lease is None or lease.taken or lease.task is None or lease.dequeue_count > 1:
            return False
        lease.task = None
        lease.carries = result
        lease.owner = result.instance_id
        lease.execution_id = result.execution_id
        lease.event_text = dumps(result.event)
        lease.visible_at = result.visible_at
        lease.order = (time.time(), 0)
        lease.ordered = order_sensitive(lease.owner, result.event)
        self._by_instance.setdefault(lease.owner, {})[(work_item.queue, work_item.message_id)] = lease
        self._announce(lease.owner, lease.visible_at)
        return True

    def admit(self, leases: list[Lease | None]) -> None:
        """Hold messages and tell the engine about them, all at once: an instance never sees part of the
        messages one step sent it (an entity would apply the first signals it sees first)."""
        admitted: list[Lease] = []
        for lease in leases:
            if lease is None or self.listener is None:
                continue
            if lease.envelope_id in self._by_envelope:  # two copies in one batch (a re-sent timer)
                asyncio.ensure_future(self.delete(lease.handle, None)).add_done_callback(_quiet)
                continue
            self._hold(lease)
            admitted.append(lease)
        for lease in admitted:
            self._tell(lease)

    def _wake_later(self, queue: str, after: float) -> None:
        wake = self._wakes.get(queue)
        if wake is None:
            return

        def fire() -> None:
            self._wake_timers.discard(handle)
            wake.set()

        handle = asyncio.get_running_loop().call_later(after + 0.05, fire)
        self._wake_timers.add(handle)

    def hide(self, instance_ids: set[str]) -> None:
        """Hold back the messages of instances whose rows a commit is still writing."""
        for instance_id in instance_ids:
            self._hidden[instance_id] += 1

    def unhide(self, instance_ids: set[str]) -> None:
        for instance_id in instance_ids:
            self._hidden[instance_id] -= 1
            if self._hidden[instance_id] <= 0:
                del self._hidden[instance_id]
                if self._by_instance.get(instance_id):
                    self._announce(instance_id, 0.0)

    def take(self, handle: Any) -> Lease | None:
        """Stop holding a consumed message (the caller deletes it). None when it is not held."""
        if not isinstance(handle, QueueHandle):
            return None
        lease = self.leases.pop((handle.queue, handle.message_id), None)
        if lease is None:
            return None
        lease.taken = True
        self._forget(lease)
        return lease

    def abandon(self, handle: Any) -> None:
        """Stop holding a message without consuming it: it is handed back to the queue (now if storage
        answers, else when its lease runs out) and delivered again, with a higher ``dequeue_count``. Until
        it is received again (or a lease and a second have passed), its instance gets no messages: the ones
        held meanwhile were sent after it."""
        lease = self.take(handle)
        if lease is None:
            return
        if lease.task is None:
            self._returning.setdefault(lease.owner, set()).add(lease.envelope_id)

            def give_up() -> None:  # it did not come back (gone, or taken by another host): stop waiting
                self._wake_timers.discard(timer)
                self._returned(lease.owner, lease.envelope_id)

            timer = asyncio.get_running_loop().call_later(self.lease_s + 1.0, give_up)
            self._wake_timers.add(timer)
        released = asyncio.ensure_future(self._release(lease))
        released.add_done_callback(_quiet)
        wake = self._wakes.get(lease.handle.queue)
        if wake is not None:
            released.add_done_callback(lambda _: wake.set())  # receive it again at once

    def _returned(self, instance_id: str, envelope_id: str) -> None:
        returning = self._returning.get(instance_id)
        if returning is None or envelope_id not in returning:
            return
        returning.discard(envelope_id)
        if not returning:
            del self._returning[instance_id]
            held = self._by_instance.get(instance_id)
            if held:
                self._announce(instance_id, min(lease.visible_at for lease in held.values()))

    async def delete(self, handle: QueueHandle, lease: Lease | None) -> None:
        """Delete a consumed message and its payload; a message already gone (or re-leased) is fine."""
        if lease is not None and lease.renewing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(lease.renewing)
        receipt = lease.receipt if lease is not None else handle.pop_receipt
        async with self._calls:
            try:
                await self.queues[handle.queue].delete_message(handle.message_id, receipt)
            except HttpResponseError as err:
                if status_of(err) not in (400, 404):
                    raise
                # Gone already, or its lease ran out and another receive holds it: that one is a duplicate
                # the engine drops, and its payload must stay for it.
                logger.debug("queue message %s on %s was not deleted: %s", handle.message_id, handle.queue,
                             describe(err))
                self._journal_ended(handle)
                return
        self._journal_ended(handle)
        if lease is not None and lease.payload_key is not None:
            await self.payloads.delete(lease.owner, lease.payload_key)

    # --- polling ------------------------------------------------------------------------------

    def _capacity(self, queue: str) -> int:
        limit = self.activity_prefetch if queue == self.layout.workitem_queue else self.control_prefetch
        return limit - self._held_per_queue[queue]

    async def _poll(self, queue: str) -> None:
        delay = self.poll_min
        failures = 0
        while True:
            self._room[queue].clear()
            room = self._capacity(queue)
            if room <= 0:
                if queue in self._held_back and self._hold_over():
                    self._hand_over(queue)  # it holds all it may: the oldest messages are among them
                await self._room[queue].wait()  # until a held message is consumed
                continue
            self._wakes[queue].clear()
            asked = min(BATCH, room)
            try:
                received = await self._receive(queue, asked)
            except Exception as err:
                failures += 1
                self._poll_failed(queue, err)
                await asyncio.sleep(min(OUTAGE_MAX_DELAY, self.poll_min * 2 ** min(failures, 10)))
                continue
            failures = 0
            self.outage.recovered()
            if received:
                seen = self._received_since.get(queue)
                if seen is not None:
                    seen.update(message.id for message in received)
                accepted = await asyncio.gather(*(self._accept_safely(queue, message) for message in received))
                self.admit(accepted)  # in the queue's order
                delay = self.poll_min
                if len(received) < asked and queue in self._held_back and (self._hold_over()
                                                                             or self._nothing_hidden(queue)):
                    self._hand_over(queue)
                continue
            if queue in self._held_back and (self._hold_over() or self._nothing_hidden(queue)):
                self._hand_over(queue)
            wake = self._wakes[queue]
            wait = delay
            if queue in self._held_back and self._hold_until is not None:
                wait = max(0.0, min(wait, self._hold_until - time.monotonic()))
            try:
                await asyncio.wait_for(wake.wait(), wait)
                delay = self.poll_min
            except asyncio.TimeoutError:
                delay = min(delay * 2, self.poll_max)

    def _hold_over(self) -> bool:
        return self._hold_until is None or time.monotonic() >= self._hold_until

    def _nothing_hidden(self, queue: str) -> bool:
        """The poller received as many distinct messages as the queue held (hidden ones included) when the
        hold began: none of the dead host's messages is still hidden in it."""
        count = self._hidden_at_start.get(queue)
        return count is not None and len(self._received_since.get(queue, ())) >= count

    def _holding(self, instance_id: str) -> bool:
        return bool(self._held_back) and self.layout.control_queue(instance_id) in self._held_back

    def _free_messages(self, instance_id: str) -> bool:
        """Whether the instance has a message it may get while its queue holds order-sensitive ones back."""
        return any(not lease.ordered for lease in self._by_instance.get(instance_id, {}).values())

    def _hand_over(self, queue: str) -> None:
        """End the hold of a control queue: the engine is told about the messages held for its instances."""
        self._held_back.discard(queue)
        self._received_since.pop(queue, None)
        if not self._held_back:
            self._hold_until = None
        for instance_id, held in list(self._by_instance.items()):
            if held and self.layout.control_queue(instance_id) == queue:
                self._announce(instance_id, min(lease.visible_at for lease in held.values()))

    async def _receive(self, queue: str, count: int) -> list[QueueMessage]:
        pages = self.queues[queue].receive_messages(messages_per_page=count,
                                                    visibility_timeout=self.lease_s).by_page()
        async for page in pages:
            return [message async for message in page]
        return []

    def _poll_failed(self, queue: str, err: Exception) -> None:
        if is_transient(err):
            self.outage.failed(err)
            return
        key = (queue, describe(err))
        if key not in self._errors_logged:  # e.g. the queue was deleted, or the credentials were revoked
            self._errors_logged.add(key)
            logger.error("receiving from queue %s failed (%s); retrying with back-off", queue, describe(err))

    async def _accept_safely(self, queue: str, received: QueueMessage) -> Lease | None:
        try:
            return await self._accept(queue, received)
        except Exception as err:
            # Not held: the message comes back when its lease runs out, and is accepted then.
            if is_transient(err):
                self.outage.failed(err)
            else:
                logger.exception("queue message %s on %s could not be read; it will be delivered again",
                                 received.id, queue)
            return None

    async def _accept(self, queue: str, received: QueueMessage) -> Lease | None:
        """The lease of a received message, to admit; None when it is not to be held (now)."""
        key = (queue, received.id)
        held = self.leases.get(key)
        if held is not None:
            # Its lease ran out (an outage) and this host received it again: keep one, with the new receipt.
            held.receipt = received.pop_receipt or held.receipt
            self._journal_held(queue, received.id, held.receipt)
            held.dequeue_count = max(held.dequeue_count, received.dequeue_count or 0)
            held.renew_at = time.monotonic() + self.lease_s / 2
            return None
        handle = QueueHandle(queue, received.id, received.pop_receipt or "")
        text = str(received.content)
        try:
            small = json.loads(text)
            envelope_id, owner, visible_at = str(small["id"]), str(small["i"]), float(small.get("t") or 0.0)
        except (ValueError, KeyError, TypeError):
            logger.error("queue %s holds message %s that is not a funchost message; it is deleted", queue,
                         received.id)
            await self.delete(handle, None)
            return None
        if envelope_id in self._by_envelope:
            await self.delete(handle, None)  # a second copy of a message held already (a re-sent timer)
            return None
        remaining = visible_at - time.time()
        if remaining > RESEND_BEYOND_S:
            await self._resend(queue, handle, text, visible_at)
            return None
        payload_key = small.get("p")
        envelope = small
        if payload_key is not None:
            full = await self.payloads.get(owner, str(payload_key))
            if full is None:
                logger.warning("a message for %s refers to a large value that is gone (the instance was purged); "
                               "it is dropped", owner)
                await self.delete(handle, None)
                return None
            envelope = json.loads(full)
        # A message its sender delivered before anyone received it was dequeued once more than the queue says.
        dequeue_count = (received.dequeue_count or 1) + (1 if small.get("h") else 0)
        # A redelivery may have been attempted before: its attempt count (a first delivery has none).
        attempts = await self.attempts.read(queue, received.id) if dequeue_count > 1 and self.attempts else 0
        if key in self.leases or envelope_id in self._by_envelope:
            return None  # received again while the payload was read
        lease = self._lease(handle, envelope, str(payload_key) if payload_key else None, dequeue_count, visible_at)
        lease.attempts = attempts
        lease.marked = attempts > 0
        if lease.task is not None:
            lease.task.attempts = attempts
        return lease

    def _lease(self, handle: QueueHandle, envelope: dict[str, Any], payload_key: str | None, dequeue_count: int,
               visible_at: float) -> Lease:
        owner = str(envelope["i"])
        lease = Lease(handle=handle, receipt=handle.pop_receipt, renew_at=time.monotonic() + self.lease_s / 2,
                      envelope_id=str(envelope["id"]), owner=owner, payload_key=payload_key,
                      dequeue_count=dequeue_count, order=(float(envelope.get("s") or 0.0), int(envelope.get("n") or 0)),
                      visible_at=visible_at, execution_id=envelope.get("x"),
                      ordered=order_sensitive(owner, envelope.get("e")))
        if envelope.get("k") == "a":
            lease.task = ActivityTask(owner, str(envelope.get("x")), int(envelope["tid"]), str(envelope["f"]),
                                      envelope.get("in"), id=handle, dequeue_count=dequeue_count,
                                      redelivered=dequeue_count > 1)
        else:
            lease.event_text = dumps(envelope["e"])
        return lease

    def _tell(self, lease: Lease) -> None:
        if lease.task is not None:
            if self.listener is not None:
                self.listener.activity_ready(lease.task)
        else:
            self._announce(lease.owner, lease.visible_at)

    async def _resend(self, queue: str, handle: QueueHandle, text: str, visible_at: float) -> None:
        """A timer further out than a queue can hide a message: send it again, hidden again, then drop this one."""
        async with self._calls:
            await self.queues[queue].send_message(text, visibility_timeout=hidden_for(visible_at, time.time()),
                                                  time_to_live=-1)
        await self.delete(handle, None)

    def _hold(self, lease: Lease) -> None:
        key = (lease.handle.queue, lease.handle.message_id)
        self.leases[key] = lease
        self._journal_held(lease.handle.queue, lease.handle.message_id, lease.receipt)
        if lease.task is None:  # work items are the engine's as soon as they are announced
            self._by_instance.setdefault(lease.owner, {})[key] = lease
        self._by_envelope[lease.envelope_id] = lease
        self._held_per_queue[lease.handle.queue] += 1
        if lease.owner in self._returning:
            self._returned(lease.owner, lease.envelope_id)

    def _forget(self, lease: Lease) -> None:
        key = (lease.handle.queue, lease.handle.message_id)
        held = self._by_instance.get(lease.owner)
        if held is not None:
            held.pop(key, None)
            if not held:
                del self._by_instance[lease.owner]
        if self._by_envelope.get(lease.envelope_id) is lease:
            del self._by_envelope[lease.envelope_id]
        self._held_per_queue[lease.handle.queue] -= 1
        self._room[lease.handle.queue].set()

    def _announce(self, instance_id: str, visible_at: float) -> None:
        if instance_id in self._returning or (self._holding(instance_id) and not self._free_messages(instance_id)):
            return  # told when the hold of its queue ends (``_hand_over``), or its messages are back
        delay = visible_at - time.time()
        if delay <= 0:
            if self.listener is not None and self._hidden[instance_id] <= 0:
                self.listener.instance_ready(instance_id)
            return
        timer_key = (instance_id, visible_at)
        if timer_key in self._timers:
            return

        def fire() -> None:
            self._timers.pop(timer_key, None)
            if self.listener is not None and self._hidden[instance_id] <= 0:
                self.listener.instance_ready(instance_id)

        # A few ms late rather than early: the message only counts as visible from its time on.
        self._timers[timer_key] = asyncio.get_running_loop().call_later(delay + 0.002, fire)

    # --- leases -------------------------------------------------------------------------------

    async def _renew_leases(self) -> None:
        interval = max(0.1, self.lease_s / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            due = [lease for lease in self.leases.values() if not lease.taken and lease.renew_at <= now]
            if due:
                await asyncio.gather(*(self._renew(lease) for lease in due))

    async def _renew(self, lease: Lease) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lease.renewing = future
        receipt = lease.receipt
        try:
            async with self._calls:
                updated = await self.queues[lease.handle.queue].update_message(
                    lease.handle.message_id, receipt, visibility_timeout=self.lease_s)
            if lease.receipt == receipt and updated.pop_receipt:
                lease.receipt = updated.pop_receipt
                self._journal_held(lease.handle.queue, lease.handle.message_id, lease.receipt)
            lease.renew_at = time.monotonic() + self.lease_s / 2
            self.outage.recovered()
        except Exception as err:
            if is_transient(err):
                self.outage.failed(err)
                lease.renew_at = time.monotonic() + min(1.0, self.lease_s / 8)
            elif status_of(err) in (400, 404) and lease.receipt == receipt and not lease.taken:
                # The lease ran out (an outage longer than it) and the message is gone or held under another
                # receipt: stop holding it; a new receive brings it back if it still exists.
                logger.debug("lost the lease of queue message %s on %s (%s)", lease.handle.message_id,
                             lease.handle.queue, describe(err))
                self.leases.pop((lease.handle.queue, lease.handle.message_id), None)
                self._forget(lease)
                self._journal_ended(lease.handle)
            else:
                lease.renew_at = time.monotonic() + self.lease_s / 4
        finally:
            lease.renewing = None
            future.set_result(None)
