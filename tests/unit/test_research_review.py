"""The research and review workflows without a host, and the pieces around them.

- The orchestrator generators run against a small fake context: each child run is a task the test
  finishes (with a result or a failure, in the order it chooses) before sending the ``task_any`` back,
  which is how the sliding window, the failed subtopic and the review loop are checked step by step.
- The prompts and their readers (`agents.workflow_prompts`), the offline model's workflow rules, the
  usage entity's state function, the workflow views and the starters' body parsing are plain functions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.durable_functions.models.Task import TaskState

from agents.catalogue import get_agent
from agents.knowledge import knowledge_from_env
from agents.loop import run_agent_loop
from agents.models import _offline_workflows as offline
from agents.models.offline import OfflineModel
from agents.tools.builtin import builtin_registry, services_from_env
from agents.workflow_prompts import (
    cited_ids,
    draft_prompt,
    is_approved,
    parse_subtopics,
    plan_prompt,
    report_prompt,
    research_prompt,
    review_prompt,
    revise_prompt,
    search_hits,
)
from entities.usage import add_usage, usage_view
from orchestrators._workflow_common import WorkflowProgress, child_run_id, failure_message, kind_of
from orchestrators.research_workflow import ResearchWorkflowError, run_research
from orchestrators.review_workflow import ReviewWorkflowError, run_review
from starters._http import BadRequestError
from starters.workflow_views import parse_workflow_filter, workflow_summary, workflow_view
from starters.workflows_api import parse_research, parse_review

WF = "wf-research-1"


# --- a fake orchestration context ---------------------------------------------------------------------


@dataclass(eq=False)
class ChildTask:
    """A sub-orchestration the fake context handed out; the test finishes it."""

    name: str
    input: dict[str, Any]
    instance_id: str
    state: TaskState = TaskState.RUNNING
    result: Any = None

    @property
    def is_completed(self) -> bool:
        return self.state is not TaskState.RUNNING

    def succeed(self, output: str, tokens: int = 10, messages: list[dict[str, Any]] | None = None) -> ChildTask:
        usage = {"prompt_tokens": tokens - 1, "completion_tokens": 1, "total_tokens": tokens}
        self.state = TaskState.SUCCEEDED
        self.result = {"status": "completed", "output": output, "turns": 2, "usage": usage,
                       "messages": messages or [], "error": None}
        return self

    def fail(self, message: str) -> ChildTask:
        self.state = TaskState.FAILED
        self.result = Exception(f"Orchestrator function 'agent_run' failed: AgentRunError: {message}")
        return self


@dataclass(frozen=True)
class AnyOf:
    tasks: tuple[ChildTask, ...]


@dataclass
class FakeContext:
    input: Any
    instance_id: str = WF
    is_replaying: bool = False
    started: list[ChildTask] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    signals: list[tuple[str, str, str, Any]] = field(default_factory=list)

    def get_input(self) -> Any:
        return self.input

    def call_sub_orchestrator(self, name: str, input_: Any, instance_id: str) -> ChildTask:
        task = ChildTask(name, input_, instance_id)
        self.started.append(task)
        return task

    def task_any(self, tasks: list[ChildTask]) -> AnyOf:
        return AnyOf(tuple(tasks))

    def set_custom_status(self, status: Any) -> None:
        self.statuses.append(json.loads(json.dumps(status)))

    def signal_entity(self, entity: Any, operation: str, data: Any) -> None:
        self.signals.append((entity.name, entity.key, operation, data))


Finisher = Callable[[AnyOf], ChildTask]


def drive(generator: Generator[Any, Any, Any], finish: Finisher) -> Any:
    """Play the host: at each ``task_any`` let ``finish`` complete one task, then send it back."""
    try:
        waiting = next(generator)
        while True:
            assert isinstance(waiting, AnyOf)
            done = finish(waiting)
            assert done in waiting.tasks and done.is_completed
            waiting = generator.send(done)
    except StopIteration as stop:
        return stop.value


def hits_message(*ids: str) -> list[dict[str, Any]]:
    """A run's messages holding one search_knowledge call that found ``ids``."""
    results = [{"id": i, "title": i.title(), "snippet": "...", "score": 1.0} for i in ids]
    return [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "name": "search_knowledge", "arguments": {}}]},
        {"role": "tool", "content": json.dumps({"result": {"query": "q", "results": results}}), "tool_call_id": "c1",
         "name": "search_knowledge"},
    ]


def role_of(task: ChildTask) -> str:
    return task.instance_id.split(":")[1]


# --- research -------------------------------------------------------------------------------------------


def test_research_slides_a_window_and_lists_a_failed_subtopic() -> None:
    ctx = FakeContext({"topic": "patterns", "max_subtopics": 4, "parallelism": 2, "tenant": "acme"})
    waits: list[list[str]] = []
    order = iter(["planner:1", "researcher:2", "researcher:1", "researcher:4", "researcher:3", "writer:1"])

    def finish(any_of: AnyOf) -> ChildTask:
        waits.append([t.instance_id.split(":", 1)[1] for t in any_of.tasks])
        wanted = next(order)
        task = next(t for t in any_of.tasks if t.instance_id.endswith(wanted))
        if wanted == "planner:1":
            return task.succeed('Subtopics: ["Alpha", "Beta", "Gamma", "Delta"]')
        if wanted == "researcher:1":
            return task.fail("model call at turn 1 failed: bad request")
        if wanted == "writer:1":
            return task.succeed("Report citing [doc-beta] and [doc-made-up] and [doc-beta]", tokens=30)
        letter = {"researcher:2": "beta", "researcher:3": "gamma", "researcher:4": "delta"}[wanted]
        return task.succeed(f"{letter} findings [doc-{letter}]", tokens=20, messages=hits_message(f"doc-{letter}"))

    output = drive(run_research(ctx), finish)

    # A window, not batches: researcher 3 starts as soon as researcher 2 ends, while researcher 1 still runs.
    assert waits == [["planner:1"], ["researcher:1", "researcher:2"], ["researcher:1", "researcher:3"],
                     ["researcher:3", "researcher:4"], ["researcher:3"], ["writer:1"]]
    assert [t.input["agent"] for t in ctx.started] == ["planner", "researcher", "researcher", "researcher",
                                                       "researcher", "writer"]
    assert ctx.started[1].input["input"] == research_prompt("Alpha")
    assert ctx.started[1].input["tags"] == {"workflow": WF, "workflow_role": "researcher"}
    writer_input = ctx.started[-1].input["input"]
    assert "- Alpha: (no findings: the research failed)" in writer_input
    assert "- Beta: beta findings [doc-beta]" in writer_input

    alpha, beta, gamma, delta = output["subtopics"]
    assert alpha == {"subtopic": "Alpha", "status": "failed", "run_id": f"{WF}:researcher:1",
                     "error": "model call at turn 1 failed: bad request", "sources": []}
    assert beta == {"subtopic": "Beta", "status": "completed", "run_id": f"{WF}:researcher:2",
                    "summary": "beta findings [doc-beta]", "sources": ["doc-beta"]}
    assert [gamma["sources"], delta["sources"]] == [["doc-gamma"], ["doc-delta"]]
    assert output["citations"] == ["doc-beta"]  # a marker naming no document found is no citation
    assert output["usage"] == {"tokens": 10 + 3 * 20 + 0 + 30, "runs": 6}

    researching = [s["progress"] for s in ctx.statuses if s["state"] == "researching"]
    assert [p["done"] for p in researching] == sorted(p["done"] for p in researching)
    assert researching[-1] == {"total": 4, "done": 4, "failed": 1, "running": 0}
    assert max(p["running"] for p in researching) == 2
    assert ctx.statuses[-1]["state"] == "finished"
    assert [c["run_id"] for c in ctx.statuses[-1]["children"]] == [t.instance_id for t in ctx.started]

    assert len(ctx.signals) == 12
    assert ("usage", "tenant:acme", "add", {"tokens": 0, "runs": 1}) in ctx.signals  # the failed run
    assert ctx.signals[:2] == [("usage", "agent:planner", "add", {"tokens": 10, "runs": 1}),
                               ("usage", "tenant:acme", "add", {"tokens": 10, "runs": 1})]


def _finish_all(fail_roles: tuple[str, ...] = (), planner_output: str = '["A", "B"]') -> Finisher:
    def finish(any_of: AnyOf) -> ChildTask:
        task = any_of.tasks[0]
        if role_of(task) in fail_roles:
            return task.fail(f"{role_of(task)} broke")
        return task.succeed(planner_output if role_of(task) == "planner" else f"text of {task.instance_id}")

    return finish


@pytest.mark.parametrize(
    ("fail_roles", "message"),
    [
        (("planner",), f"the planner run {WF}:planner:1 failed: planner broke"),
        (("researcher",), f"every subtopic failed; 'A' ({WF}:researcher:1): researcher broke"),
        (("writer",), f"the writer run {WF}:writer:1 failed: writer broke"),
    ],
)
def test_research_fails_when_nothing_can_be_reported(fail_roles: tuple[str, ...], message: str) -> None:
    with pytest.raises(ResearchWorkflowError) as failure:
        drive(run_research(FakeContext({"topic": "t"})), _finish_all(fail_roles))
    assert str(failure.value) == message


def test_a_plan_without_subtopics_researches_the_topic_itself() -> None:
    ctx = FakeContext({"topic": "  odd\ntopic ", "max_subtopics": 3})
    output = drive(run_research(ctx), _finish_all(planner_output="I cannot plan that."))
    assert [s["subtopic"] for s in output["subtopics"]] == ["odd topic"]
    assert output["tenant"] == "default"


# --- review -----------------------------------------------------------------------------------------------


def _reviewing(critiques: list[str]) -> Finisher:
    remaining = iter(critiques)

    def finish(any_of: AnyOf) -> ChildTask:
        task = any_of.tasks[0]
        if role_of(task) == "reviewer":
            return task.succeed(next(remaining))
        return task.succeed(f"draft {task.instance_id.rsplit(':', 1)[1]}")

    return finish


def test_review_revises_until_approved() -> None:
    ctx = FakeContext({"brief": "B", "max_rounds": 3, "tenant": "acme"})
    output = drive(run_review(ctx), _reviewing(["Missing: x.", "approved: fine now"]))

    assert output == {"brief": "B", "tenant": "acme", "approved": True, "rounds": 2, "drafts": ["draft 1", "draft 2"],
                      "critiques": ["Missing: x.", "approved: fine now"], "final": "draft 2",
                      "usage": {"tokens": 40, "runs": 4}}
    assert [t.instance_id for t in ctx.started] == [
        child_run_id(WF, role, n) for n in (1, 2) for role in ("writer", "reviewer")]
    assert ctx.started[0].input["input"] == draft_prompt("B")
    assert ctx.started[1].input["input"] == review_prompt("B", "draft 1")
    assert ctx.started[2].input["input"] == revise_prompt("B", "draft 1", "Missing: x.")
    assert [s["state"] for s in ctx.statuses] == ["drafting", "reviewing", "revising", "reviewing", "finished"]
    assert ctx.statuses[-1]["progress"] == {"round": 2, "max_rounds": 3, "approved": True}


def test_review_stops_after_max_rounds_and_keeps_every_draft() -> None:
    output = drive(run_review(FakeContext({"brief": "B", "max_rounds": 2})), _reviewing(["No.", "Still no."]))
    assert (output["approved"], output["rounds"], output["drafts"], output["critiques"], output["final"]) == (
        False, 2, ["draft 1", "draft 2"], ["No.", "Still no."], "draft 2")


def test_a_failed_reviewer_fails_the_review() -> None:
    with pytest.raises(ReviewWorkflowError, match=r"the reviewer run .*:reviewer:1 \(round 1\) failed: reviewer broke"):
        drive(run_review(FakeContext({"brief": "B"})), _finish_all(("reviewer",)))


# --- prompts and their readers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "most", "subtopics"),
    [
        ('["A", "B", "C"]', 2, ["A", "B"]),
        ('Here you go:\n```json\n["A", " a ", "", "B"]\n```', 5, ["A", "B"]),
        ("1. First\n2) Second\n- Third\nnot an item", 4, ["First", "Second", "Third"]),
        ("[not json] nor a list", 4, []),
        (json.dumps(["x" * 300]), 1, ["x" * 200]),
    ],
)
def test_parse_subtopics(answer: str, most: int, subtopics: list[str]) -> None:
    assert parse_subtopics(answer, most) == subtopics


def test_approval_citations_and_search_hits() -> None:
    assert is_approved("APPROVED. Good.") and is_approved("**Approved**: yes") and is_approved("  approved")
    assert not is_approved("Not approved.") and not is_approved("I approved nothing") and not is_approved("APPROVEDX")
    assert cited_ids("see [a-1] and [b] then [a-1]; not [ x ]") == ["a-1", "b"]
    messages = [*hits_message("d1", "d2"), *hits_message("d2", "d3")]
    messages.append({"role": "tool", "content": "not json", "tool_call_id": "c9", "name": "search_knowledge"})
    assert [h["id"] for h in search_hits(messages)] == ["d1", "d2", "d3"]


# --- the offline model's workflow rules ----------------------------------------------------------------------


def _run_offline(agent: str, text: str) -> str:
    tools = builtin_registry(services_from_env({}))
    result = asyncio.run(run_agent_loop(get_agent(agent), text, OfflineModel(), tools))
    assert result.status == "completed", result
    return result.output or ""


def test_the_offline_planner_answers_the_titles_of_matching_documents() -> None:
    titles = [hit["title"] for hit in knowledge_from_env({}).search("durable functions patterns", 3)]
    assert json.loads(_run_offline("planner", plan_prompt("durable functions patterns", 3))) == titles
    # One matching document is topped up to two subtopics; at most one is asked for, one is given.
    assert json.loads(_run_offline("planner", plan_prompt("fan-out", 4))) == ["Fan-out/fan-in", "Fan-out: overview"]
    assert json.loads(_run_offline("planner", plan_prompt("fan-out", 1))) == ["Fan-out/fan-in"]


def test_the_offline_researcher_and_writer_cite_documents() -> None:
    summary = _run_offline("researcher", research_prompt("Durable timers"))
    assert summary.startswith("According to the knowledge base (Durable timers [durable-timers])")
    report = _run_offline("writer", report_prompt("timers", [("Durable timers", summary), ("Broken", None)]))
    assert report.startswith("Timers: a report\n\nDurable timers: According to")
    assert "Not covered, because their research failed: Broken." in report
    assert report.endswith("Sources: " + ", ".join(f"[{i}]" for i in cited_ids(summary)))


def test_the_offline_reviewer_approves_when_every_point_is_covered() -> None:
    brief = "Write a short note on retries for the Friday release"
    assert offline.brief_points(brief) == ["retries", "friday", "release"]
    draft = _run_offline("writer", draft_prompt(brief))
    assert draft.startswith(f"{brief}\n\n")  # the title repeats the brief, which covers nothing
    critique = _run_offline("reviewer", review_prompt(brief, draft))
    assert critique == "Not approved. Missing: friday, release. Add a sentence on each."
    revised = _run_offline("writer", revise_prompt(brief, draft, critique))
    assert revised == f"{draft}\n\nIt also covers friday and release."
    assert _run_offline("reviewer", review_prompt(brief, revised)).startswith(
        "APPROVED. The draft covers every point of the brief: retries, friday, release.")


def test_the_offline_reviewer_never_approves_a_brief_that_says_so() -> None:
    brief = "Durable timers; never approve"
    critique = offline.review_answer(review_prompt(brief, "Title\n\nDurable timers wait."))
    assert critique == "Not approved. This brief says never approve, so no draft can pass."
    assert offline.revise_answer(revise_prompt(brief, "D", critique)) == f"D\n\nRevised after the review: {critique}"


def test_ordinary_messages_are_not_workflow_prompts() -> None:
    for text in ("write a note about retries", "review this please", "Plan my day", "What is 2+2?"):
        assert offline.workflow_kind(text) is None
    assert _run_offline("writer", "write a note about durable timers").startswith("Durable timers\n\n")


# --- usage, views and bodies ---------------------------------------------------------------------------------


def test_usage_adds_and_refuses_bad_counts() -> None:
    state = add_usage(None, {"tokens": 5, "runs": 1})
    assert add_usage(state, {"tokens": 7}) == {"tokens": 12, "runs": 1}
    assert usage_view("agent:a", add_usage(state, {"runs": 2})) == {"scope": "agent:a", "tokens": 5, "runs": 3}
    for bad in ({"tokens": -1}, {"runs": 1.5}, {"tokens": True}, {"tokens": "3"}):
        with pytest.raises(ValueError, match="non-negative integer"):
            add_usage(state, bad)


def _status(runtime: str, **changes: Any) -> dict[str, Any]:
    custom = WorkflowProgress("review", "reviewing", {"round": 1}, [{"run_id": "w:writer:1", "role": "writer"},
                                                                     {"run_id": "w:reviewer:1", "role": "reviewer"}])
    base = {"name": "review_workflow", "instanceId": "w", "runtimeStatus": runtime, "customStatus": custom.to_dict(),
            "output": None, "createdTime": "2025-01-01T00:00:00.000000Z", "lastUpdatedTime": "2025-01-01T00:00:01Z"}
    return {**base, **changes}


def test_the_workflow_view_shows_children_with_links_and_their_status() -> None:
    writer = {"name": "agent_run", "instanceId": "w:writer:1", "runtimeStatus": "Completed",
              "output": {"status": "completed"}}
    view = workflow_view(_status("Running"), {"w:writer:1": writer, "w:reviewer:1": None}, "http://h/api", "code=k")
    assert (view["kind"], view["status"], view["state"], view["progress"], view["output"]) == (
        "review", "running", "reviewing", {"round": 1}, None)
    assert view["children"] == [
        {"run_id": "w:writer:1", "role": "writer", "status": "completed",
         "links": {"status": "http://h/api/runs/w%3Awriter%3A1?code=k",
                   "events": "http://h/api/runs/w%3Awriter%3A1/events?code=k"}},
        {"run_id": "w:reviewer:1", "role": "reviewer", "status": "pending",
         "links": {"status": "http://h/api/runs/w%3Areviewer%3A1?code=k",
                   "events": "http://h/api/runs/w%3Areviewer%3A1/events?code=k"}},
    ]
    done = workflow_view(_status("Completed", output={"approved": True}), {}, "http://h/api")
    assert (done["status"], done["output"]) == ("completed", {"approved": True})
    failed = workflow_summary(_status("Failed", output="Orchestrator function 'review_workflow' failed: boom"))
    assert (failed["status"], failed["error"]) == ("failed", "boom")
    pending = workflow_summary({"name": "publish_workflow", "instanceId": "p", "runtimeStatus": "Pending"})
    assert (pending["kind"], pending["status"], pending["state"], pending["progress"]) == (
        "publish", "pending", "pending", {})
    assert workflow_summary(_status("Terminated", output="stop"))["error"] == "terminated: stop"


def test_names_filters_and_failure_text() -> None:
    assert [kind_of(n) for n in ("research_workflow", "digest_workflow", "agent_run", "essay_workflow", None)] == [
        "research", "digest", None, None, None]
    assert parse_workflow_filter({"kind": "watch", "status": "running,failed"}) == (
        "watch", frozenset({"running", "failed"}))
    for params in ({"kind": "essay"}, {"status": "done"}, {"status": ","}):
        with pytest.raises(BadRequestError):
            parse_workflow_filter(params)
    raw = "Orchestrator function 'agent_run' failed: AgentRunError: model call failed \n Traceback ..."
    assert failure_message(Exception(raw)) == "model call failed"


def test_the_starters_fill_in_defaults_and_check_bounds() -> None:
    request, instance_id = parse_research(b'{"topic": " patterns "}')
    assert (request.to_dict(), instance_id) == (
        {"topic": "patterns", "max_subtopics": 4, "parallelism": 2, "tenant": "default"}, None)
    review, chosen = parse_review(b'{"brief": "B", "max_rounds": 5, "tenant": "acme", "instance_id": "r-1"}')
    assert (review.to_dict(), chosen) == ({"brief": "B", "max_rounds": 5, "tenant": "acme"}, "r-1")
    for body in (b'{"topic": "t", "max_subtopics": 8.5}', b'{"topic": "t", "parallelism": 0}', b"[]"):
        with pytest.raises(BadRequestError):
            parse_research(body)
