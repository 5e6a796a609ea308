"""Episodes through the real SDK: task ids, host-side retries, failures and determinism checks.

These drive ``EpisodeRunner`` directly with the events the engine would deliver, so each id the
host hands out can be compared with the sequence the protocol spec (section 2c) pins.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from funchost.app_loader import index_functions
from funchost.durable import history as h
from funchost.durable.history import EventType
from funchost.durable.replay import Episode, EpisodeRunner, new_instance
from funchost.stores.base import COMPLETED, FAILED, InstanceRecord, Json
from tests.unit.episodes import T0, SteppedInstance

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def retrying(context: df.DurableOrchestrationContext) -> Any:
    try:
        result = yield context.call_activity_with_retry("flaky", df.RetryOptions(1000, 2), "x")
    except Exception as err:
        return "gave up: " + str(err).split(" \n")[0]
    return result


@app.orchestration_trigger(context_name="context")
def mixed(context: df.DurableOrchestrationContext) -> Any:
    first = yield context.task_all([context.call_activity("flaky", 1), context.call_activity("flaky", 2)])
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=5))
    context.signal_entity(df.EntityId("Counter", "k"), "add", 1)
    child = yield context.call_sub_orchestrator("retrying", None)
    return [first, child]


@app.orchestration_trigger(context_name="context")
def calls_missing(context: df.DurableOrchestrationContext) -> Any:
    yield context.call_activity("no_such_activity", None)


@app.orchestration_trigger(context_name="context")
def raises(context: df.DurableOrchestrationContext) -> Any:
    yield context.call_activity("flaky", 1)
    raise ValueError("bad things")


@app.activity_trigger(input_name="value")
def flaky(value: object) -> object:  # not Any: the worker refuses typing.Any as a binding annotation on 3.10
    return value


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context: df.DurableEntityContext) -> None:
    context.set_state(context.get_state(lambda: 0) + 1)


RUNNER = EpisodeRunner(index_functions(app))


class Instance(SteppedInstance):
    """An instance of this module's app, stepped one episode at a time."""

    def __init__(self, name: str) -> None:
        super().__init__(RUNNER, name)

    def scheduled(self, episode: Episode) -> list[tuple[str, int, str | None]]:
        kinds = {EventType.TaskScheduled, EventType.TimerCreated, EventType.SubOrchestrationInstanceCreated,
                 EventType.EventSent}
        return [(EventType(e["EventType"]).name, e["EventId"], e.get("Name")) for e in episode.new_history
                if e["EventType"] in kinds]


def failed(task_id: int, reason: str) -> Json:
    return h.task_failed(T0, task_id, reason, None)


def fired(episode: Episode, timer_id: int) -> Json:
    created = next(e for e in episode.new_history if e.get("EventId") == timer_id)
    return h.timer_fired(T0, timer_id, created["FireAt"])


def test_retry_exhaustion_follows_the_id_sequence_of_the_spec() -> None:
    inst = Instance("retrying")
    ep = inst.step()
    assert inst.scheduled(ep) == [("TaskScheduled", 0, "flaky")]
    ep = inst.step(failed(0, "fail#1"))
    assert inst.scheduled(ep) == [("TimerCreated", 1, None)]
    ep = inst.step(fired(ep, 1))
    assert inst.scheduled(ep) == [("TaskScheduled", 2, "flaky")]
    ep = inst.step(failed(2, "fail#2"))
    assert inst.scheduled(ep) == [("TimerCreated", 3, None)]
    ep = inst.step(fired(ep, 3))
    assert ep.status == COMPLETED
    assert json.loads(ep.output or "null") == "gave up: fail#2"


def test_retry_timer_waits_the_first_retry_interval() -> None:
    inst = Instance("retrying")
    inst.step()
    ep = inst.step(failed(0, "boom"))
    timer = next(m for m in ep.messages if m.event["EventType"] == EventType.TimerFired)
    assert timer.visible_at == pytest.approx(inst.now + 1.0, abs=1e-3)


def test_retry_success_after_a_failure() -> None:
    inst = Instance("retrying")
    inst.step()
    ep = inst.step(failed(0, "once"))
    ep = inst.step(fired(ep, 1))
    ep = inst.step(h.task_completed(T0, 2, '"ok"'))
    assert (ep.status, ep.output) == (COMPLETED, '"ok"')


def test_ids_across_fan_out_timer_signal_and_sub_orchestration() -> None:
    inst = Instance("mixed")
    ep = inst.step()
    assert inst.scheduled(ep) == [("TaskScheduled", 0, "flaky"), ("TaskScheduled", 1, "flaky")]
    ep = inst.step(h.task_completed(T0, 1, "2"), h.task_completed(T0, 0, "1"))
    assert inst.scheduled(ep) == [("TimerCreated", 2, None)]
    ep = inst.step(fired(ep, 2))
    assert inst.scheduled(ep) == [("EventSent", 3, "op"), ("SubOrchestrationInstanceCreated", 4, "retrying")]
    child = ep.new_instances[0]
    assert child.instance_id == f"{inst.record.execution_id}:4"
    assert child.parent == {"instance_id": "i1", "execution_id": inst.record.execution_id, "task_id": 4,
                            "name": "mixed"}
    ep = inst.step(h.event(EventType.SubOrchestrationInstanceCompleted, T0, TaskScheduledId=4, Result='"c"'))
    assert ep.status == COMPLETED
    assert json.loads(ep.output or "null") == [[1, 2], "c"]


def test_a_replayed_step_sends_its_entity_operation_under_the_same_id() -> None:
    # A step run again after a crash (its messages sent, its history not saved) must not look like a
    # second operation to the entity: the request id depends on the instance, execution and task id only.
    runs = []
    for _ in range(2):
        inst = Instance("mixed")
        inst.record.execution_id = "e1"
        inst.step()
        ep = inst.step(h.task_completed(T0, 1, "2"), h.task_completed(T0, 0, "1"))
        ep = inst.step(fired(ep, 2))
        (signal,) = [m for m in ep.messages if "EntityRequest" in m.event]
        runs.append(signal.event["EntityRequest"])
    assert runs[0]["id"] == runs[1]["id"]
    assert (runs[0]["op"], runs[0].get("signal")) == ("add", True)
    other = Instance("mixed")
    other.record.execution_id = "e2"  # a later execution of the same id (continue-as-new, restart)
    other.step()
    ep = other.step(h.task_completed(T0, 1, "2"), h.task_completed(T0, 0, "1"))
    ep = other.step(fired(ep, 2))
    (signal,) = [m for m in ep.messages if "EntityRequest" in m.event]
    assert signal.event["EntityRequest"]["id"] != runs[0]["id"]


def test_unknown_activity_fails_the_instance_naming_it() -> None:
    ep = Instance("calls_missing").step()
    assert ep.status == FAILED
    assert "no_such_activity" in json.loads(ep.output or "null")
    assert not ep.activities


def test_orchestrator_exception_is_worded_like_the_host() -> None:
    inst = Instance("raises")
    inst.step()
    ep = inst.step(h.task_completed(T0, 0, "1"))
    assert ep.status == FAILED
    assert json.loads(ep.output or "null") == "Orchestrator function 'raises' failed: bad things"


def test_changed_code_is_a_non_determinism_failure_naming_both_functions() -> None:
    inst = Instance("retrying")
    inst.step()
    # Pretend the recorded history scheduled another activity at task 0.
    inst.record.engine["actions"][0][1] = "send_invoice"
    ep = inst.step(h.task_completed(T0, 0, '"ok"'))
    message = json.loads(ep.output or "null")
    assert ep.status == FAILED
    assert "Non-deterministic" in message
    assert "task id 0" in message and "send_invoice" in message and "flaky" in message


def test_record_of_a_new_instance_is_pending_with_its_start_message() -> None:
    record, start = new_instance("mixed", "abc", '{"a": 1}', T0)
    assert isinstance(record, InstanceRecord)
    assert record.status == "Pending"
    assert start.event["EventType"] == EventType.ExecutionStarted
    assert start.event["Input"] == '{"a": 1}'
    assert start.execution_id == record.execution_id
