"""Status and history bodies of the durable HTTP API (protocol spec section 5)."""

from __future__ import annotations

import json
from typing import Any

from funchost.durable.history import EventType, format_api_time
from funchost.stores.base import InstanceRecord, Json

_HIDDEN = {EventType.OrchestratorStarted, EventType.OrchestratorCompleted, EventType.TaskScheduled,
           EventType.SubOrchestrationInstanceCreated}
_COMPLETIONS = {EventType.TaskCompleted, EventType.TaskFailed, EventType.SubOrchestrationInstanceCompleted,
                EventType.SubOrchestrationInstanceFailed}
_SCHEDULES = {EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated}


def parse_json_text(text: str | None) -> Any:
    """Values are stored as JSON text; a client sees the value (or the raw text if it is not JSON)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def instance_status(record: InstanceRecord, *, show_input: bool = True,
                    history: list[Json] | None = None, show_history_output: bool = False) -> Json:
    body: Json = {
        "name": record.name,
        "instanceId": record.instance_id,
        "runtimeStatus": record.status,
        "input": parse_json_text(record.input) if show_input else None,
        "customStatus": parse_json_text(record.custom_status),
        "output": parse_json_text(record.output),
        "createdTime": format_api_time(record.created_time),
        "lastUpdatedTime": format_api_time(record.last_updated_time),
    }
    if history is not None:
        body["historyEvents"] = render_history(history, show_input=show_input, show_output=show_history_output)
    return body


def render_history(history: list[Json], *, show_input: bool, show_output: bool) -> list[Json]:
    """The public shape: event names, no bookkeeping rows, completions joined to their schedule."""
    scheduled = {ev["EventId"]: ev for ev in history if ev.get("EventType") in _SCHEDULES}
    rendered = []
    for ev in history:
        kind = EventType(ev["EventType"])
        if kind in _HIDDEN:
            continue
        row: Json = {"EventType": kind.name, "Timestamp": ev.get("Timestamp")}
        if kind == EventType.ExecutionStarted:
            row["FunctionName"] = ev.get("Name")
            row["ScheduledStartTime"] = ev.get("Timestamp")
            if show_input:
                row["Input"] = parse_json_text(ev.get("Input"))
        elif kind in _COMPLETIONS:
            source = scheduled.get(ev.get("TaskScheduledId"), {})
            row["ScheduledTime"] = source.get("Timestamp")
            row["FunctionName"] = source.get("Name")
            if show_input:
                row["Input"] = parse_json_text(source.get("Input"))
            if kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed):
                row["Reason"] = ev.get("Reason")
                row["Details"] = ev.get("Details")
            elif show_output:
                row["Result"] = parse_json_text(ev.get("Result"))
        elif kind == EventType.ExecutionCompleted:
            row["OrchestrationStatus"] = _status_name(ev.get("OrchestrationStatus"))
            if ev.get("FailureDetails") is not None:
                row["FailureDetails"] = ev["FailureDetails"]  # kept by the extension's history rendering
            if show_output:
                row["Result"] = parse_json_text(ev.get("Result"))
        elif kind in (EventType.TimerCreated, EventType.TimerFired):
            row["FireAt"] = ev.get("FireAt")
            if kind == EventType.TimerFired:
                row["TimerId"] = ev.get("TimerId")
        elif kind == EventType.EventRaised:
            row["Name"] = ev.get("Name")
            if show_input:
                row["Input"] = parse_json_text(ev.get("Input"))
        elif kind == EventType.EventSent:
            row["Name"] = ev.get("Name")
            row["InstanceId"] = ev.get("InstanceId")
            if show_input:
                row["Input"] = parse_json_text(ev.get("Input"))
        elif kind == EventType.ExecutionTerminated:
            row["Input"] = parse_json_text(ev.get("Input"))
        elif kind in (EventType.ExecutionSuspended, EventType.ExecutionResumed):
            row["Reason"] = ev.get("Reason")
        elif kind == EventType.GenericEvent:
            # A rewind's own event carries its reason in Data; the rows it cleared say what they were.
            row["Data"] = ev.get("Data")
            if ev.get("Reason") is not None:
                row["Reason"] = ev.get("Reason")
        rendered.append(row)
    return rendered


def _status_name(code: Any) -> str:
    names = ["Running", "Completed", "ContinuedAsNew", "Failed", "Canceled", "Terminated", "Pending", "Suspended"]
    return names[code] if isinstance(code, int) and 0 <= code < len(names) else str(code)
