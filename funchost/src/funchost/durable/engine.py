"""The Durable engine: dispatches orchestration episodes, entity batches and activities.

Dispatch is event-driven: every write that makes work ready also wakes the worker for it, and
durable timers are loop timers at their fire time, so nothing waits on a polling interval. The
store stays the source of truth: at start-up the engine re-reads every pending message, due or
future timer and activity work item, which is how a host killed at any moment resumes.

Each instance (or entity) runs on at most one engine worker at a time, so an instance's episodes and an
entity's batches never overlap and an entity takes its operations in arrival order; different instances
and entities run side by side. The user code of an episode, a batch or an activity runs through the
:class:`~funchost.worker.Worker` (its thread pool, or its loop for ``async def`` functions), never on
this loop, which serves HTTP and talks to the task hub.

Poison: the engine counts attempts, not deliveries (``Message.attempts``). Before user code runs for a
message or work item that may have been attempted before (``redelivered``), it has the store record an
attempt (``Store.record_attempts``), so that a host dying during it has it counted; a first delivery is
recorded only if it fails in process. Work with ``maxDequeueCount`` unfinished attempts is not run again:
its instance fails, its activity fails, its entity call gets an error reply (a signal is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import Counter
from typing import Any

from funchost.app_loader import FunctionIndex
from funchost.config import DurableSettings, OverridableStates
from funchost.durable import history as h
from funchost.durable import versioning
from funchost.durable.activities import ActivityRunner
from funchost.durable.entities import operation_request, run_batch, split_entity_id
from funchost.durable.history import EventType, OrchestrationStatusCode
from funchost.durable.ids import entity_id_problem, instance_id_problem
from funchost.durable.instance_cache import DEFAULT_MAX_MB, InstanceCache
from funchost.durable.replay import EpisodeRunner, new_engine_state, new_instance, order_for_delivery
from funchost.durable.rewind import NOT_FAILED_MESSAGE, Rewind, RewindStep
from funchost.errors import CheckpointConflictError, ManagementError
from funchost.limits import body_limit
from funchost.stores.base import (
    CANCELED,
    COMPLETED,
    CONTINUED_AS_NEW,
    FAILED,
    PENDING,
    RUNNING,
    SUSPENDED,
    TERMINATED,
    ActivityTask,
    Checkpoint,
    InstanceRecord,
    Json,
    Message,
    Store,
)
from funchost.worker import Worker

logger = logging.getLogger(__name__)

POISON = -1  # a control event of this engine's own: fail the instance, its message kept failing
RECENT_ENTITY_REQUESTS = 500  # request ids an entity remembers, to drop a redelivered operation
# An episode replays the whole history, so its cost grows with it. While an instance still has
# activities running, an episode that cost more than this waits up to twice its cost (at most
# COALESCE_MAX) to take many completions at once: a 1,000-task fan-in then replays a handful of
# times instead of hundreds. Instances with short histories are never delayed.
COALESCE_THRESHOLD = 0.02
COALESCE_MAX = 0.5
ACTIVE_STATUSES = (PENDING, RUNNING, SUSPENDED)
CLAIM_TIMEOUT = 30.0  # how long a client operation (rewind, start, purge) waits for a worker to let go
STORE_RETRY_MIN = 0.5  # an activity result the task hub failed to save is saved again after this, doubling ...
STORE_RETRY_MAX = 10.0  # ... up to this
ACTIVITY_RETRY_S = 1.0  # a work item the task hub failed before it ran is tried again after this


class Engine:
    """Owns one open task hub and runs everything addressed to it."""

    def __init__(self, store: Store, functions: FunctionIndex, settings: DurableSettings, worker: Worker,
                 cache_bytes: int = DEFAULT_MAX_MB * 1024 * 1024) -> None:
        self.store = store
        self.functions = functions
        self.settings = settings
        self.worker = worker
        self.episodes = EpisodeRunner(functions, invoke=worker.call_blocking, default_version=settings.default_version,
                                      output_limit=body_limit())
        self.activities = ActivityRunner(functions, worker)
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._activity_queue: asyncio.Queue[ActivityTask] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._timers: dict[tuple[str, float], asyncio.TimerHandle] = {}
        self._cache = InstanceCache(max_bytes=cache_bytes)
        self._inflight: Counter[str] = Counter()
        self._episode_cost: dict[str, float] = {}
        self._deferred: dict[str, float] = {}
        self._fetched: dict[str, list[Any]] = {}  # messages an instance's worker holds right now
        # The messages an instance's worker has started an attempt at (user code ran or was about to), and
        # those of them with no attempt recorded yet: a failure in process records one for each of those.
        self._attempting: dict[str, tuple[list[Message], list[Message]]] = {}
        self._failed_here: set[Any] = set()  # handles of messages whose last attempt failed in this process
        self._saving: set[asyncio.Task[None]] = set()  # activity results being saved again (``_save_result``)
        self._changed = asyncio.Condition()
        self._stopping = False
        self._version_refused: set[tuple[str, str]] = set()  # (instance, execution) whose refusal was logged

    # --- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the task hub; it announces everything in flight, which waits for ``start_workers``."""
        await self.store.open(self)

    def start_workers(self) -> None:
        for _ in range(self.settings.max_concurrent_orchestrations):
            self._workers.append(asyncio.create_task(self._orchestration_worker()))
        for _ in range(self.settings.max_concurrent_activities):
            self._workers.append(asyncio.create_task(self._activity_worker()))

    async def stop(self) -> None:
        self._stopping = True
        for handle in self._timers.values():
            handle.cancel()
        for worker in [*self._workers, *self._saving]:
            worker.cancel()
        await asyncio.gather(*self._workers, *self._saving, return_exceptions=True)
        await self.activities.close()
        await self.store.close()

    # --- the store's announcements (WorkListener) and waking ---------------------------------

    def instance_ready(self, instance_id: str) -> None:
        self.wake(instance_id)

    def activity_ready(self, task: ActivityTask) -> None:
        self._activity_queue.put_nowait(task)
        self._inflight[task.instance_id] += 1

    def wake(self, instance_id: str) -> None:
        if instance_id in self._running:
            self._again.add(instance_id)
        elif instance_id not in self._queued:
            self._queued.add(instance_id)
            self._ready.put_nowait(instance_id)

    def _wake_at(self, instance_id: str, at: float, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if at <= now:
            self.wake(instance_id)
            return
        key = (instance_id, at)
        if key in self._timers:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(key, None)
            self.wake(instance_id)

        # A few ms late rather than early: a timer message is only visible from its fire time.
        self._timers[key] = loop.call_later(at - now + 0.002, fire)

    async def commit(self, checkpoint: Checkpoint) -> None:
        await self.store.commit(checkpoint)
        if checkpoint.instance is not None:
            await self._remember(checkpoint.instance, checkpoint.new_history, checkpoint.replace_history)
        for child in checkpoint.new_instances:
            self._cache.put(child, [])
        if checkpoint.instance is not None and checkpoint.instance.is_terminal:
            self._ended(checkpoint.instance.instance_id)

    # --- the instance cache (this host owns the hub, so the cache cannot go stale) -------------

    async def _load(self, instance_id: str) -> tuple[InstanceRecord, list[Json]] | None:
        cached = self._cache.get(instance_id)
        if cached is not None:
            return cached
        record = await self.store.load_instance(instance_id)
        if record is None:
            return None
        history = await self.store.load_history(instance_id)
        self._cache.put(record, history)
        return record, history

    async def _remember(self, record: InstanceRecord, new_history: list[Json], replace: bool) -> None:
        if replace:
            self._cache.put(record, list(new_history))
        elif self._cache.history_of(record.instance_id) is not None:
            self._cache.extend(record, new_history)
        else:
            self._cache.put(record, await self.store.load_history(record.instance_id))

    def forget(self, instance_id: str) -> None:
        self._cache.discard(instance_id)

    def _ended(self, instance_id: str) -> None:
        """Drop the per-instance bookkeeping of an instance that finished or is gone (the cache entry stays:
        a finished instance is still read by status queries)."""
        self._episode_cost.pop(instance_id, None)
        self._deferred.pop(instance_id, None)
        if self._version_refused:
            self._version_refused = {key for key in self._version_refused if key[0] != instance_id}

    # --- workers --------------------------------------------------------------------------------

    async def _orchestration_worker(self) -> None:
        while True:
            instance_id = await self._ready.get()
            self._queued.discard(instance_id)
            self._running.add(instance_id)
            try:
                if instance_id.startswith("@"):
                    await self._process_entity(instance_id)
                else:
                    await self._process_instance(instance_id)
            except Exception:
                logger.exception("instance %s: processing failed; it will be retried", instance_id)
                self._running.discard(instance_id)
                self.forget(instance_id)  # what the cache holds may be ahead of the task hub now
                await self._attempt_failed(instance_id)
                self._wake_at(instance_id, time.time() + 1.0)
                continue
            finally:
                self._running.discard(instance_id)
                self._fetched.pop(instance_id, None)
                self._attempting.pop(instance_id, None)
            if instance_id in self._again:
                self._again.discard(instance_id)
                self.wake(instance_id)
            await self._notify_changed()
            await asyncio.sleep(0)  # let HTTP requests in between episodes

    async def _attempt_failed(self, owner: str) -> None:
        """Processing of ``owner``'s messages failed in this process: record the attempt of those that had
        none recorded yet, and hand the messages back."""
        attempted, unrecorded = self._attempting.pop(owner, ([], []))
        self._failed_here.update(m.id for m in attempted)
        try:
            if unrecorded:
                await self.store.record_attempts(unrecorded)
            await self.store.abandon(self._fetched.pop(owner, []))
        except Exception:
            # Not recorded: this attempt is not counted, and the next one is recorded before it runs.
            logger.exception("%s: the failed attempt could not be recorded in the task hub", owner)

    async def _start_attempt(self, owner: str, messages: list[Message], what: str) -> None:
        """Before user code runs for ``messages``: record an attempt for each one that may have been attempted
        before (``Message.redelivered``), so that a host that dies during this attempt has it counted; the
        others are recorded only if the attempt fails in this process (``_attempt_failed``)."""
        redelivered = [m for m in messages if m.redelivered]
        for message in redelivered:
            self._log_cut_off(what, message.id, message.attempts)
        if redelivered:
            await self.store.record_attempts(redelivered)
        self._attempting[owner] = (messages, [m for m in messages if not m.redelivered])

    def _log_cut_off(self, what: str, handle: Any, attempts: int) -> None:
        """An attempt that did not finish and did not fail in this process was cut off by a host stop: the log
        says so, as it holds the error of every attempt that failed in process."""
        if handle in self._failed_here:
            self._failed_here.discard(handle)
        elif attempts > 0:
            logger.warning("%s: the previous attempt at it did not finish and failed with no error in this host: "
                           "the host stopped during it (%d unfinished attempt(s) so far, limit %d)", what, attempts,
                           self.settings.max_dequeue_count)

    def _finished_activity(self, task: ActivityTask) -> None:
        self._inflight[task.instance_id] -= 1
        if self._inflight[task.instance_id] <= 0:
            del self._inflight[task.instance_id]

    async def _activity_worker(self) -> None:
        while True:
            task = await self._activity_queue.get()
            try:
                if await self._run_activity(task):
                    return
            except Exception:
                # The task hub failed before the activity ran (its result is saved by ``_save_result``): the
                # work item is still this host's, so it is tried again later, and this worker goes on.
                logger.exception("activity %s of instance %s: the task hub failed; it is tried again in %g s",
                                 task.name, task.instance_id, ACTIVITY_RETRY_S)
                asyncio.get_running_loop().call_later(ACTIVITY_RETRY_S, self._activity_queue.put_nowait, task)

    async def _run_activity(self, task: ActivityTask) -> bool:
        """Run one work item and save its result; True when the engine is stopping (the worker ends)."""
        if await self._already_done(task):
            self._finished_activity(task)
            await self._save_result(task, None)
            await self._write_again_if_finished(task)
            return False
        what = f"activity '{task.name}' of instance {task.instance_id}"
        if task.attempts >= self.settings.max_dequeue_count:
            self._log_cut_off(what, ("activity", task.id), task.attempts)
            completion = h.task_failed(time.time(), task.task_id, self._poison_reason(task), None)
        else:
            if task.redelivered:
                self._log_cut_off(what, ("activity", task.id), task.attempts)
                await self.store.record_attempts([task])
            completion = await self.activities.run(task)
        if self._stopping:
            return True  # the work item stays in the store and runs again on the next start
        self._finished_activity(task)
        await self._save_result(task, completion)
        return False

    async def _save_result(self, task: ActivityTask, completion: Json | None) -> None:
        """Commit an activity's result (or, with None, just the completion of its work item). One the task
        hub fails to take is saved again in the background, its work item still held, so it is neither lost
        nor left until the next start, and the activity does not run again; the worker goes on."""

        async def save_once() -> bool:
            messages = [] if completion is None else [Message(task.instance_id, completion, task.execution_id)]
            try:
                await self.commit(Checkpoint(messages=messages, completed_activity=task.id))
                return True
            except Exception:
                logger.exception("activity %s of instance %s: its result could not be saved; it is saved again "
                                 "shortly", task.name, task.instance_id)
                return False

        async def save_again() -> None:
            delay = STORE_RETRY_MIN
            while True:
                await asyncio.sleep(delay)
                if await save_once():
                    return
                delay = min(delay * 2, STORE_RETRY_MAX)

        if await save_once():
            return
        saving = asyncio.create_task(save_again())
        self._saving.add(saving)
        saving.add_done_callback(self._saving.discard)

    async def _write_again_if_finished(self, task: ActivityTask) -> None:
        """A work item that comes back after a crash, its result in a history that has since finished: the step
        that consumed the result may have been cut off before the store's instance row (what queries list) was
        written (the Azure store writes it shortly after the history), so the finished record is written again.
        Held as a worker holds it, so no step or start of the instance runs meanwhile."""
        claimed: set[str] = set()
        try:
            await self._claim(task.instance_id, claimed)
            loaded = await self._load(task.instance_id)
            if loaded is not None and loaded[0].execution_id == task.execution_id and loaded[0].is_terminal:
                await self.commit(Checkpoint(instance=loaded[0]))
        except Exception:
            logger.exception("instance %s: its finished record could not be written again; queries may show an "
                             "older status until it is", task.instance_id)
        finally:
            self._release(claimed)

    async def _already_done(self, task: ActivityTask) -> bool:
        """A redelivered work item whose result is already in the history (or whose run is gone) is not run
        again: with a store that deletes work items after recording results, a crash in between redelivers."""
        if not task.redelivered:
            return False
        loaded = await self._load(task.instance_id)
        if loaded is None or loaded[0].execution_id != task.execution_id or loaded[0].is_terminal:
            return True
        return any(e.get("EventType") in (EventType.TaskCompleted, EventType.TaskFailed)
                   and e.get("TaskScheduledId") == task.task_id for e in loaded[1])

    async def _notify_changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_change(self, timeout: float) -> None:
        """Wait until some instance made progress (or the timeout passes)."""
        async with self._changed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    # --- orchestrations -------------------------------------------------------------------------

    def _defer(self, instance_id: str) -> bool:
        """True when this instance's episode should wait to gather more completions (see COALESCE_*)."""
        if self._inflight.get(instance_id, 0) == 0:
            self._deferred.pop(instance_id, None)
            return False
        cost = self._episode_cost.get(instance_id, 0.0)
        if cost < COALESCE_THRESHOLD:
            return False
        now = time.monotonic()
        until = self._deferred.get(instance_id)
        if until is None:
            delay = min(COALESCE_MAX, cost * 2)
            self._deferred[instance_id] = now + delay
            self._wake_at(instance_id, time.time() + delay)
            return True
        if now < until:
            return True
        del self._deferred[instance_id]
        return False

    async def _process_instance(self, instance_id: str) -> None:
        if self._defer(instance_id):
            return
        now = time.time()
        messages = await self.store.visible_messages(instance_id, now)
        if not messages:
            return
        self._fetched[instance_id] = [m.id for m in messages]
        loaded = await self._load(instance_id)
        if loaded is None:
            logger.warning("dropping %d messages for unknown instance %s", len(messages), instance_id)
            await self.commit(Checkpoint(consumed=[m.id for m in messages if m.id is not None]))
            return
        record, past = loaded
        if record.is_terminal:
            # Late results of a finished instance are dropped, and its record is written again as it is: a
            # message comes back after a crash before its step was finished, and that step may have been cut
            # off before the store's instance row (what queries list) was written (the Azure store writes it
            # shortly after the step's history).
            await self.commit(Checkpoint(instance=record, consumed=[m.id for m in messages if m.id is not None]))
            return
        record = InstanceRecord(**{**record.__dict__, "engine": json.loads(json.dumps(record.engine))})
        if await self._refuse_version(record, past, messages, now):
            return
        consumed: list[Any] = []
        control: list[Json] = []
        deliver: list[tuple[Message, Json]] = []
        batch: list[Json] = []  # the events of this delivery so far: a message may come twice in one batch
        for message in messages:
            assert message.id is not None
            ev = message.event
            stale = message.execution_id is not None and message.execution_id != record.execution_id
            # Stale and duplicate messages first: one processed already but never deleted (a crash before
            # its deletion) may come back with attempts recorded, and is not poison for that.
            if stale or self._is_duplicate(ev, past) or self._is_duplicate(ev, batch):
                consumed.append(message.id)
            elif message.attempts >= self.settings.max_dequeue_count:
                self._log_cut_off(f"instance {instance_id} of orchestrator '{record.name}'", message.id,
                                  message.attempts)
                consumed.append(message.id)
                control.append(self._poison_failure(record, message, now))
            elif ev["EventType"] in (EventType.ExecutionTerminated, EventType.ExecutionSuspended,
                                     EventType.ExecutionResumed):
                consumed.append(message.id)
                control.append(ev)
                batch.append(ev)
            else:
                deliver.append((message, ev))
                batch.append(ev)
        checkpoint = Checkpoint(instance=record, consumed=consumed)
        for ev in control:
            if self._apply_control(record, ev, checkpoint, now):
                break  # terminated: nothing else is delivered
        if record.status == SUSPENDED or record.is_terminal:
            if record.is_terminal:
                checkpoint.consumed.extend(m.id for m, _ in deliver if m.id is not None)
            await self._commit_instance(checkpoint)
            return
        if not deliver:
            await self._commit_instance(checkpoint)
            return
        if not past and deliver[0][1]["EventType"] != EventType.ExecutionStarted:
            starts = [d for d in deliver if d[1]["EventType"] == EventType.ExecutionStarted]
            if not starts:
                await self._commit_instance(checkpoint)  # events for a Pending instance wait for its start
                return
            deliver.remove(starts[0])
            deliver.insert(0, starts[0])
        events, _later = order_for_delivery([ev for _, ev in deliver], record.engine)
        delivered_ids = {id(ev) for ev in events}
        checkpoint.consumed.extend(m.id for m, ev in deliver if id(ev) in delivered_ids and m.id is not None)
        if record.status == PENDING:
            record.status = RUNNING
        await self._start_attempt(instance_id, [m for m, ev in deliver if id(ev) in delivered_ids],
                                  f"instance {instance_id} of orchestrator '{record.name}'")
        episode = await self.worker.run_in_pool(self.episodes.run, record, past, events, now)
        self._episode_cost[instance_id] = time.time() - now
        checkpoint.new_history.extend(episode.new_history)
        checkpoint.activities.extend(episode.activities)
        checkpoint.messages.extend(episode.messages)
        for child in episode.new_instances:
            existing = await self._load(child.instance_id)
            if existing is not None and existing[0].status in ACTIVE_STATUSES:
                self._refuse_child(record, child, checkpoint, now)
            else:
                checkpoint.new_instances.append(child)
        record.custom_status = episode.custom_status
        record.last_updated_time = now
        if episode.continued_as_new:
            # The next execution keeps the version (DurableTask.Core: NewVersion ?? the current Version; the
            # Python SDK has no NewVersion).
            self._continue_as_new(record, episode.continue_as_new_input, episode.carry_over, checkpoint, now,
                                  version=versioning.started_version([*past, *events]))
        elif episode.status in (COMPLETED, FAILED):
            record.status = episode.status
            record.output = episode.output
            record.completed_time = now
            self._episode_cost.pop(instance_id, None)
            self._notify_parent(record, checkpoint, now, failure=episode.failure)
        await self._commit_instance(checkpoint)
        if _later:
            self.wake(instance_id)

    async def _refuse_version(self, record: InstanceRecord, past: list[Json], messages: list[Message],
                              now: float) -> bool:
        """The version check before every episode (durable.versioning); True when the episode must not run.

        As DurableTask.Core's dispatcher does it, the check comes before anything of the delivery is applied,
        terminate and suspend included. Reject: the dispatcher abandons the work item for another worker; a
        single host has no other worker and its host.json does not change while it runs, so funchost leaves
        every message where it is (unconsumed, its delivery count untouched) and logs it once: the instance
        stays as it is until a host whose defaultVersion accepts it starts on the task hub. Fail: the instance
        fails at once with DurableTask.Core's FailureDetails, and its messages are consumed.
        """
        own = [m.event for m in messages if m.execution_id in (None, record.execution_id)]
        started = versioning.has_start(past)
        events = past if started else own
        if not versioning.has_start(events):
            return False  # not started yet: its events wait for its ExecutionStarted, which is checked then
        version = versioning.started_version(events)
        mismatch = versioning.check_version(self.settings, version)
        if mismatch is None:
            return False
        if not mismatch.fail:
            key = (record.instance_id, record.execution_id)
            if key not in self._version_refused:
                self._version_refused.add(key)
                logger.warning("instance %s: not run: %s. versionFailureStrategy Reject leaves it %s with its %d "
                               "message(s) in the task hub until a host whose defaultVersion accepts it runs it "
                               "(change host.json and restart), or it is purged", record.instance_id,
                               mismatch.describe(), record.status, len(messages))
            return True
        logger.error("instance %s: failed: %s (versionFailureStrategy Fail)", record.instance_id, mismatch.describe())
        checkpoint = Checkpoint(instance=record, consumed=[m.id for m in messages if m.id is not None],
                                new_history=versioning.failed_history(now, [] if started else own))
        self._end(record, checkpoint, now, FAILED, versioning.MISMATCH_OUTPUT, failure=versioning.MISMATCH_OUTPUT)
        await self._commit_instance(checkpoint)
        return True

    @staticmethod
    def _refuse_child(record: InstanceRecord, child: InstanceRecord, checkpoint: Checkpoint, now: float) -> None:
        """A sub-orchestration id already in use by a running instance: fail that task, not the other run."""
        assert child.parent is not None
        checkpoint.messages = [m for m in checkpoint.messages
                               if not (m.instance_id == child.instance_id and m.execution_id == child.execution_id)]
        reason = (f"An instance with ID '{child.instance_id}' is already running; a sub-orchestration "
                  "needs an instance ID that is not in use.")
        ev = h.event(EventType.SubOrchestrationInstanceFailed, now, TaskScheduledId=child.parent["task_id"],
                     Reason=reason, Details=None)
        checkpoint.messages.append(Message(record.instance_id, ev, record.execution_id))

    async def _commit_instance(self, checkpoint: Checkpoint) -> None:
        if checkpoint.instance is not None and not checkpoint.replace_history:
            checkpoint.instance.last_updated_time = max(checkpoint.instance.last_updated_time, time.time())
        await self.commit(checkpoint)

    @staticmethod
    def _is_duplicate(ev: Json, past: list[Json]) -> bool:
        """At-least-once delivery can repeat a completion; the SDK must see each only once."""
        kind = ev.get("EventType")
        if kind in (EventType.TaskCompleted, EventType.TaskFailed, EventType.SubOrchestrationInstanceCompleted,
                    EventType.SubOrchestrationInstanceFailed):
            key, task_id = "TaskScheduledId", ev.get("TaskScheduledId")
        elif kind == EventType.TimerFired:
            key, task_id = "TimerId", ev.get("TimerId")
        elif kind == EventType.ExecutionStarted:
            return any(e.get("EventType") == EventType.ExecutionStarted for e in past)
        elif kind in (EventType.EventRaised, EventType.ExecutionTerminated, EventType.ExecutionSuspended,
                      EventType.ExecutionResumed) and ev.get("MessageId"):
            # Control events are in the history once applied (a suspend of a suspended instance is not, and
            # applying it again changes nothing).
            return any(e.get("MessageId") == ev["MessageId"] for e in past)
        else:
            return False
        return any(e.get("EventType") == kind and e.get(key) == task_id for e in past)

    def _attempts_text(self, attempts: int) -> str:
        return (f"{attempts} attempts at it did not finish (limit {self.settings.max_dequeue_count}; the host "
                "stopped or failed during each, and an attempt cut off on the first delivery is not counted), "
                "so it is not tried again. The host log holds the error of each attempt that failed, and says "
                "which ones the host stopped during")

    def _poison_failure(self, record: InstanceRecord, message: Message, now: float) -> Json:
        kind = message.event.get("EventType")
        name = EventType(kind).name if isinstance(kind, int) and kind in EventType._value2member_map_ else "entity"
        return {"EventType": POISON, "Reason": (
            f"its {name} message to instance '{record.instance_id}' is poison: "
            f"{self._attempts_text(message.attempts)}.")}

    def _poison_reason(self, task: ActivityTask) -> str:
        return (f"Activity function '{task.name}' failed: its work item for instance '{task.instance_id}' is "
                f"poison: {self._attempts_text(task.attempts)}.")

    def _apply_control(self, record: InstanceRecord, ev: Json, checkpoint: Checkpoint, now: float) -> bool:
        kind = ev["EventType"]
        if kind == POISON:
            message = f"Orchestrator function '{record.name}' failed: {ev['Reason']}"
            logger.error("instance %s: %s", record.instance_id, message)
            checkpoint.new_history.append(h.execution_completed(now, OrchestrationStatusCode.Failed,
                                                                json.dumps(message)))
            self._end(record, checkpoint, now, FAILED, message, failure=message)
            return True
        if kind == EventType.ExecutionTerminated:
            reason = ev.get("Input")
            checkpoint.new_history.append(ev)
            checkpoint.new_history.append(h.execution_completed(now, OrchestrationStatusCode.Terminated,
                                                                json.dumps(reason)))
            self._end(record, checkpoint, now, TERMINATED, reason,
                      failure=f"The sub-orchestration was terminated: {reason}")
            return True
        if kind == EventType.ExecutionSuspended and record.status in (RUNNING, PENDING):
            record.status = SUSPENDED
            record.engine["resume_to"] = RUNNING
            checkpoint.new_history.append(ev)
        elif kind == EventType.ExecutionResumed and record.status == SUSPENDED:
            record.status = record.engine.pop("resume_to", RUNNING)
            checkpoint.new_history.append(ev)
            self.wake(record.instance_id)  # held messages are delivered now
        return False

    def _end(self, record: InstanceRecord, checkpoint: Checkpoint, now: float, status: str, output: Any,
             failure: str) -> None:
        """End the instance with ``status`` and ``output`` (as JSON) outside an episode, and tell its parent,
        which learns ``failure``; the caller writes the history that says why."""
        record.status = status
        record.output = json.dumps(output)
        record.completed_time = now
        self._notify_parent(record, checkpoint, now, failure=failure)

    def _notify_parent(self, record: InstanceRecord, checkpoint: Checkpoint, now: float,
                       failure: str | None) -> None:
        parent = record.parent
        if not parent:
            return
        task_id = parent["task_id"]
        if record.status == COMPLETED:
            ev = h.event(EventType.SubOrchestrationInstanceCompleted, now, TaskScheduledId=task_id,
                         Result=record.output)
        else:
            ev = h.event(EventType.SubOrchestrationInstanceFailed, now, TaskScheduledId=task_id,
                         Reason=failure or f"Sub-orchestration '{record.name}' failed", Details=None)
        checkpoint.messages.append(Message(parent["instance_id"], ev, parent.get("execution_id")))

    def _continue_as_new(self, record: InstanceRecord, input_text: str | None, carry_over: list[Json],
                         checkpoint: Checkpoint, now: float, version: str | None = None) -> None:
        record.execution_id = uuid.uuid4().hex
        record.input = input_text
        record.engine = new_engine_state()
        record.output = None
        record.status = RUNNING
        checkpoint.replace_history = True
        checkpoint.new_history = []
        started = h.execution_started(now, name=record.name, instance_id=record.instance_id,
                                      execution_id=record.execution_id, input_text=input_text,
                                      parent=record.parent, version=version)
        checkpoint.messages.append(Message(record.instance_id, started, record.execution_id))
        for ev in carry_over:
            # Identity, so a redelivered event is not delivered twice; pinned to the new execution, so a step
            # replayed after a crash (a new execution id) does not deliver its copies too.
            ev.setdefault("MessageId", uuid.uuid4().hex)
            checkpoint.messages.append(Message(record.instance_id, ev, record.execution_id))

    # --- entities -------------------------------------------------------------------------------

    async def _process_entity(self, entity: str) -> None:
        messages = await self.store.visible_messages(entity, time.time(), limit=self.settings.max_entity_batch_size)
        if not messages:
            return
        self._fetched[entity] = [m.id for m in messages]
        name, _ = split_entity_id(entity)
        handler = self.functions.entity(name)
        if handler is None:
            logger.warning("dropping %d operations for unknown entity %s", len(messages), entity)
            await self.commit(Checkpoint(consumed=[m.id for m in messages if m.id is not None]))
            return
        current = await self.store.load_entity(entity)
        seen = set(current.recent if current else ())
        now = time.time()
        taken, to_run, replies = self._entity_batch(entity, messages, seen, now)
        consumed = [m.id for m in taken if m.id is not None]
        requests = [m.event["EntityRequest"] for m in to_run]
        if not requests:
            await self.commit(Checkpoint(consumed=consumed, messages=replies))
        else:
            await self._start_attempt(entity, to_run, f"entity {entity}, operation '{requests[0].get('op')}'"
                                      if len(requests) == 1 else f"entity {entity}")
            outcome = await self.worker.run_in_pool(run_batch, handler, entity, current, requests,
                                                    self.worker.call_blocking)
            if outcome.state is not None:
                recent = [*(current.recent if current else []), *(str(r.get("id")) for r in requests)]
                outcome.state.recent = recent[-RECENT_ENTITY_REQUESTS:]
            await self.commit(Checkpoint(consumed=consumed, messages=[*replies, *outcome.replies],
                                         entity=outcome.state,
                                         delete_entity=None if outcome.state is not None else entity))
        if len(taken) < len(messages) or len(messages) == self.settings.max_entity_batch_size:
            self.wake(entity)

    def _entity_batch(self, entity: str, messages: list[Message], seen: set[Any],
                      now: float) -> tuple[list[Message], list[Message], list[Message]]:
        """Which of an entity's messages this batch takes (in arrival order), which of those it runs, and the
        error replies to poisoned calls.

        At-least-once delivery can hand an operation over twice, also twice in one batch; its request id says
        it ran already. An operation with an unfinished attempt (its batch failed, or the host died during it)
        runs in a batch of its own, so that only the operation that fails has its attempts counted; one over
        the poison limit is not run again: a call gets an error reply, a signal is dropped with an error logged.
        """
        taken: list[Message] = []
        to_run: list[Message] = []
        replies: list[Message] = []
        for message in messages:
            request = message.event["EntityRequest"]
            if request.get("id") in seen:
                taken.append(message)
                continue
            if message.attempts >= self.settings.max_dequeue_count:
                self._log_cut_off(f"entity {entity}, operation '{request.get('op')}'", message.id, message.attempts)
                taken.append(message)
                seen.add(request.get("id"))
                replies.extend(self._poisoned_operation(entity, request, message.attempts, now))
                continue
            if message.attempts > 0 and to_run:
                break  # it runs alone, in the next batch
            taken.append(message)
            to_run.append(message)
            seen.add(request.get("id"))
            if message.attempts > 0:
                break
        return taken, to_run, replies

    def _poisoned_operation(self, entity: str, request: Json, attempts: int, now: float) -> list[Message]:
        name, _ = split_entity_id(entity)
        reason = (f"Entity '{name}' operation '{request.get('op')}' on entity {entity} is poison: "
                  f"{self._attempts_text(attempts)}.")
        logger.error("entity %s: %s", entity, reason)
        if request.get("signal") or not request.get("parent"):
            return []  # a signal has no caller to tell: the log line above is all
        # The reply a failed operation gets from ``entities.run_batch``, so the caller's call fails with it.
        reply = h.event_raised(now, str(request["id"]), json.dumps({"result": json.dumps(reason),
                                                                    "exceptionType": "Error"}))
        reply["MessageId"] = f"reply:{request['id']}"
        return [Message(str(request["parent"]), reply, request.get("parentExecution"))]

    # --- client operations (the management API calls these) -------------------------------------

    async def get(self, instance_id: str) -> tuple[InstanceRecord, list[Json]] | None:
        return await self._load(instance_id)

    async def start_new(self, name: str, instance_id: str | None, input_text: str | None,
                        version: str | None = None) -> InstanceRecord:
        """Create a Pending instance of orchestrator ``name``; without a ``version`` it gets defaultVersion
        (the extension's start handler: ``?version=`` ?? DefaultVersion; an empty one stays empty).

        An id in use is started anew unless its instance is in a state host.json's
        ``overridableExistingInstanceStates`` keeps (``_refused_statuses``). The replaced run's history goes;
        its sub-orchestrations are instances of their own and stay (the extension does not purge them), and
        whatever is still on its way to the old run (activity results, timers, a child's answer) is addressed
        to the old execution id and dropped when it arrives.
        """
        handler = self.functions.orchestrator(name)
        if handler is None:
            known = sorted({o.durable_name for o in self.functions.orchestrators.values()})
            raise ManagementError(400, f"The function '{name}' doesn't exist, is disabled, or is not an "
                                       "orchestrator function. Additional info: the app's orchestrator functions "
                                       f"are: {', '.join(known) or 'none'}.")
        instance_id = instance_id or uuid.uuid4().hex
        _check_instance_id(instance_id)
        if version is None:
            version = self.settings.default_version
        claimed: set[str] = set()
        try:
            # Held as a worker holds it: no episode of the run being replaced commits after the new one.
            await self._claim(instance_id, claimed)
            existing = await self._load(instance_id)
            if existing is not None and existing[0].status in self._refused_statuses():
                raise _already_exists(existing[0].status)
            record, start = new_instance(handler.durable_name, instance_id, input_text, time.time(),
                                         version=version)
            live = existing is not None and not existing[0].is_terminal
            try:
                await self.commit(Checkpoint(instance=record, replace_history=True, replace_live=live,
                                             messages=[start]))
            except CheckpointConflictError as err:
                # Another writer of the task hub started the id between our check and our write.
                self.forget(instance_id)
                raise _already_exists(PENDING) from err
        finally:
            self._release(claimed)
        return record

    def _refused_statuses(self) -> tuple[str, ...]:
        """The statuses in which an existing instance is not replaced by a start of its id: the Durable
        extension's ``OverridableStates.ToDedupeStatuses`` (NonRunningStates: Running, ContinuedAsNew, Pending,
        Suspended; AnyState: none)."""
        if self.settings.overridable_existing_instance_states == OverridableStates.ANY_STATE:
            return ()
        return (*ACTIVE_STATUSES, CONTINUED_AS_NEW)

    async def raise_event(self, instance_id: str, name: str, input_text: str | None) -> None:
        record = await self._require(instance_id)
        if record.is_terminal:
            raise ManagementError(410, f"Instance '{instance_id}' is {record.status}: it accepts no more events.")
        ev = h.event_raised(time.time(), name, input_text)
        ev["MessageId"] = uuid.uuid4().hex  # identity, so a redelivered event is not delivered twice
        await self.commit(Checkpoint(messages=[Message(instance_id, ev)]))

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        record = await self._require(instance_id)
        if record.is_terminal:
            raise ManagementError(410, f"Instance '{instance_id}' is already {record.status}.")
        ev = h.event(EventType.ExecutionTerminated, time.time(), Input=reason)
        ev["MessageId"] = uuid.uuid4().hex  # identity, so a redelivered terminate is not applied twice
        await self.commit(Checkpoint(messages=[Message(instance_id, ev)]))

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        record = await self._require(instance_id)
        if record.is_terminal:
            raise ManagementError(410, f"Instance '{instance_id}' is already {record.status}.")
        ev = h.event(EventType.ExecutionSuspended, time.time(), Reason=reason)
        ev["MessageId"] = uuid.uuid4().hex  # identity, so a redelivered suspend is not applied twice
        await self.commit(Checkpoint(messages=[Message(instance_id, ev)]))

    async def resume(self, instance_id: str, reason: str | None) -> None:
        record = await self._require(instance_id)
        if record.is_terminal:
            raise ManagementError(410, f"Instance '{instance_id}' is already {record.status}.")
        ev = h.event(EventType.ExecutionResumed, time.time(), Reason=reason)
        ev["MessageId"] = uuid.uuid4().hex  # identity, so a redelivered resume is not applied twice
        await self.commit(Checkpoint(messages=[Message(instance_id, ev)]))

    async def restart(self, instance_id: str, new_id: bool) -> InstanceRecord:
        """Start the instance's orchestrator again with its input, as the extension's ``RestartAsync`` does: a
        start (``start_new``) under a new id, or under the same id, which follows the rules of any start of an
        id in use (a live instance is refused, a finished one replaced). Without a version: it gets today's
        defaultVersion. An unknown id is a 404 here, which the SDK's ``restart`` words itself; the extension's
        handler answers 400 for it."""
        record = await self._require(instance_id)
        return await self.start_new(record.name, None if new_id else instance_id, record.input)

    async def purge(self, instance_ids: list[str]) -> int:
        """Delete finished instances (Completed, Failed, Terminated, Canceled) with their history; the number
        deleted. A live one is left as it is and not counted: durabletask-dotnet's ``PurgeInstanceAsync``
        contract ("only orchestration instances in the Completed, Failed, or Terminated state can be purged").

        Each instance is held as a worker holds it while it is checked and deleted, so no episode commits
        under the purge's feet and brings it back; a message that reaches it afterwards finds no instance
        and is dropped (``_process_instance``).
        """
        claimed: set[str] = set()
        try:
            finished: list[str] = []
            for instance_id in instance_ids:
                loaded = await self._load(instance_id)
                if loaded is None or not loaded[0].is_terminal:
                    continue  # live now: not purged (a finished instance never becomes live by itself)
                await self._claim(instance_id, claimed)
                loaded = await self._load(instance_id)  # a start may have replaced it meanwhile
                if loaded is not None and loaded[0].is_terminal:
                    finished.append(instance_id)
            if not finished:
                return 0
            for instance_id in finished:
                self.forget(instance_id)
                self._ended(instance_id)
            return await self.store.purge(finished)
        finally:
            self._release(claimed)

    async def signal_entity(self, name: str, key: str, operation: str, input_text: str | None) -> None:
        if self.functions.entity(name) is None:
            raise ManagementError(400, f"The function '{name}' doesn't exist, is disabled, or is not an entity "
                                       "function.")
        entity = f"@{name.lower()}@{key}"
        request = operation_request(operation, input_text, uuid.uuid4().hex, signal=True)
        await self.commit(Checkpoint(messages=[Message(entity, {"EntityRequest": request})]))

    async def rewind(self, instance_id: str, reason: str | None) -> None:
        """Rewind a Failed instance: its failed tasks, and failed sub-orchestrations (rewound in turn), run
        again, and it goes on from there (``durable.rewind`` says how, and what it matched).

        The answers match the Durable extension's HttpApiHandler and DurableClient.RewindAsync: 404 for an
        unknown id, 410 for a Completed, Terminated or Canceled one, and for any other status that is not
        Failed the InvalidOperationException that its handler turns into a 500.
        """
        record = await self._require(instance_id)
        if record.status in (COMPLETED, TERMINATED, CANCELED):
            raise ManagementError(410, f"Instance '{instance_id}' is {record.status}. {NOT_FAILED_MESSAGE}")
        if record.status != FAILED:
            raise ManagementError(500, NOT_FAILED_MESSAGE, summary="Something went wrong while processing your "
                                                                    "request")
        claimed: set[str] = set()
        try:
            steps = await self._rewind_steps(instance_id, reason, claimed)
            # Children first: until its parent is rewound too, a child that completes would answer a Failed
            # parent, which drops the answer; the claims keep both from running until all is written.
            for step in steps:
                await self.commit(Checkpoint(instance=step.record, replace_history=True, new_history=step.history,
                                             messages=step.messages))
                logger.info("instance %s: rewound (%s)", step.record.instance_id, reason)
        finally:
            self._release(claimed)
        await self._notify_changed()

    async def _rewind_steps(self, instance_id: str, reason: str | None, claimed: set[str]) -> list[RewindStep]:
        await self._claim(instance_id, claimed)
        loaded = await self._load(instance_id)
        if loaded is None or loaded[0].status != FAILED:
            return []  # it changed while this rewind waited for it; its parent's step copes with that
        record, history = loaded
        plan = Rewind(record, history)
        children: dict[int, InstanceRecord | None] = {}
        for task_id, child_id in plan.sub_orchestrations().items():
            child = await self._load(child_id)
            children[task_id] = child[0] if child is not None else None
        step = plan.plan(children, reason, time.time(), self._inflight.get(instance_id, 0))
        steps: list[RewindStep] = []
        for child_id in step.children:
            steps.extend(await self._rewind_steps(child_id, reason, claimed))
        steps.append(step)
        return steps

    async def _claim(self, instance_id: str, claimed: set[str]) -> None:
        """Hold the instance as a worker would: no episode of it runs until ``_release``."""
        deadline = time.monotonic() + CLAIM_TIMEOUT
        while instance_id in self._running or instance_id in self._queued:
            if time.monotonic() > deadline:
                raise ManagementError(409, f"Instance '{instance_id}' stayed busy for {CLAIM_TIMEOUT:g}s; "
                                           "try again.")
            await self.wait_for_change(0.05)
        self._running.add(instance_id)
        claimed.add(instance_id)

    def _release(self, claimed: set[str]) -> None:
        for instance_id in claimed:
            self._running.discard(instance_id)
            if instance_id in self._again:
                self._again.discard(instance_id)
                self.wake(instance_id)

    async def _require(self, instance_id: str) -> InstanceRecord:
        loaded = await self._load(instance_id)
        if loaded is None:
            raise ManagementError(404, f"No instance with ID '{instance_id}' found.")
        return loaded[0]

    async def wait_until_done(self, instance_id: str, timeout: float) -> InstanceRecord | None:
        """The instance once it is terminal, or as it is when ``timeout`` runs out."""
        deadline = time.monotonic() + timeout
        while True:
            loaded = await self._load(instance_id)
            if loaded is None or loaded[0].is_terminal:
                return loaded[0] if loaded else None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return loaded[0]
            await self.wait_for_change(min(remaining, 0.5))


def _already_exists(status: str) -> ManagementError:
    """A start refused because the id's instance is live: DurableTask.AzureStorage's
    OrchestrationAlreadyExistsException, which HttpApiHandler answers with 500 and these words."""
    return ManagementError(500, f"An Orchestration instance with the status {status} already exists.",
                           summary="Something went wrong while processing your request")


def _check_instance_id(instance_id: str) -> None:
    """Refuse, with a 400 that says why, an id the task hub cannot hold (``durable.ids``)."""
    problem = instance_id_problem(instance_id)
    if problem:
        raise ManagementError(400, problem)


def check_entity_id(name: str, key: str) -> None:
    """Refuse, with a 400 that says why, an entity id the task hub cannot hold (``durable.ids``)."""
    problem = entity_id_problem(name, key)
    if problem:
        raise ManagementError(400, problem)
