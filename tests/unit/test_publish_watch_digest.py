"""The publish, watch and digest orchestrations, driven by a small simulated Durable context.

`SimContext` implements what the three orchestrators ask of the SDK's context (timers, external events,
`task_any`, activities with retry, sub-orchestrations, entity signals, continue-as-new, custom status)
and `simulate` runs an orchestrator generator to its end: at each wait, the earliest of the scripted
external events and the pending timers happens, and the clock moves to it. Activities and child runs
answer through handlers the test gives, so each test reads as a timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from azure.durable_functions.models.Task import TaskState

import shared_names as names
from agents.knowledge import knowledge_from_env
from orchestrators.digest_workflow import (
    DigestRequest,
    new_documents,
    run_digest,
    summary_request,
    whole_sentences,
)
from orchestrators.publish_workflow import Decision, PublishOutcome, PublishRequest, Refusal, judge, run_publish
from orchestrators.watch_workflow import WatchRequest, first_match, next_check, run_watch
from starters._http import BadRequestError
from starters.workflow_controls_api import parse_decision, parse_digest, parse_publish, parse_watch

START = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)


@dataclass(eq=False)
class SimTask:
    kind: str  # timer | event | activity | sub | any
    name: str = ""
    input: Any = None
    fire_at: datetime | None = None
    children: list[SimTask] = field(default_factory=list)
    is_completed: bool = False
    cancelled: bool = False
    result: Any = None
    state: TaskState = TaskState.RUNNING

    def cancel(self) -> None:
        assert not self.is_completed, "the SDK refuses to cancel a finished task"
        self.cancelled = True

    def complete(self, result: Any, *, failed: bool = False) -> None:
        self.is_completed, self.result = True, result
        self.state = TaskState.FAILED if failed else TaskState.SUCCEEDED


@dataclass
class Ended(Exception):
    """The generator returned or continued as new."""

    output: Any = None
    continued_with: Any = None


class SimContext:
    """The orchestration context as the three workflows use it, with a clock the simulation moves."""

    def __init__(self, input_: Any, *, instance_id: str = "wf-1", now: datetime = START) -> None:
        self.input = input_
        self.instance_id = instance_id
        self.is_replaying = False
        self.current_utc_datetime = now
        self.statuses: list[dict[str, Any]] = []
        self.activities: list[tuple[str, Any]] = []
        self.children: list[tuple[str, Any, str]] = []
        self.signals: list[tuple[str, str, str, Any]] = []
        self.continued_with: Any = None
        self.waiting_events: list[SimTask] = []

    def get_input(self, expected_type: type | None = None) -> Any:
        return self.input

    def set_custom_status(self, status: Any) -> None:
        self.statuses.append(status)

    def create_timer(self, fire_at: datetime) -> SimTask:
        return SimTask("timer", fire_at=fire_at)

    def wait_for_external_event(self, name: str) -> SimTask:
        task = SimTask("event", name)
        self.waiting_events.append(task)
        return task

    def task_any(self, tasks: list[SimTask]) -> SimTask:
        return SimTask("any", children=list(tasks))

    def call_activity(self, name: str, input_: Any = None) -> SimTask:
        self.activities.append((name, input_))
        return SimTask("activity", name, input_)

    def call_activity_with_retry(self, name: str, retry: Any, input_: Any = None) -> SimTask:
        return self.call_activity(name, input_)

    def call_sub_orchestrator(self, name: str, input_: Any = None, instance_id: str | None = None) -> SimTask:
        assert instance_id is not None
        self.children.append((name, input_, instance_id))
        return SimTask("sub", instance_id, input_)

    def signal_entity(self, entity_id: Any, operation: str, input_: Any = None) -> None:
        self.signals.append((entity_id.name, entity_id.key, operation, input_))

    def continue_as_new(self, input_: Any) -> None:
        self.continued_with = input_


Activity = Callable[[str, Any], Any]
Child = Callable[[str, Any], tuple[Any, bool]]


def simulate(
    ctx: SimContext,
    orchestrator: Callable[[Any], Generator[Any, Any, Any]],
    *,
    events: list[tuple[float, str, Any]] = (),  # type: ignore[assignment]
    activity: Activity | None = None,
    child: Child | None = None,
    max_steps: int = 500,
) -> Ended:
    """Run `orchestrator` to its end; `events` are (seconds after start, name, data), raised at those times."""
    pending = sorted(events, key=lambda e: e[0])
    start = ctx.current_utc_datetime
    gen = orchestrator(ctx)
    sent: Any = None
    for _ in range(max_steps):
        try:
            task = gen.send(sent)
        except StopIteration as stop:
            return Ended(output=stop.value, continued_with=ctx.continued_with)
        if task.kind == "activity":
            assert activity is not None, f"unexpected activity {task.name}"
            task.complete(activity(task.name, task.input))
            sent = task.result
        elif task.kind == "any":
            sent = _first_to_finish(ctx, task.children, pending, start, activity, child)
        elif task.kind in ("timer", "event"):  # a task yielded alone gives its result
            sent = _first_to_finish(ctx, [task], pending, start, activity, child).result
        else:
            raise AssertionError(f"the orchestrator yielded a bare {task.kind} task")
    raise AssertionError("the orchestration did not end")


def _first_to_finish(
    ctx: SimContext,
    tasks: list[SimTask],
    pending: list[tuple[float, str, Any]],
    start: datetime,
    activity: Activity | None,
    child: Child | None,
) -> SimTask:
    for task in tasks:  # work that answers at once
        if task.is_completed:
            return task
        if task.kind == "sub":
            assert child is not None, "unexpected child run"
            result, failed = child(task.name, task.input)
            task.complete(result, failed=failed)
            return task
        if task.kind == "activity":
            assert activity is not None
            task.complete(activity(task.name, task.input))
            return task
    timers = [t for t in tasks if t.kind == "timer" and not t.cancelled]
    first_timer = min(timers, key=lambda t: t.fire_at or start, default=None)
    waiting = {t.name: t for t in tasks if t.kind == "event"}
    while pending:
        at, name, data = pending[0]
        when = start + timedelta(seconds=at)
        if first_timer is not None and first_timer.fire_at is not None and first_timer.fire_at <= when:
            break
        pending.pop(0)
        ctx.current_utc_datetime = max(ctx.current_utc_datetime, when)
        # An event nobody waits for right now is kept for the next waiter, as the SDK does.
        target = waiting.get(name) or next(
            (t for t in ctx.waiting_events if t.name == name and not t.is_completed), None
        )
        assert target is not None, f"nothing waits for {name}"
        target.complete(data)
        if target in tasks:
            return target
    assert first_timer is not None and first_timer.fire_at is not None, "the orchestration waits for nothing"
    ctx.current_utc_datetime = max(ctx.current_utc_datetime, first_timer.fire_at)
    first_timer.complete(None)
    return first_timer


def outbox(sent: list[dict[str, Any]]) -> Activity:
    """An activity handler that records outbox posts (and answers nothing else)."""

    def handle(name: str, payload: Any) -> Any:
        assert name == names.POST_TO_OUTBOX, name
        sent.append(payload)
        return {"message_id": payload["id"], "to": payload["to"], "status": "sent", "transport": "local"}

    return handle


# --- publish ------------------------------------------------------------------------------------


def publish_input(**changes: Any) -> dict[str, Any]:
    request = PublishRequest(content="Release 1.2 is out", approvers=["alice", "bob"], timeout_s=60.0)
    return {**request.to_dict(), **changes}


def test_judge_tells_decisions_refusals_and_noise_apart() -> None:
    approvers = ["alice", "bob"]
    assert judge({"approver": "bob", "decision": "reject", "comment": "typo"}, approvers) == Decision(
        "bob", "reject", "typo"
    )
    assert judge('{"approver": "alice", "decision": "approve"}', approvers) == Decision("alice", "approve")
    assert judge({"approver": "mallory", "decision": "approve"}, approvers) == Refusal("mallory")
    # The starter's flag is honoured even for a listed name; the orchestration's own check needs no flag.
    assert judge({"approver": "alice", "decision": "approve", "refused": True}, approvers) == Refusal("alice")
    assert judge({"approver": "alice", "decision": "maybe"}, approvers) is None
    assert judge({"decision": "approve"}, approvers) is None
    assert judge("not json", approvers) is None


def test_an_approval_publishes_once_after_refusing_a_stranger() -> None:
    ctx = SimContext(publish_input())
    sent: list[dict[str, Any]] = []
    ended = simulate(
        ctx,
        run_publish,
        events=[
            (5, names.DECISION_EVENT, {"approver": "mallory", "decision": "approve"}),
            (9, names.DECISION_EVENT, {"approver": "bob", "decision": "approve", "comment": "ship it"}),
        ],
        activity=outbox(sent),
    )

    assert ended.output == {
        "content": "Release 1.2 is out",
        "outcome": "published",
        "decided_by": "bob",
        "comment": "ship it",
        "timed_out": False,
        "reminders_sent": 0,
        "refused": [{"approver": "mallory", "at": (START + timedelta(seconds=5)).isoformat()}],
        "message_id": "wf-1:publish",
    }
    assert sent == [{"id": "wf-1:publish", "to": "publish", "text": "Release 1.2 is out"}]
    assert ctx.statuses[-1]["state"] == "published" and ctx.statuses[-1]["kind"] == "publish"
    assert ctx.statuses[-1]["progress"]["refused"] == 1 and ctx.statuses[-1]["children"] == []


def test_a_rejection_publishes_nothing() -> None:
    sent: list[dict[str, Any]] = []
    ended = simulate(
        SimContext(publish_input()),
        run_publish,
        events=[(1, names.DECISION_EVENT, {"approver": "alice", "decision": "reject", "comment": "not yet"})],
        activity=outbox(sent),
    )
    assert ended.output["outcome"] == "rejected" and ended.output["decided_by"] == "alice"
    assert ended.output["comment"] == "not yet" and "message_id" not in ended.output
    assert sent == []


def test_the_reminder_goes_out_once_then_the_timeout_escalates() -> None:
    sent: list[dict[str, Any]] = []
    ctx = SimContext(publish_input(timeout_s=60.0, reminder_s=20.0, escalate_to="carol"))
    ended = simulate(ctx, run_publish, activity=outbox(sent))

    assert [(m["id"], m["to"]) for m in sent] == [("wf-1:reminder", "alice, bob"), ("wf-1:escalation", "carol")]
    assert "before 2024-05-01T10:01:00+00:00" in sent[0]["text"]
    assert ended.output["outcome"] == "escalated" and ended.output["timed_out"] is True
    assert ended.output["reminders_sent"] == 1 and ended.output["message_id"] == "wf-1:escalation"
    assert "decided_by" not in ended.output
    assert ctx.current_utc_datetime == START + timedelta(seconds=60)
    assert ctx.statuses[-1]["state"] == "escalated"


def test_a_timeout_without_anyone_to_escalate_to_rejects() -> None:
    sent: list[dict[str, Any]] = []
    ended = simulate(SimContext(publish_input(timeout_s=5.0)), run_publish, activity=outbox(sent))
    assert ended.output["outcome"] == "rejected" and ended.output["timed_out"] is True
    assert ended.output["comment"] == "no decision within 5 s" and ended.output["reminders_sent"] == 0
    assert sent == []


def test_a_decision_before_the_reminder_cancels_it() -> None:
    sent: list[dict[str, Any]] = []
    ctx = SimContext(publish_input(timeout_s=60.0, reminder_s=30.0))
    ended = simulate(
        ctx,
        run_publish,
        events=[(10, names.DECISION_EVENT, {"approver": "alice", "decision": "approve"})],
        activity=outbox(sent),
    )
    assert ended.output["reminders_sent"] == 0 and [m["id"] for m in sent] == ["wf-1:publish"]


def test_the_publish_outcome_leaves_out_what_it_does_not_know() -> None:
    outcome = PublishOutcome(content="x", outcome="rejected", timed_out=True)
    assert outcome.to_dict() == {
        "content": "x",
        "outcome": "rejected",
        "timed_out": True,
        "reminders_sent": 0,
        "refused": [],
    }


# --- watch --------------------------------------------------------------------------------------


def search_results(*scripted: list[dict[str, Any]]) -> tuple[Activity, list[Any]]:
    """A search activity answering the scripted result lists in turn (the last one again once they run out)."""
    calls: list[Any] = []

    def handle(name: str, payload: Any) -> Any:
        assert name == names.SEARCH_KNOWLEDGE_BASE, name
        calls.append(payload)
        results = scripted[min(len(calls), len(scripted)) - 1]
        return {"query": payload["query"], "results": results}

    return handle, calls


HIT = {"id": "canary", "title": "Canary releases", "snippet": "Ship to a few first.", "score": 2.5}


def test_a_watch_ends_when_a_match_appears() -> None:
    search, calls = search_results([], [], [HIT])
    ctx = SimContext(WatchRequest(query="canary", interval_s=10.0, expires_s=100.0).to_dict())
    ended = simulate(ctx, run_watch, activity=search)

    assert ended.output == {
        "query": "canary",
        "found": True,
        "match": {"id": "canary", "title": "Canary releases", "snippet": "Ship to a few first.", "score": 2.5},
        "checks": 3,
        "expired": False,
    }
    assert calls == [{"query": "canary", "top_k": 1}] * 3
    assert ctx.current_utc_datetime == START + timedelta(seconds=20)
    assert ctx.statuses[-1]["state"] == "found" and ctx.statuses[-1]["progress"]["best_score"] == 2.5


def test_a_watch_ignores_matches_at_or_below_its_threshold_and_expires() -> None:
    low = {**HIT, "score": 0.7}
    search, calls = search_results([low])
    ctx = SimContext(WatchRequest(query="canary", interval_s=4.0, expires_s=10.0, min_score=0.7).to_dict())
    ended = simulate(ctx, run_watch, activity=search)

    # Checks at 0, 4 and 8 s; the timer after the last check fires at the deadline, not at 12 s.
    assert ended.output == {"query": "canary", "found": False, "checks": 3, "expired": True}
    assert ctx.current_utc_datetime == START + timedelta(seconds=10)
    assert ctx.statuses[-1]["progress"]["best_score"] == 0.7


def test_a_long_watch_continues_as_new_with_its_deadline_and_count() -> None:
    search, _ = search_results([])
    request = WatchRequest(query="canary", interval_s=1.0, expires_s=1000.0)
    first = simulate(SimContext(request.to_dict()), run_watch, activity=search)

    carried = first.continued_with["carried"]
    assert first.output == {} and carried["checks"] == 10
    assert carried["expires_at"] == (START + timedelta(seconds=1000)).isoformat()
    # The next execution keeps the deadline (not "now + expires_s") and counts on from 10.
    later = START + timedelta(seconds=995)
    search2, _ = search_results([], [HIT])
    second = simulate(SimContext(first.continued_with, now=later), run_watch, activity=search2)
    assert second.output["checks"] == 12 and second.output["found"] is True


def test_first_match_and_next_check() -> None:
    assert first_match([{**HIT, "score": 0.0}], 0.0) is None
    assert first_match([HIT], 0.0) == {
        "id": "canary",
        "title": "Canary releases",
        "snippet": "Ship to a few first.",
        "score": 2.5,
    }
    assert first_match("garbage", 0.0) is None
    deadline = START + timedelta(seconds=5)
    assert next_check(START, 2.0, deadline) == START + timedelta(seconds=2)
    assert next_check(START + timedelta(seconds=4), 2.0, deadline) == deadline


def test_the_knowledge_base_is_read_again_when_its_folder_changes(tmp_path: Path) -> None:
    """What lets a watch find a document added while it runs."""
    (tmp_path / "deploys.md").write_text("# Deploys\n\nWe deploy on weekdays.\n")
    env = {"KNOWLEDGE_DIR": str(tmp_path)}
    assert knowledge_from_env(env).search("canary") == []
    assert knowledge_from_env(env) is knowledge_from_env(env)  # unchanged folder: the loaded one

    (tmp_path / "canary.md").write_text("# Canary releases\n\nA canary ships to a few users first.\n")
    assert [hit["id"] for hit in knowledge_from_env(env).search("canary")] == ["canary"]
    (tmp_path / "canary.md").write_text("# Canary releases\n\nNow about rollbacks only.\n")
    assert "rollbacks" in knowledge_from_env(env).search("canary")[0]["snippet"]


# --- digest -------------------------------------------------------------------------------------


DOCS = [
    {"id": f"doc-{n}", "title": f"Doc {n}", "snippet": f"Doc {n} says something new. And more…", "score": 10.0 - n}
    for n in range(1, 6)
]


def digest_services(sent: list[dict[str, Any]]) -> Activity:
    def handle(name: str, payload: Any) -> Any:
        if name == names.SEARCH_KNOWLEDGE_BASE:
            return {"query": payload["query"], "results": DOCS}
        return outbox(sent)(name, payload)

    return handle


def summariser(requests: list[tuple[str, Any]], *, fail: bool = False) -> Child:
    def handle(run_id: str, request: Any) -> tuple[Any, bool]:
        requests.append((run_id, request))
        if fail:
            return "Orchestrator function 'agent_run' failed: model call at turn 1 failed: boom", True
        usage = {"prompt_tokens": 90, "completion_tokens": 10, "total_tokens": 100}
        return {
            "status": "completed",
            "output": f"Summary by {run_id}.",
            "turns": 1,
            "usage": usage,
            "messages": [],
        }, False

    return handle


def run_cycles(
    request: dict[str, Any], cycles: int, sent: list[dict[str, Any]], runs: list[tuple[str, Any]], *, fail: bool = False
) -> tuple[Any, SimContext]:
    """Run `cycles` executions, each continuing as new into the next; the last input and context."""
    current: Any = request
    ctx = SimContext(current)
    for n in range(cycles):
        ctx = SimContext(current, now=START + timedelta(seconds=100 * n))
        ended = simulate(ctx, run_digest, activity=digest_services(sent), child=summariser(runs, fail=fail))
        assert ended.output == {} and ended.continued_with is not None
        current = ended.continued_with
    return current, ctx


def test_each_digest_cycle_summarises_only_what_is_new_and_continues_as_new() -> None:
    sent: list[dict[str, Any]] = []
    runs: list[tuple[str, Any]] = []
    request = DigestRequest(topic="releases", interval_s=60.0, tenant="acme", max_documents=2).to_dict()
    state, ctx = run_cycles(request, 3, sent, runs)

    assert [r[0] for r in runs] == ["wf-1:summary:1", "wf-1:summary:2", "wf-1:summary:3"]
    assert runs[0][1]["agent"] == "writer" and runs[0][1]["input"].startswith("summarise: Doc 1: ")
    assert runs[0][1]["tags"] == {"workflow": "wf-1", "workflow_role": "summary"}
    assert [m["id"] for m in sent] == ["wf-1:digest:1", "wf-1:digest:2", "wf-1:digest:3"]
    assert sent[1]["to"] == "digest" and "Summary by wf-1:summary:2." in sent[1]["text"]
    assert "- Doc 3 [doc-3]" in sent[1]["text"] and "doc-1" not in sent[1]["text"]
    assert state["state"]["reported"] == ["doc-1", "doc-2", "doc-3", "doc-4", "doc-5"]
    assert state["state"]["cycles"] == 3 and len(state["state"]["children"]) == 3
    # Usage: per cycle, one add to the agent and one to the tenant.
    assert ("usage", "tenant:acme", "add", {"tokens": 100, "runs": 1}) in ctx.signals
    assert ("usage", "agent:writer", "add", {"tokens": 100, "runs": 1}) in ctx.signals


def test_a_digest_cycle_with_nothing_new_posts_nothing_and_a_stop_ends_it_while_it_waits() -> None:
    sent: list[dict[str, Any]] = []
    runs: list[tuple[str, Any]] = []
    request = DigestRequest(topic="releases", interval_s=60.0, max_documents=5).to_dict()
    state, _ = run_cycles(request, 2, sent, runs)
    assert len(runs) == 1 and len(sent) == 1  # the second cycle found nothing new

    ctx = SimContext(state, now=START + timedelta(seconds=300))
    ended = simulate(
        ctx, run_digest, events=[(10, names.STOP_EVENT, {})], activity=digest_services(sent), child=summariser(runs)
    )
    assert ended.output == {
        "topic": "releases",
        "cycles": 2,
        "digests": ["wf-1:digest:1"],
        "reported": [d["id"] for d in DOCS],
    }
    assert ended.continued_with is None and len(sent) == 1
    assert ctx.statuses[-1]["state"] == "stopped" and ctx.statuses[-1]["children"][0]["run_id"] == "wf-1:summary:1"


def test_a_stop_during_a_cycle_lets_the_cycle_post_its_digest_first() -> None:
    sent: list[dict[str, Any]] = []
    runs: list[tuple[str, Any]] = []
    ctx = SimContext(DigestRequest(topic="releases", interval_s=60.0).to_dict())

    def stop_then_search(name: str, payload: Any) -> Any:
        stop = next(t for t in ctx.waiting_events if t.name == names.STOP_EVENT)
        if not stop.is_completed:  # the stop arrives while the cycle's search runs
            stop.complete({"reason": "enough"})
        return digest_services(sent)(name, payload)

    ended = simulate(ctx, run_digest, activity=stop_then_search, child=summariser(runs))
    assert ended.continued_with is None
    assert ended.output["cycles"] == 1 and ended.output["digests"] == ["wf-1:digest:1"] and len(sent) == 1


def test_a_failed_summary_still_posts_the_list_of_new_documents() -> None:
    sent: list[dict[str, Any]] = []
    runs: list[tuple[str, Any]] = []
    request = DigestRequest(topic="releases", interval_s=60.0, tenant="acme").to_dict()
    state, ctx = run_cycles(request, 1, sent, runs, fail=True)
    assert "No summary this time: the writer run failed: model call at turn 1 failed: boom." in sent[0]["text"]
    assert "- Doc 1 [doc-1]" in sent[0]["text"] and state["state"]["digests"] == ["wf-1:digest:1"]
    assert ("usage", "tenant:acme", "add", {"tokens": 0, "runs": 1}) in ctx.signals


def test_digest_helpers() -> None:
    assert [d["id"] for d in new_documents(DOCS, ["doc-1", "doc-3"], 2)] == ["doc-2", "doc-4"]
    assert new_documents(None, [], 3) == []
    assert whole_sentences("First one. Second is cut…") == "First one."
    assert whole_sentences("No end at all…") == "No end at all."
    assert whole_sentences("Whole.") == "Whole."
    assert summary_request("x", DOCS[:1]) == "summarise: Doc 1: Doc 1 says something new."


# --- request bodies -----------------------------------------------------------------------------


def test_publish_bodies_are_checked() -> None:
    request, instance_id = parse_publish(
        b'{"content": "hi", "approvers": ["a"], "timeout_s": 10, "reminder_s": 2, "tenant": "acme", "instance_id": "p"}'
    )
    assert (request.approvers, request.timeout_s, request.reminder_s, request.tenant, instance_id) == (
        ["a"],
        10.0,
        2.0,
        "acme",
        "p",
    )
    bad = [
        (b'{"content": "hi", "timeout_s": 10}', "missing_field"),
        (b'{"content": "hi", "approvers": [], "timeout_s": 10}', "invalid_field"),
        (b'{"content": "hi", "approvers": ["a", "a"], "timeout_s": 10}', "invalid_field"),
        (b'{"content": "hi", "approvers": ["a"], "timeout_s": 0.5}', "invalid_field"),
        (b'{"content": "hi", "approvers": ["a"], "timeout_s": 10, "reminder_s": 10}', "invalid_field"),
        (b'{"content": "hi", "approvers": [" "], "timeout_s": 10}', "invalid_field"),
        (b'{"content": "hi", "approvers": ["a"], "timeout_s": 10, "channel": "x"}', "unknown_field"),
    ]
    for body, code in bad:
        with pytest.raises(BadRequestError) as err:
            parse_publish(body)
        assert err.value.code == code, body


def test_watch_digest_and_decision_bodies_are_checked() -> None:
    watch, _ = parse_watch(b'{"query": "canary", "interval_s": 0.1, "expires_s": 5}')
    assert (watch.interval_s, watch.min_score) == (0.1, 0.0)
    digest, _ = parse_digest(b'{"topic": "retries", "interval_s": 2}')
    assert (digest.agent, digest.max_documents, digest.tenant) == ("writer", 3, "default")
    assert parse_decision(b'{"approver": "a", "decision": "reject", "comment": "no"}') == {
        "approver": "a",
        "decision": "reject",
        "comment": "no",
    }
    for parse, body in [
        (parse_watch, b'{"query": "x", "interval_s": 0.05, "expires_s": 5}'),
        (parse_watch, b'{"query": "x", "interval_s": 1}'),
        (parse_digest, b'{"topic": "x", "interval_s": 1, "agent": "nobody"}'),
        (parse_decision, b'{"approver": "a", "decision": "maybe"}'),
        (parse_decision, b'{"approver": "a"}'),
    ]:
        with pytest.raises(BadRequestError):
            parse(body)
