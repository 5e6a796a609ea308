"""The ``research_workflow`` orchestration: a planner, researchers fanned out, a writer fanning them in.

Input (``ResearchRequest``): ``{"topic", "max_subtopics": 1..8 (4), "parallelism": 1..8 (2), "tenant"}``.

1. A ``planner`` run (child ``{id}:planner:1``) splits the topic into at most ``max_subtopics``
   subtopics (``agents.workflow_prompts.parse_subtopics``; an answer that names none leaves the topic
   itself as the one subtopic). A failed planner fails the workflow: there is nothing to research.
2. Each subtopic is researched by a ``researcher`` run, started as a sub-orchestration (child
   ``{id}:researcher:{i}``), at most ``parallelism`` at a time in a sliding window: the moment one
   finishes the next one starts, rather than batch after batch. The runs are collected one at a time
   with ``task_any``, so a failed run is one failed subtopic instead of the first error ending the
   fan-in as ``task_all`` would; it is listed as failed in the output.
3. A ``writer`` run (child ``{id}:writer:1``) turns the notes (each subtopic's findings, or that its
   research failed) into a report citing knowledge documents by ``[id]``.

The workflow fails when every subtopic failed or the writer failed; the message says which run failed.

Custom status: a ``WorkflowProgress`` with kind ``research``, state planning → researching → writing →
finished, and progress ``{"total", "done", "failed", "running"}`` (``done`` counts finished subtopics,
failed ones included). Every child run's usage goes to the ``usage`` entity (``record_usage``).

Output::

    {"topic", "tenant",
     "subtopics": [{"subtopic", "status", "run_id", "summary"?, "error"?, "sources": [doc id]}],
     "report", "citations": [doc id], "usage": {"tokens", "runs"}}

``sources`` are the documents a researcher's ``search_knowledge`` calls returned; ``citations`` are the
``[id]`` markers of the report that name a document some run of this workflow found, in report order.

Deterministic: the window's order follows the completion order recorded in the history.
"""

# No `from __future__ import annotations`: the Functions worker reads these functions' annotations.

import dataclasses
import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df

import shared_names as names
from agents.workflow_prompts import (
    MAX_SUBTOPIC_CHARS,
    cited_ids,
    one_line,
    parse_subtopics,
    plan_prompt,
    report_prompt,
    research_prompt,
    search_hits,
)
from orchestrators._workflow_common import (
    DEFAULT_TENANT,
    ChildOutcome,
    WorkflowProgress,
    child_outcome,
    record_usage,
    run_child,
    start_agent_run,
    usage_total,
)
from orchestrators.run_contract import event_data

logger = logging.getLogger(__name__)

bp = df.Blueprint()

DEFAULT_MAX_SUBTOPICS = 4
DEFAULT_PARALLELISM = 2
MAX_SUBTOPICS = 8
MAX_PARALLELISM = 8


@dataclass
class ResearchRequest:
    """The input of a research workflow."""

    topic: str
    max_subtopics: int = DEFAULT_MAX_SUBTOPICS
    parallelism: int = DEFAULT_PARALLELISM
    tenant: str = DEFAULT_TENANT

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "ResearchRequest":
        data = event_data(data)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class ResearchWorkflowError(Exception):
    """The research cannot give a report: the planner, every researcher or the writer failed."""


def _why(outcome: ChildOutcome) -> str:
    return outcome.error or f"the run ended {outcome.status} without an answer"


def subtopic_entry(subtopic: str, outcome: ChildOutcome) -> dict[str, Any]:
    """One subtopic of the output, from its researcher's outcome."""
    entry: dict[str, Any] = {"subtopic": subtopic, "status": outcome.status, "run_id": outcome.run_id}
    if outcome.ok:
        entry["summary"] = outcome.output
    else:
        entry["status"] = outcome.status if outcome.status != "completed" else "failed"
        entry["error"] = _why(outcome)
    entry["sources"] = [hit["id"] for hit in search_hits(outcome.messages)]
    return entry


class ResearchWorkflow:
    """One research workflow. Its methods are generators yielding durable tasks."""

    def __init__(self, context: Any, request: ResearchRequest) -> None:
        self.ctx = context
        self.request = request
        self.progress = WorkflowProgress(kind="research")
        self.outcomes: list[ChildOutcome] = []

    def child(self, role: str, n: int, agent: str, text: str, state: str) -> Generator[Any, Any, ChildOutcome]:
        outcome = yield from run_child(self.ctx, self.progress, self.request.tenant, role, n, agent, text, state=state)
        self.outcomes.append(outcome)
        return outcome

    def run(self) -> Generator[Any, Any, dict[str, Any]]:
        request = self.request
        plan = yield from self.child("planner", 1, "planner", plan_prompt(request.topic, request.max_subtopics),
                                     "planning")
        if not plan.ok:
            raise ResearchWorkflowError(f"the planner run {plan.run_id} failed: {_why(plan)}")
        subtopics = parse_subtopics(plan.output or "", request.max_subtopics)
        subtopics = subtopics or [one_line(request.topic)[:MAX_SUBTOPIC_CHARS]]

        entries = yield from self.research(subtopics)
        researched = [e for e in entries if "summary" in e]
        if not researched:
            raise ResearchWorkflowError(
                f"every subtopic failed; {entries[0]['subtopic']!r} ({entries[0]['run_id']}): {entries[0]['error']}")

        notes = [(e["subtopic"], e.get("summary")) for e in entries]
        writer = yield from self.child("writer", 1, "writer", report_prompt(request.topic, notes), "writing")
        if not writer.ok:
            raise ResearchWorkflowError(f"the writer run {writer.run_id} failed: {_why(writer)}")
        report = writer.output or ""
        found = {source for e in entries for source in e["sources"]}
        found.update(hit["id"] for hit in search_hits(writer.messages))
        citations = [doc_id for doc_id in cited_ids(report) if doc_id in found]

        self.progress.publish(self.ctx, "finished")
        if not self.ctx.is_replaying:
            logger.info("research workflow %s: %d of %d subtopics researched, %d citations",
                        self.ctx.instance_id, len(researched), len(entries), len(citations))
        return {
            "topic": request.topic,
            "tenant": request.tenant,
            "subtopics": entries,
            "report": report,
            "citations": citations,
            "usage": usage_total(self.outcomes),
        }

    def research(self, subtopics: list[str]) -> Generator[Any, Any, list[dict[str, Any]]]:
        """Research every subtopic, ``parallelism`` at a time in a sliding window; the entries in subtopic order."""
        entries: list[dict[str, Any] | None] = [None] * len(subtopics)
        waiting = list(range(len(subtopics)))
        running: dict[int, tuple[str, Any]] = {}
        failed = 0
        self.progress.publish(self.ctx, "researching", total=len(subtopics), done=0, failed=0, running=0)
        while waiting or running:
            while waiting and len(running) < max(1, self.request.parallelism):
                index = waiting.pop(0)
                run_id, task = start_agent_run(self.ctx, "researcher", index + 1, "researcher",
                                               research_prompt(subtopics[index]))
                running[index] = (run_id, task)
                self.progress.add_child(run_id, "researcher")
            self.progress.publish(self.ctx, running=len(running))
            # task_any, not task_all: a failed run completes the "any" like a successful one, one at a time.
            finished = yield self.ctx.task_any([task for _, task in running.values()])
            index = next(i for i, (_, task) in running.items() if task is finished)
            run_id, task = running.pop(index)
            outcome = child_outcome(task, run_id, "researcher", "researcher")
            record_usage(self.ctx, self.request.tenant, outcome)
            self.outcomes.append(outcome)
            entry = subtopic_entry(subtopics[index], outcome)
            entries[index] = entry
            failed += "summary" not in entry
            done = sum(e is not None for e in entries)
            self.progress.publish(self.ctx, done=done, failed=failed, running=len(running))
            if not self.ctx.is_replaying and "summary" not in entry:
                logger.warning("research workflow %s: subtopic %r failed: %s", self.ctx.instance_id,
                               subtopics[index], entry["error"])
        return [e for e in entries if e is not None]


def run_research(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    request = ResearchRequest.from_dict(context.get_input() or {})
    return (yield from ResearchWorkflow(context, request).run())


@bp.function_name(names.RESEARCH_WORKFLOW)
@bp.orchestration_trigger(context_name="context")
def research_workflow(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Orchestrator function registered as ``research_workflow``."""
    return (yield from run_research(context))
