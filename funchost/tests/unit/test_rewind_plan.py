"""``durable.rewind`` on histories made by the real SDK, replayed through ``EpisodeRunner`` after the rewind.

The integration tests (tests/integration/test_rewind.py) cover the shapes an app meets most; these pin the
bookkeeping underneath, where only the ids tell right from wrong: retried tasks of one fan-out whose retries
interleave, sub-orchestrations that completed or were terminated since the parent failed, the refusals, and
a late failure of a task that is about to run again.
"""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from funchost.app_loader import index_functions
from funchost.durable import history as h
from funchost.durable.history import EventType
from funchost.durable.replay import Episode, EpisodeRunner, new_instance
from funchost.durable.rewind import Rewind, RewindConflictError, RewindStep
from funchost.stores.base import COMPLETED, FAILED, RUNNING, TERMINATED, InstanceRecord, Json
from tests.unit.episodes import T0, SteppedInstance

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
RETRY = df.RetryOptions(1000, 2)


@app.orchestration_trigger(context_name="context")
def retried_pair(context: df.DurableOrchestrationContext) -> Any:
    results = yield context.task_all([context.call_activity_with_retry("echo", RETRY, "a"),
                                      context.call_activity_with_retry("echo", RETRY, "b")])
    return results


@app.orchestration_trigger(context_name="context")
def two_steps(context: df.DurableOrchestrationContext) -> Any:
    first = yield context.call_activity("echo", 1)
    second = yield context.call_activity("echo", 2)
    return [first, second]


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext) -> Any:
    result = yield context.call_sub_orchestrator("two_steps", None, "child-1")
    return result


@app.activity_trigger(input_name="value")
def echo(value: Any) -> Any:
    return value


RUNNER = EpisodeRunner(index_functions(app))


class Instance(SteppedInstance):
    """An instance of this module's app, stepped one episode at a time as the engine would, and rewound."""

    def __init__(self, name: str) -> None:
        super().__init__(RUNNER, name)

    def rewind(self, children: dict[int, InstanceRecord | None] | None = None, *, now: float | None = None,
               in_flight: int = 0) -> RewindStep:
        step = Rewind(self.record, self.history).plan(children or {}, "why", self.now if now is None else now,
                                                      in_flight)
        self.record, self.history = step.record, step.history
        self.pending = [m.event for m in step.messages]
        return step


def scheduled(episode: Episode) -> list[tuple[str, int]]:
    kinds = {EventType.TaskScheduled, EventType.TimerCreated, EventType.SubOrchestrationInstanceCreated}
    return [(EventType(e["EventType"]).name, e["EventId"]) for e in episode.new_history if e["EventType"] in kinds]


def failed(task_id: int) -> Json:
    return h.task_failed(T0, task_id, f"task {task_id} failed", None)


def done(task_id: int, value: Any) -> Json:
    return h.task_completed(T0, task_id, json.dumps(value))


def fired(episode: Episode, timer_id: int) -> Json:
    created = next(e for e in episode.new_history if e.get("EventId") == timer_id)
    return h.timer_fired(T0, timer_id, created["FireAt"])


def fail_retried_pair() -> Instance:
    """a (id 0) fails twice; b (id 1) fails once, then succeeds: the retries' ids interleave."""
    inst = Instance("retried_pair")
    assert scheduled(inst.step()) == [("TaskScheduled", 0), ("TaskScheduled", 1)]
    b_timer = inst.step(failed(1))
    a_timer = inst.step(failed(0))
    assert scheduled(b_timer) == [("TimerCreated", 2)] and scheduled(a_timer) == [("TimerCreated", 3)]
    assert scheduled(inst.step(fired(b_timer, 2))) == [("TaskScheduled", 4)]
    assert scheduled(inst.step(fired(a_timer, 3))) == [("TaskScheduled", 5)]
    inst.step(done(4, "b"))
    last = inst.step(failed(5))
    assert inst.step(fired(last, 6)).status == FAILED
    return inst


def test_retried_tasks_whose_retries_interleave_both_start_over_under_their_first_ids() -> None:
    inst = fail_retried_pair()
    assert Rewind(inst.record, inst.history).cut == 2  # moved down from a's first retry (3) to b's (2)

    inst.rewind()

    episode = inst.step()
    assert episode.status == RUNNING
    assert scheduled(episode) == [("TaskScheduled", 0), ("TaskScheduled", 1)]
    # The SDK numbers the next retry timer 2 again, and so does the host.
    retry = inst.step(failed(0))
    assert scheduled(retry) == [("TimerCreated", 2)]
    inst.step(done(1, "b"))
    assert scheduled(inst.step(fired(retry, 2))) == [("TaskScheduled", 3)]
    episode = inst.step(done(3, "a"))
    assert (episode.status, json.loads(episode.output or "null")) == (COMPLETED, ["a", "b"])


def test_a_cut_is_refused_while_answers_from_before_may_still_arrive() -> None:
    inst = Instance("retried_pair")
    inst.step()
    b_timer = inst.step(failed(1))  # b waits for its retry timer (id 2), due a second after this step
    a_timer = inst.step(failed(0))
    inst.step(fired(a_timer, 3))
    last = inst.step(failed(4))
    assert inst.step(fired(last, 5)).status == FAILED

    with pytest.raises(RewindConflictError, match="timer from before it failed"):
        Rewind(inst.record, inst.history).plan({}, "why", h.parse_time(b_timer.new_history[-2]["FireAt"]) - 1, 0)
    with pytest.raises(RewindConflictError, match="1 activities queued or running"):
        Rewind(inst.record, inst.history).plan({}, "why", inst.now + 60, 1)


def test_a_late_failure_of_a_task_about_to_run_again_is_dropped() -> None:
    inst = Instance("two_steps")
    inst.step()
    inst.step(done(0, 1))
    assert inst.step(failed(1)).status == FAILED
    step = inst.rewind()
    assert [m.event["EventType"] for m in step.messages] == [EventType.GenericEvent]

    episode = inst.step(failed(1))  # the failure the rewind undoes, arriving once more

    assert episode.status == RUNNING and scheduled(episode) == [("TaskScheduled", 1)]
    assert EventType.TaskFailed not in [e["EventType"] for e in episode.new_history]
    episode = inst.step(done(1, 2))
    assert (episode.status, json.loads(episode.output or "null")) == (COMPLETED, [1, 2])


def failed_parent() -> tuple[Instance, InstanceRecord]:
    inst = Instance("parent")
    assert scheduled(inst.step()) == [("SubOrchestrationInstanceCreated", 0)]
    child, _ = new_instance("two_steps", "child-1", None, T0, parent={
        "instance_id": "i1", "execution_id": inst.record.execution_id, "task_id": 0, "name": "parent"})
    failure = h.event(EventType.SubOrchestrationInstanceFailed, T0, TaskScheduledId=0, Reason="child failed",
                      Details=None)
    assert inst.step(failure).status == FAILED
    return inst, child


def test_a_failed_child_is_rewound_first_and_the_parent_waits_for_its_answer() -> None:
    inst, child = failed_parent()
    child.status = FAILED
    assert Rewind(inst.record, inst.history).sub_orchestrations() == {0: "child-1"}

    step = inst.rewind({0: child})

    assert step.children == ["child-1"] and step.messages == []  # not the deepest failed instance
    created = next(e for e in step.history if e["EventType"] == EventType.SubOrchestrationInstanceCreated)
    assert created["Reason"] == "Rewound: SubOrchestrationInstanceCreated"
    answer = h.event(EventType.SubOrchestrationInstanceCompleted, T0, TaskScheduledId=0, Result='"ok"')
    episode = inst.step(answer)
    assert (episode.status, episode.output) == (COMPLETED, '"ok"')


def test_a_child_that_completed_since_has_its_answer_sent_again() -> None:
    inst, child = failed_parent()
    child.status, child.output = COMPLETED, '"late"'

    step = inst.rewind({0: child})

    assert step.children == []
    assert [m.event["EventType"] for m in step.messages] == [EventType.SubOrchestrationInstanceCompleted,
                                                             EventType.GenericEvent]
    episode = inst.step()
    assert (episode.status, episode.output) == (COMPLETED, '"late"')


def test_a_terminated_child_keeps_its_failure() -> None:
    inst, child = failed_parent()
    child.status = TERMINATED

    step = inst.rewind({0: child})

    kept = [e for e in step.history if e["EventType"] == EventType.SubOrchestrationInstanceFailed]
    assert step.children == [] and len(kept) == 1
    episode = inst.step()
    assert episode.status == FAILED and "child failed" in json.loads(episode.output or "null")
