"""History events in the shape the Durable extension hands to the Python SDK (protocol spec 2b).

Events are plain dicts, PascalCase, ``EventType`` an int, timestamps timezone-aware with seven
fraction digits as .NET writes them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import IntEnum
from typing import Any

Json = dict[str, Any]


class EventType(IntEnum):
    ExecutionStarted = 0
    ExecutionCompleted = 1
    ExecutionFailed = 2
    ExecutionTerminated = 3
    TaskScheduled = 4
    TaskCompleted = 5
    TaskFailed = 6
    SubOrchestrationInstanceCreated = 7
    SubOrchestrationInstanceCompleted = 8
    SubOrchestrationInstanceFailed = 9
    TimerCreated = 10
    TimerFired = 11
    OrchestratorStarted = 12
    OrchestratorCompleted = 13
    EventSent = 14
    EventRaised = 15
    ContinueAsNew = 16
    GenericEvent = 17
    HistoryState = 18
    # The protocol page lists 18/19; DurableTask.Core and the SDK's enum use 19/20.
    ExecutionSuspended = 19
    ExecutionResumed = 20


class OrchestrationStatusCode(IntEnum):
    """``ExecutionCompleted.OrchestrationStatus`` values."""

    Running = 0
    Completed = 1
    ContinuedAsNew = 2
    Failed = 3
    Canceled = 4
    Terminated = 5
    Pending = 6
    Suspended = 7


def format_time(epoch: float) -> str:
    """``2024-05-01T10:00:00.1234567Z``: what the SDK parses into an aware datetime."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def format_api_time(epoch: float) -> str:
    """Times in status responses: ISO 8601 in UTC."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> float:
    """Parse a timestamp the SDK wrote (``fireAt``) or a client sent; naive times are UTC."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # .NET writes seven fraction digits; Python accepts at most six.
    if "." in value:
        head, _, tail = value.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        rest = tail[len(digits):]
        value = f"{head}.{digits[:6]}{rest}"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def event(kind: EventType, at: float, event_id: int = -1, **fields: Any) -> Json:
    return {"EventType": int(kind), "EventId": event_id, "IsPlayed": False, "Timestamp": format_time(at), **fields}


def orchestrator_started(at: float) -> Json:
    return event(EventType.OrchestratorStarted, at)


def orchestrator_completed(at: float) -> Json:
    return event(EventType.OrchestratorCompleted, at)


def execution_started(at: float, *, name: str, instance_id: str, execution_id: str, input_text: str | None,
                      parent: Json | None, version: str | None = None) -> Json:
    """The event that starts an execution. ``Version`` is always present (the SDK reads it for
    ``context.version``); null when the instance has no version, as the extension writes it then."""
    parent_instance = None
    if parent:
        parent_instance = {"Name": parent.get("name"), "TaskScheduleId": parent.get("task_id"),
                           "OrchestrationInstance": {"InstanceId": parent["instance_id"],
                                                     "ExecutionId": parent.get("execution_id")}}
    return event(EventType.ExecutionStarted, at, Name=name, Version=version, Input=input_text,
                 OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
                 ParentInstance=parent_instance, Tags=None)


def execution_completed(at: float, status: OrchestrationStatusCode, result: str | None) -> Json:
    return event(EventType.ExecutionCompleted, at, OrchestrationStatus=int(status), Result=result)


def task_completed(at: float, task_id: int, result: str | None) -> Json:
    return event(EventType.TaskCompleted, at, TaskScheduledId=task_id, Result=result)


def task_failed(at: float, task_id: int, reason: str, details: str | None) -> Json:
    return event(EventType.TaskFailed, at, TaskScheduledId=task_id, Reason=reason, Details=details)


def timer_fired(at: float, timer_id: int, fire_at: str) -> Json:
    return event(EventType.TimerFired, at, TimerId=timer_id, FireAt=fire_at)


def event_raised(at: float, name: str, input_text: str | None) -> Json:
    return event(EventType.EventRaised, at, Name=name, Input=input_text)


def is_event(ev: Json, kind: EventType) -> bool:
    return bool(ev.get("EventType") == int(kind))
