"""One orchestration episode: replay the history into the SDK, then turn its actions into work.

This module is pure: it reads an instance, its history and the events being delivered, calls the
SDK's ``handle(context)`` and returns an ``Episode`` that says what to append to the history,
which activities, timers, sub-orchestrations and entity messages to send, and the new status.
The engine persists that as one checkpoint.

Task ids (protocol spec 2c) are the invariant everything hangs on: the SDK numbers its tasks in
the order it creates them and matches completions by those numbers only. The host hands out the
same numbers: one counter per execution; each new id-consuming action in the flattened action
list takes the next id, and each hidden retry timer or re-scheduled attempt takes the next id at
the point the SDK itself creates it. To keep that point unambiguous, the engine delivers at most
one retry-related event per episode, and always last (see ``order_for_delivery``).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

from funchost.app_loader import DurableHandler, FunctionIndex
from funchost.durable import history as h
from funchost.durable.entities import split_entity_id
from funchost.durable.history import EventType, OrchestrationStatusCode
from funchost.durable.ids import entity_id_problem, instance_id_problem
from funchost.limits import BODY_LIMIT_SETTING
from funchost.stores.base import (
    COMPLETED,
    FAILED,
    RUNNING,
    ActivityTask,
    InstanceRecord,
    Json,
    Message,
)
from funchost.worker import call_here

logger = logging.getLogger(__name__)

OUT_OF_PROC_MARKER = "$OutOfProcData$:"
HTTP_ACTIVITY = "BuiltIn::HttpActivity"

# Action types of the SDK's out-of-proc protocol (schema V2).
CALL_ACTIVITY, CALL_ACTIVITY_RETRY, CALL_SUB, CALL_SUB_RETRY = 0, 1, 2, 3
ENTITY_REQUEST_NAMESPACE = uuid.UUID("6f0d7a52-3c1e-4b8e-9a57-2d4c8e1f0b93")  # for ``entity_request_id``
CONTINUE_AS_NEW, CREATE_TIMER, WAIT_FOR_EVENT, CALL_ENTITY, CALL_HTTP, SIGNAL_ENTITY = 4, 5, 6, 7, 8, 9
WHEN_ANY, WHEN_ALL = 11, 12
ID_CONSUMING = frozenset({0, 1, 2, 3, 5, 7, 8, 9})
ACTION_NAMES = {0: "CallActivity", 1: "CallActivityWithRetry", 2: "CallSubOrchestrator",
                3: "CallSubOrchestratorWithRetry", 5: "CreateTimer", 7: "CallEntity", 8: "CallHttp",
                9: "SignalEntity"}


class OrchestrationFailure(Exception):
    """The episode ends the instance as Failed with this message (already worded for the user)."""


def new_engine_state() -> Json:
    """Per-execution bookkeeping kept with the instance record."""
    return {"next_id": 0, "actions": [], "retries": {}, "retry_timers": {}, "entity_calls": []}


def flatten(actions: list[Any]) -> Iterator[Json]:
    """Depth-first walk of the action tree: compound actions yield their children."""
    for action in actions:
        if isinstance(action, list):
            yield from flatten(action)
        elif action.get("actionType") in (WHEN_ANY, WHEN_ALL):
            yield from flatten(action.get("compoundActions") or [])
        else:
            yield action


def action_target(action: Json) -> str:
    """The name a determinism check compares: function, entity operation, or '' for timers."""
    kind = action.get("actionType")
    if kind in (CALL_ENTITY, SIGNAL_ENTITY):
        return f"{action.get('instanceId')}:{action.get('operation')}"
    if kind == CALL_HTTP:
        request = action.get("httpRequest") or {}
        return f"{request.get('method', '')} {request.get('uri', '')}"
    return str(action.get("functionName") or "")


@dataclass
class Episode:
    """What one episode decided. ``status`` is the instance's status after it."""

    status: str
    at: float
    new_history: list[Json] = field(default_factory=list)
    output: str | None = None
    custom_status: str | None = None
    activities: list[ActivityTask] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    new_instances: list[InstanceRecord] = field(default_factory=list)
    continue_as_new_input: str | None = None
    continued_as_new: bool = False
    carry_over: list[Json] = field(default_factory=list)
    failure: str | None = None


def is_retry_event(ev: Json, engine: Json) -> bool:
    kind = ev.get("EventType")
    if kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed):
        return str(ev.get("TaskScheduledId")) in engine["retries"]
    if kind == EventType.TimerFired:
        return str(ev.get("TimerId")) in engine["retry_timers"]
    return False


def order_for_delivery(events: list[Json], engine: Json) -> tuple[list[Json], list[Json]]:
    """Split events into (deliver now, keep for a later episode).

    At most one retry-related event goes into an episode, and it goes last, so the id its hidden
    timer or re-scheduled attempt takes is the one the SDK gives it.
    """
    plain = [e for e in events if not is_retry_event(e, engine)]
    retry = [e for e in events if is_retry_event(e, engine)]
    return plain + retry[:1], retry[1:]


def played(ev: Json) -> Json:
    return {**ev, "IsPlayed": True} if not ev.get("IsPlayed") else ev


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


Invoke = Callable[..., Any]  # calls a user function: ``invoke(fn, *args)``


def invoke_orchestrator(handler: DurableHandler, record: InstanceRecord, past: list[Json],
                        new_events: list[Json], invoke: Invoke) -> tuple[Json, str | None]:
    """Call the SDK once. Returns (orchestrator state, error message if the user code raised)."""
    body = json.dumps({
        "history": [played(e) for e in past] + new_events,
        "input": record.input,
        "instanceId": record.instance_id,
        "isReplaying": bool(past),
        "parentInstanceId": (record.parent or {}).get("instance_id"),
        "upperSchemaVersion": 1,
        "upperSchemaVersionNew": 2,
        "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
    })
    try:
        result = invoke(handler.handle, func.OrchestrationContext(body))
    except Exception as exc:
        text = str(exc)
        message, marker, state = text.partition(OUT_OF_PROC_MARKER)
        if not marker:
            raise OrchestrationFailure(f"Orchestrator function '{handler.durable_name}' failed: {text}") from exc
        return json.loads(state), message.strip()
    return json.loads(result), None


class EpisodeRunner:
    """Runs episodes of one instance against the app's functions; ``invoke`` calls the SDK's handler."""

    def __init__(self, functions: FunctionIndex, invoke: Invoke = call_here,
                 default_version: str | None = None, output_limit: int | None = None) -> None:
        self.functions = functions
        self.invoke = invoke
        self.default_version = default_version  # host.json defaultVersion, for sub-orchestrations
        self.output_limit = output_limit  # bytes of an output's JSON (funchost.limits); None: no limit

    def run(self, record: InstanceRecord, past: list[Json], delivered: list[Json], now: float) -> Episode:
        """Replay ``past`` plus ``delivered`` (this episode's new events) and decide what follows.

        ``record.engine`` is updated in place; the caller persists it with the episode.
        """
        engine = record.engine
        if engine.get("rewound"):
            delivered = _settle_rewound(record, delivered)
        new_events = [h.orchestrator_started(now), *delivered]
        handler = self.functions.orchestrator(record.name)
        if handler is None:
            return self._fail(record, new_events, now,
                              f"The orchestrator function '{record.name}' doesn't exist, is disabled, "
                              "or is not an orchestrator function.")
        try:
            state, error = invoke_orchestrator(handler, record, past, new_events, self.invoke)
        except OrchestrationFailure as failure:
            return self._fail(record, new_events, now, str(failure))
        episode = Episode(status=RUNNING, at=now, new_history=list(new_events))
        custom = state.get("customStatus")
        episode.custom_status = _json_or_none(custom)
        try:
            actions = list(flatten(state.get("actions") or []))
            self._check_determinism(record, actions)
            self._materialise(record, actions, episode, now)
            self._apply_retries(record, delivered, episode, now)
        except OrchestrationFailure as failure:
            return self._fail(record, new_events, now, str(failure), custom_status=episode.custom_status)
        if error is not None:
            message = f"Orchestrator function '{handler.durable_name}' failed: {error}"
            # The Durable extension traces a failed orchestrator this way ("FunctionFailed").
            logger.warning("%s: Function '%s (Orchestrator)' failed with an error. Reason: %s", record.instance_id,
                           handler.durable_name, error)
            return self._finish(record, episode, now, FAILED, json.dumps(message), failure=message)
        if state.get("isDone"):
            can = next((a for a in actions if a.get("actionType") == CONTINUE_AS_NEW), None)
            if can is not None:
                episode.continued_as_new = True
                episode.continue_as_new_input = can.get("input")
                episode.carry_over = self._unconsumed_events(past + delivered, actions, engine)
                episode.new_history.append(h.orchestrator_completed(now))
                return episode
            output = _json_or_none(state.get("output"))
            if output is not None and self.output_limit is not None and len(output.encode()) > self.output_limit:
                # Stored, it would fail every status read and a parent's replay instead; refused, it says why.
                message = (f"Orchestrator function '{handler.durable_name}' failed: its output is "
                           f"{len(output.encode())} bytes of JSON; the limit is {self.output_limit} bytes "
                           f"({BODY_LIMIT_SETTING}).")
                return self._finish(record, episode, now, FAILED, json.dumps(message), failure=message)
            return self._finish(record, episode, now, COMPLETED, output)
        episode.new_history.append(h.orchestrator_completed(now))
        return episode

    # --- decisions ------------------------------------------------------------------------------

    def _check_determinism(self, record: InstanceRecord, actions: list[Json]) -> None:
        recorded = record.engine["actions"]
        emitted = [a for a in actions if a.get("actionType") in ID_CONSUMING]
        rewound = record.engine.get("rewound") or ()
        for position, (kind, target, task_id) in enumerate(recorded):
            if position >= len(emitted):
                break
            if task_id in rewound:
                continue  # a rewind cleared its schedule: there is nothing recorded to compare with
            action = emitted[position]
            now_kind, now_target = action.get("actionType"), action_target(action)
            if now_kind != kind or (kind != CREATE_TIMER and now_target.lower() != str(target).lower()):
                raise OrchestrationFailure(
                    f"Non-deterministic workflow detected: task id {task_id} was recorded in the history as "
                    f"{ACTION_NAMES.get(kind, kind)} '{target}', but the orchestrator code now schedules "
                    f"{ACTION_NAMES.get(int(now_kind or 0), now_kind)} '{now_target}' in its place. The orchestrator "
                    f"'{record.name}' changed while this instance was running; finish or terminate running "
                    "instances before deploying such a change, or start the new code under a new name."
                )

    def _next_id(self, engine: Json) -> int:
        task_id = int(engine["next_id"])
        engine["next_id"] = task_id + 1
        return task_id

    def _materialise(self, record: InstanceRecord, actions: list[Json], episode: Episode, now: float) -> None:
        engine = record.engine
        emitted = [a for a in actions if a.get("actionType") in ID_CONSUMING]
        if engine.get("rewound"):
            self._schedule_rewound(record, emitted, episode, now)
        for action in emitted[len(engine["actions"]):]:
            task_id = self._next_id(engine)
            engine["actions"].append([action["actionType"], action_target(action), task_id])
            self._schedule(record, task_id, action, episode, now)

    def _schedule(self, record: InstanceRecord, task_id: int, action: Json, episode: Episode, now: float) -> None:
        kind = action["actionType"]
        if kind in (CALL_ACTIVITY, CALL_ACTIVITY_RETRY):
            self._schedule_activity(record, task_id, action["functionName"], action.get("input"), episode)
            if kind == CALL_ACTIVITY_RETRY:
                self._remember_retry(record.engine, task_id, action, attempt=1)
        elif kind in (CALL_SUB, CALL_SUB_RETRY):
            self._schedule_sub(record, task_id, action, action.get("instanceId"), episode, now)
            if kind == CALL_SUB_RETRY:
                self._remember_retry(record.engine, task_id, action, attempt=1)
        elif kind == CREATE_TIMER:
            fire_at = str(action["fireAt"])
            self._schedule_timer(record, task_id, fire_at, episode)
        elif kind in (CALL_ENTITY, SIGNAL_ENTITY):
            self._send_to_entity(record, task_id, action, episode, signal=kind == SIGNAL_ENTITY)
        elif kind == CALL_HTTP:
            request = action.get("httpRequest") or {}
            episode.new_history.append(h.event(EventType.TaskScheduled, now, task_id, Name=HTTP_ACTIVITY,
                                               Input=json.dumps(request)))
            episode.activities.append(ActivityTask(record.instance_id, record.execution_id, task_id,
                                                   HTTP_ACTIVITY, json.dumps(request)))

    def _schedule_rewound(self, record: InstanceRecord, emitted: list[Json], episode: Episode, now: float) -> None:
        """Tasks a rewind cleared (see ``durable.rewind``) run again under their own ids, which the SDK gives
        them again because it numbers tasks by the order its code creates them."""
        engine = record.engine
        rewound = engine["rewound"]
        for position, (_, _, task_id) in enumerate(engine["actions"]):
            if task_id in rewound and position < len(emitted):
                action = emitted[position]
                engine["actions"][position] = [action["actionType"], action_target(action), task_id]
                rewound.remove(task_id)
                self._schedule(record, task_id, action, episode, now)
        if not rewound:
            del engine["rewound"]

    def _remember_retry(self, engine: Json, task_id: int, action: Json, attempt: int) -> None:
        options = action.get("retryOptions") or {}
        engine["retries"][str(task_id)] = {
            "action": action,
            "attempt": attempt,
            "max": int(options.get("maxNumberOfAttempts") or 1),
            "interval_ms": int(options.get("firstRetryIntervalInMilliseconds") or 0),
        }

    def _schedule_activity(self, record: InstanceRecord, task_id: int, name: str, input_text: str | None,
                           episode: Episode) -> None:
        activity = self.functions.activity(name)
        if activity is None:
            raise OrchestrationFailure(
                f"Orchestrator function '{record.name}' failed: the activity function '{name}' doesn't exist, "
                "is disabled, or is not an activity function. Registered activities: "
                f"{', '.join(sorted({a.durable_name for a in self.functions.activities.values()})) or 'none'}."
            )
        episode.new_history.append(h.event(EventType.TaskScheduled, _now_of(episode), task_id, Name=name,
                                           Input=input_text))
        episode.activities.append(ActivityTask(record.instance_id, record.execution_id, task_id, name, input_text))

    def _schedule_sub(self, record: InstanceRecord, task_id: int, action: Json, instance_id: str | None,
                      episode: Episode, now: float) -> None:
        name = str(action["functionName"])
        handler = self.functions.orchestrator(name)
        if handler is None:
            raise OrchestrationFailure(
                f"Orchestrator function '{record.name}' failed: the orchestrator function '{name}' doesn't exist, "
                "is disabled, or is not an orchestrator function."
            )
        child_id = instance_id or f"{record.execution_id}:{task_id}"
        problem = instance_id_problem(child_id)  # the HTTP API's check (durable.ids), at the call that names it
        if problem:
            raise OrchestrationFailure(f"Orchestrator function '{record.name}' failed: {problem}")
        input_text = action.get("input")
        # The SDK sends "version" only when the orchestrator gave one. Without it the child gets defaultVersion,
        # not its parent's version: a sub-orchestration is a new instance (the extension's versioning docs,
        # "new orchestrations and sub-orchestrations ... get the version from defaultVersion";
        # durabletask-dotnet TaskOrchestrationContextWrapper does the same).
        version = action.get("version")
        if not isinstance(version, str):
            version = self.default_version
        episode.new_history.append(h.event(EventType.SubOrchestrationInstanceCreated, now, task_id, Name=name,
                                           InstanceId=child_id, Input=input_text, Version=version))
        parent = {"instance_id": record.instance_id, "execution_id": record.execution_id, "task_id": task_id,
                  "name": record.name}
        child, start = new_instance(handler.durable_name, child_id, input_text, now, parent=parent, version=version)
        episode.new_instances.append(child)
        episode.messages.append(start)

    def _schedule_timer(self, record: InstanceRecord, task_id: int, fire_at: str, episode: Episode) -> None:
        at = h.parse_time(fire_at)
        now = _now_of(episode)
        episode.new_history.append(h.event(EventType.TimerCreated, now, task_id, FireAt=fire_at))
        fired = h.timer_fired(at, task_id, fire_at)
        episode.messages.append(Message(record.instance_id, fired, record.execution_id, visible_at=at))

    def _send_to_entity(self, record: InstanceRecord, task_id: int, action: Json, episode: Episode,
                        *, signal: bool) -> None:
        entity_id = str(action["instanceId"])
        name = entity_id.split("@")[1] if entity_id.count("@") >= 2 else entity_id
        # The same check as the HTTP API's (durable.ids): an id the task hub cannot hold fails this call
        # here, where it is made, instead of a message no store can deliver.
        problem = entity_id_problem(*split_entity_id(entity_id)) if entity_id.count("@") >= 2 else \
            f"Entity id {entity_id!r} is not of the form @name@key."
        if problem:
            raise OrchestrationFailure(f"Orchestrator function '{record.name}' failed: {problem}")
        if self.functions.entity(name) is None:
            raise OrchestrationFailure(
                f"Orchestrator function '{record.name}' failed: the entity function '{name}' doesn't exist, "
                "is disabled, or is not an entity function."
            )
        request: Json = {"op": action.get("operation"), "input": action.get("input"),
                         "id": entity_request_id(record, task_id),
                         "parent": record.instance_id, "parentExecution": record.execution_id}
        if signal:
            request["signal"] = True
        else:
            record.engine["entity_calls"].append(request["id"])
        episode.new_history.append(h.event(EventType.EventSent, _now_of(episode), task_id, InstanceId=entity_id,
                                           Name="op", Input=json.dumps(request)))
        episode.messages.append(Message(entity_id, {"EntityRequest": request}))

    def _apply_retries(self, record: InstanceRecord, delivered: list[Json], episode: Episode, now: float) -> None:
        """The host half of ``*_with_retry``: a failure starts a retry timer; its firing re-schedules."""
        engine = record.engine
        for ev in delivered:
            if not is_retry_event(ev, engine):
                continue
            if ev["EventType"] == EventType.TimerFired:
                failed_id = engine["retry_timers"].pop(str(ev["TimerId"]))
                retry = engine["retries"].pop(failed_id)
                if retry["attempt"] >= retry["max"]:
                    continue  # the SDK surfaces the last error now
                task_id = self._next_id(engine)
                action = retry["action"]
                if action["actionType"] == CALL_ACTIVITY_RETRY:
                    self._schedule_activity(record, task_id, action["functionName"], action.get("input"), episode)
                else:
                    self._schedule_sub(record, task_id, action, action.get("instanceId"), episode, now)
                engine["retries"][str(task_id)] = {**retry, "attempt": retry["attempt"] + 1}
                _note_retry(engine, task_id, failed_id)
            else:
                timer_id = self._next_id(engine)
                retry = engine["retries"][str(ev["TaskScheduledId"])]
                fire_at = h.format_time(now + retry["interval_ms"] / 1000.0)
                engine["retry_timers"][str(timer_id)] = str(ev["TaskScheduledId"])
                _note_retry(engine, timer_id, ev["TaskScheduledId"])
                self._schedule_timer(record, timer_id, fire_at, episode)

    def _unconsumed_events(self, events: list[Json], actions: list[Json], engine: Json) -> list[Json]:
        """External events this execution received but never waited for: they go to the next one."""
        waits = Counter(str(a.get("externalEventName", "")).lower() for a in actions
                        if a.get("actionType") == WAIT_FOR_EVENT)
        entity_replies = set(engine["entity_calls"])
        carried: list[Json] = []
        for ev in events:
            if ev.get("EventType") != EventType.EventRaised or ev.get("Name") in entity_replies:
                continue
            key = str(ev.get("Name", "")).lower()
            if waits[key] > 0:
                waits[key] -= 1
            else:
                carried.append(h.event_raised(h.parse_time(ev["Timestamp"]), ev["Name"], ev.get("Input")))
        return carried

    # --- endings ---------------------------------------------------------------------------------

    def _finish(self, record: InstanceRecord, episode: Episode, now: float, status: str, output: str | None,
                failure: str | None = None) -> Episode:
        code = OrchestrationStatusCode.Completed if status == COMPLETED else OrchestrationStatusCode.Failed
        episode.status = status
        episode.output = output
        episode.failure = failure
        episode.new_history.append(h.execution_completed(now, code, output))
        episode.new_history.append(h.orchestrator_completed(now))
        return episode

    def _fail(self, record: InstanceRecord, new_events: list[Json], now: float, message: str,
              custom_status: str | None = None) -> Episode:
        logger.warning("instance %s failed: %s", record.instance_id, message)
        episode = Episode(status=FAILED, at=now, new_history=list(new_events), custom_status=custom_status)
        return self._finish(record, episode, now, FAILED, json.dumps(message), failure=message)


def _note_retry(engine: Json, task_id: int, of_task: Any) -> None:
    """Remember which task a hidden retry id (a retry timer or a new attempt) serves: ``retry_of`` maps it to
    the id of the task's first attempt. A rewind needs it to tell one task's retries from another's."""
    chains = engine.setdefault("retry_of", {})
    chains[str(task_id)] = chains.get(str(of_task), str(of_task))


def _settle_rewound(record: InstanceRecord, delivered: list[Json]) -> list[Json]:
    """The events to deliver, given the tasks a rewind cleared that have not been scheduled again yet.

    A late result of one (it ran before the rewind, its answer came after) is kept: the task needs no second
    run. A late failure is dropped: it can only be the failure the rewind was asked to undo.
    """
    engine = record.engine
    rewound = engine["rewound"]
    kept: list[Json] = []
    for ev in delivered:
        kind = ev.get("EventType")
        answered = ev.get("TimerId") if kind == EventType.TimerFired else ev.get("TaskScheduledId")
        if answered in rewound and kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed):
            logger.info("instance %s: dropping a failure of task %s from before its rewind", record.instance_id,
                        answered)
            continue
        if answered in rewound and kind in (EventType.TimerFired, EventType.TaskCompleted,
                                            EventType.SubOrchestrationInstanceCompleted):
            rewound.remove(answered)
        kept.append(ev)
    if not rewound:
        del engine["rewound"]
    return kept


def _now_of(episode: Episode) -> float:
    """The episode's time (its OrchestratorStarted's), so all the events it writes agree."""
    return episode.at


def entity_request_id(record: InstanceRecord, task_id: int) -> str:
    """The id of an orchestration's entity operation: the same in every replay of the step that sends it.

    A step can be run twice (its messages were sent, then the host died before its history was saved);
    the entity then receives the operation twice, and drops the second copy by this id instead of
    applying it again.
    """
    return str(uuid.uuid5(ENTITY_REQUEST_NAMESPACE, f"{record.instance_id}\n{record.execution_id}\n{task_id}"))


def new_instance(name: str, instance_id: str, input_text: str | None, now: float,
                 parent: Json | None = None, version: str | None = None) -> tuple[InstanceRecord, Message]:
    """A Pending instance and the ExecutionStarted message that will start it, carrying ``version``."""
    execution_id = uuid.uuid4().hex
    record = InstanceRecord(instance_id=instance_id, name=name, execution_id=execution_id, status="Pending",
                            input=input_text, created_time=now, last_updated_time=now, parent=parent,
                            engine=new_engine_state())
    started = h.execution_started(now, name=name, instance_id=instance_id, execution_id=execution_id,
                                  input_text=input_text, parent=parent, version=version)
    return record, Message(instance_id, started, execution_id)
