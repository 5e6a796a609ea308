"""Rewind of a failed orchestration: which history events to clear, and what runs again.

Matched behaviour: DurableTask.AzureStorage's rewind, which the Durable extension's Azure Storage provider
calls (``AzureStorageOrchestrationService.RewindTaskOrchestrationAsync`` →
``AzureTableTrackingStore.RewindHistoryAsync``). In the failed execution's history it turns every
``TaskFailed`` and its ``TaskScheduled``, every ``SubOrchestrationInstanceFailed`` and the failed
``ExecutionCompleted`` into ``GenericEvent`` rows whose ``Reason`` is ``"Rewound: <their old type>"``
(the rows stay, replay skips them); a failed sub-orchestration keeps its ``SubOrchestrationInstanceCreated``
(marked with such a ``Reason``) and is itself rewound, recursively, instead of started again. Every rewound
instance is ``Pending``; the deepest failed instance of each branch gets a ``GenericEvent`` message whose
``Data`` is the rewind's reason, which starts its next episode, and the record of the rewind in its history.

Why that replays deterministically here: the Python SDK skips ``GenericEvent`` (and ``TaskScheduled``), and
numbers its tasks itself by the order its code creates them, so a cleared task is created again under the
id it had. The engine schedules it again under that id (``engine["rewound"]``, see ``durable.replay``).

Where funchost goes beyond what the extension does, because the extension would leave the instance stuck:
- Work the failure cut off is run again too: an activity scheduled but never answered (its result arrived
  after the instance had failed and was dropped), a timer that had not fired, an action whose scheduling
  never reached the history. A result that does arrive late is then a duplicate, which the engine drops; a
  failure that reaches a cleared task before it runs again is from before the rewind, and is dropped too.
- A sub-orchestration that has completed since (an earlier rewind of it) has its answer sent again; one that
  was terminated, or whose instance no longer belongs to this parent, is not rewound (the extension refuses
  to rewind a Terminated instance): its failure stays and the parent replays into it again.
- Retries run by the host (``call_*_with_retry``): their hidden timers and attempts took ids the SDK hands
  out again after a rewind, so clearing one failure would shift every later id. A retried task that failed
  in the end therefore starts over from its first attempt, and everything the execution scheduled after that
  task's first retry is cleared and runs again (the "cut"). While the cleared ids may still receive answers
  from before (a retry timer not yet due, activities still running), the rewind is refused with 409.
Entity calls left unanswered by the failure are not sent again (the entity drops a request id it has seen).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from funchost.durable import history as h
from funchost.durable.history import EventType, OrchestrationStatusCode
from funchost.durable.replay import (
    CALL_ACTIVITY,
    CALL_ACTIVITY_RETRY,
    CALL_HTTP,
    CALL_SUB,
    CALL_SUB_RETRY,
    CREATE_TIMER,
)
from funchost.errors import ManagementError
from funchost.stores.base import COMPLETED, FAILED, PENDING, RUNNING, SUSPENDED, InstanceRecord, Json, Message

REWOUND = "Rewound: "  # the Reason prefix DurableTask.AzureStorage writes on the rows it clears
# DurableClient.RewindAsync's InvalidOperationException text, for an instance that is not Failed.
NOT_FAILED_MESSAGE = "The rewind operation is only supported on failed orchestration instances."

_SCHEDULES = (EventType.TaskScheduled, EventType.TimerCreated, EventType.SubOrchestrationInstanceCreated,
              EventType.EventSent)
_ANSWERS = (EventType.TaskCompleted, EventType.TaskFailed, EventType.SubOrchestrationInstanceCompleted,
            EventType.SubOrchestrationInstanceFailed)
_RESULTS = (EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted)
_SUCCESSES = (*_RESULTS, EventType.TimerFired)
_ACTIVE = (PENDING, RUNNING, SUSPENDED)


class RewindConflictError(ManagementError):
    """The rewind cannot be done safely now; nothing was changed."""

    def __init__(self, instance_id: str, message: str) -> None:
        super().__init__(409, message)
        self.instance_id = instance_id


@dataclass
class RewindStep:
    """What rewinding one instance writes: its record and whole history, and messages to itself.

    ``children`` are its failed sub-orchestrations, to be rewound (and committed) before it.
    """

    record: InstanceRecord
    history: list[Json]
    messages: list[Message] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


@dataclass
class _Chain:
    """A task run with host-side retries: its first attempt's id and the hidden ids its retries took."""

    first: int
    hidden: list[int]
    succeeded: bool


class Rewind:
    """The rewind of one failed instance, worked out from its record and history (neither is changed)."""

    def __init__(self, record: InstanceRecord, history: list[Json]) -> None:
        self.record = record
        self.history = history
        engine = record.engine
        self.recorded: dict[int, int] = {int(task_id): int(kind) for kind, _, task_id in engine.get("actions", [])}
        self.scheduled: dict[int, int] = {}  # task id -> position of its scheduling event
        self.answers: dict[int, list[int]] = {}  # task id -> positions of its answers
        self.replies: dict[str, list[int]] = {}  # entity request id -> positions of its replies
        requests: dict[int, str] = {}
        for i, ev in enumerate(history):
            kind = ev.get("EventType")
            if kind in _SCHEDULES:
                self.scheduled[int(ev["EventId"])] = i
                if kind == EventType.EventSent:
                    requests[int(ev["EventId"])] = str(_object(ev.get("Input")).get("id"))
            elif kind in _ANSWERS:
                self.answers.setdefault(int(ev["TaskScheduledId"]), []).append(i)
            elif kind == EventType.TimerFired:
                self.answers.setdefault(int(ev["TimerId"]), []).append(i)
            elif kind == EventType.EventRaised:
                self.replies.setdefault(str(ev.get("Name")), []).append(i)
        self.requests = requests
        self.retry_of = {int(k): int(v) for k, v in (engine.get("retry_of") or {}).items()}
        self.chains = self._chains()
        self.cut = self._cut()

    # --- analysis -------------------------------------------------------------------------------

    def _succeeded(self, task_id: int, successes: tuple[EventType, ...] = _SUCCESSES) -> bool:
        return any(self.history[i].get("EventType") in successes for i in self.answers.get(task_id, []))

    def _chains(self) -> dict[int, _Chain]:
        chains: dict[int, _Chain] = {}
        for task_id, kind in self.recorded.items():
            if kind in (CALL_ACTIVITY_RETRY, CALL_SUB_RETRY):
                hidden = sorted(k for k, first in self.retry_of.items() if first == task_id)
                # Its retry timers fire too; only an attempt's own result is a success.
                succeeded = any(self._succeeded(attempt, _RESULTS) for attempt in (task_id, *hidden))
                chains[task_id] = _Chain(task_id, hidden, succeeded)
        return chains

    def _cut(self) -> int | None:
        """The first id to clear wholesale, or None: the first retry of a retried task that did not succeed,
        moved down until no retried task has hidden ids on both sides of it."""
        cut = min((c.hidden[0] for c in self.chains.values() if c.hidden and not c.succeeded), default=None)
        while cut is not None:
            lower = min((c.hidden[0] for c in self.chains.values() if c.hidden and c.hidden[-1] >= cut), default=cut)
            if lower >= cut:
                return cut
            cut = lower
        return None

    def _below_cut(self, task_id: int) -> bool:
        return self.cut is None or task_id < self.cut

    def sub_orchestrations(self) -> dict[int, str]:
        """Sub-orchestrations whose state the rewind depends on (task id -> instance id): those that have not
        completed, from plain ``call_sub_orchestrator`` calls below the cut and every one above it."""
        found: dict[int, str] = {}
        for task_id, i in self.scheduled.items():
            ev = self.history[i]
            if ev.get("EventType") != EventType.SubOrchestrationInstanceCreated or self._succeeded(task_id):
                continue
            if not self._below_cut(task_id) or self.recorded.get(task_id) == CALL_SUB:
                found[task_id] = str(ev.get("InstanceId"))
        return found

    # --- the rewrite ----------------------------------------------------------------------------

    def plan(self, children: dict[int, InstanceRecord | None], reason: str | None, now: float,
             activities_in_flight: int) -> RewindStep:
        """The step that rewinds this instance, given the records of ``sub_orchestrations()`` (None: gone).

        Raises:
            RewindConflictError: the rewind would hand out again ids that answers from before may still
                arrive for, or the instance was written by a funchost that did not track retries.
        """
        record = InstanceRecord(**{**self.record.__dict__, "engine": json.loads(json.dumps(self.record.engine))})
        engine = record.engine
        step = RewindStep(record, [])
        clear: set[int] = set()  # positions of events that become GenericEvent rows
        marked: set[int] = set()  # positions of SubOrchestrationInstanceCreated rows that only get a Reason
        rerun: list[int] = []  # ids the SDK will create again and the engine will schedule again

        def clear_task(task_id: int) -> None:
            if task_id in self.scheduled:
                clear.add(self.scheduled[task_id])
            clear.update(self.answers.get(task_id, []))
            clear.update(self.replies.get(self.requests.get(task_id, ""), []))

        self._check_retry_ids()
        if self.cut is not None:
            self._check_cut(children, now, activities_in_flight)
            for task_id in {*self.scheduled, *self.answers}:
                if task_id >= self.cut:
                    clear_task(task_id)
            self._forget_from_cut(engine)
        reset = {c.first for c in self.chains.values()
                 if self._below_cut(c.first) and (not c.succeeded or not all(self._below_cut(k) for k in c.hidden))}
        for task_id, kind in self.recorded.items():
            if not self._below_cut(task_id):
                continue
            if task_id in reset:  # a retried task starts over from its first attempt
                clear_task(task_id)
                rerun.append(task_id)
                _forget_retries(engine, {task_id, *self.chains[task_id].hidden})
            elif task_id not in self.scheduled:
                rerun.append(task_id)  # its scheduling never reached the history
            elif kind == CALL_SUB:
                self._sub_orchestration(task_id, children.get(task_id), step, clear, marked, now)
            elif kind in (CALL_ACTIVITY, CALL_HTTP, CREATE_TIMER) and not self._succeeded(task_id):
                clear_task(task_id)  # failed, or cut off by the failure
                rerun.append(task_id)
            # Entity calls and signals are kept: see the module docstring.
        for i, ev in enumerate(self.history):
            if ev.get("EventType") == EventType.ExecutionCompleted \
                    and ev.get("OrchestrationStatus") == OrchestrationStatusCode.Failed:
                clear.add(i)
        step.history = [_cleared(ev) if i in clear else _marked(ev) if i in marked else ev
                        for i, ev in enumerate(self.history)]
        if rerun:
            engine["rewound"] = sorted({*engine.get("rewound", []), *rerun})
        record.status = PENDING
        record.completed_time = None
        record.last_updated_time = now
        if not step.children:
            # The deepest failed instance of its branch: this message starts its next episode (a parent
            # resumes when its sub-orchestration answers) and records the reason in its history.
            step.messages.append(Message(record.instance_id, h.event(EventType.GenericEvent, now, Data=reason),
                                         record.execution_id))
        return step

    def _sub_orchestration(self, task_id: int, child: InstanceRecord | None, step: RewindStep, clear: set[int],
                           marked: set[int], now: float) -> None:
        if self._succeeded(task_id):
            return
        record = step.record
        failures = self.answers.get(task_id, [])
        parent = (child.parent or {}) if child is not None else {}
        ours = (parent.get("instance_id"), parent.get("execution_id"), parent.get("task_id")) == \
            (record.instance_id, record.execution_id, task_id)
        if child is not None and ours and child.status == FAILED:
            clear.update(failures)
            marked.add(self.scheduled[task_id])
            step.children.append(child.instance_id)
        elif child is not None and ours and child.status == COMPLETED:
            # An earlier rewind of it has completed, and its answer was dropped: send it again.
            clear.update(failures)
            ev = h.event(EventType.SubOrchestrationInstanceCompleted, now, TaskScheduledId=task_id,
                         Result=child.output)
            step.messages.append(Message(record.instance_id, ev, record.execution_id))
        elif child is not None and ours and child.status in _ACTIVE:
            clear.update(failures)  # it answers when it finishes
        elif not failures:
            # Terminated, or no longer this parent's, and its answer went missing: the parent sees it fail.
            name = self.history[self.scheduled[task_id]].get("InstanceId")
            what = f"is {child.status}" if child is not None and ours else "no longer exists"
            ev = h.event(EventType.SubOrchestrationInstanceFailed, now, TaskScheduledId=task_id,
                         Reason=f"The sub-orchestration instance '{name}' {what}; a rewind cannot run it again.",
                         Details=None)
            step.messages.append(Message(record.instance_id, ev, record.execution_id))

    def _check_retry_ids(self) -> None:
        unknown = [i for i in self.scheduled if i not in self.recorded and i not in self.retry_of]
        if unknown and any(not c.succeeded for c in self.chains.values()):
            iid = self.record.instance_id
            raise RewindConflictError(iid, (
                f"Instance '{iid}' retried a task before this version of funchost recorded which task each "
                "retry belongs to, so its history cannot be rewound safely; restart it instead."))

    def _check_cut(self, children: dict[int, InstanceRecord | None], now: float, activities_in_flight: int) -> None:
        assert self.cut is not None
        iid = self.record.instance_id
        if activities_in_flight:
            raise RewindConflictError(iid, (
                f"Instance '{iid}' still has {activities_in_flight} activities queued or running from before it "
                "failed; a rewind now would mix their results up with the tasks that run again. Try again once "
                "they have finished."))
        for task_id, i in self.scheduled.items():
            ev = self.history[i]
            if task_id < self.cut or task_id in self.answers:
                continue
            if ev.get("EventType") == EventType.TimerCreated and h.parse_time(str(ev.get("FireAt"))) > now:
                raise RewindConflictError(iid, (
                    f"Instance '{iid}' has a timer from before it failed that is due at {ev.get('FireAt')}; a "
                    "rewind before then would mix that timer up with the tasks that run again."))
            child = children.get(task_id)
            if child is not None and child.status in _ACTIVE:
                raise RewindConflictError(iid, (
                    f"Instance '{iid}' has a sub-orchestration, '{child.instance_id}', still {child.status} from "
                    "before it failed; rewind it once that one has finished."))

    def _forget_from_cut(self, engine: Json) -> None:
        """The engine's bookkeeping of every id from the cut on goes: the SDK hands those ids out again."""
        assert self.cut is not None
        cut = self.cut
        dropped = {rid for task_id, rid in self.requests.items() if task_id >= cut}
        engine["actions"] = [entry for entry in engine.get("actions", []) if int(entry[2]) < cut]
        engine["next_id"] = cut
        engine["entity_calls"] = [r for r in engine.get("entity_calls", []) if r not in dropped]
        engine["retry_of"] = {k: v for k, v in (engine.get("retry_of") or {}).items() if int(k) < cut}
        engine["rewound"] = [t for t in engine.get("rewound", []) if t < cut]
        _forget_retries(engine, {int(k) for k in [*engine.get("retries", {}), *engine.get("retry_timers", {})]
                                 if int(k) >= cut})


def _forget_retries(engine: Json, ids: Iterable[int]) -> None:
    """Drop the retry bookkeeping of these task ids: attempts in progress, and the timers serving them."""
    gone = set(ids)
    engine["retries"] = {k: v for k, v in engine.get("retries", {}).items() if int(k) not in gone}
    engine["retry_timers"] = {k: v for k, v in engine.get("retry_timers", {}).items()
                              if int(k) not in gone and int(v) not in gone}


def _cleared(ev: Json) -> Json:
    """The row kept in place of a cleared event: a GenericEvent, which replay skips. DurableTask.AzureStorage
    overwrites the row's EventType and Reason in the same way and leaves its other columns."""
    return {**ev, "EventType": int(EventType.GenericEvent), "Reason": REWOUND + EventType(ev["EventType"]).name}


def _marked(ev: Json) -> Json:
    return {**ev, "Reason": REWOUND + EventType(ev["EventType"]).name}


def _object(text: Any) -> Json:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
