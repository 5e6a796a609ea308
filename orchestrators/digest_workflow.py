"""The ``digest_workflow`` orchestration: an eternal digest of what is new about a topic.

The eternal-orchestration pattern. Input (``DigestRequest``, validated by ``POST /api/workflows/digest``):
``{"interval_s", "topic", "tenant"?, "agent"?, "max_documents"?}``. Each cycle:

1. the activity ``search_knowledge_base`` searches the knowledge base for the topic (its ``SEARCH_TOP_K``
   best documents); the documents not reported by an earlier cycle are new, at most ``max_documents`` of
   them (default 3; the rest wait for the next cycle);
2. when something is new, an agent (``writer`` by default) summarises it: a child run
   ``{workflow id}:summary:{cycle}``, whose usage is recorded for the agent and the tenant;
3. the digest (the summary and the new documents' titles and ids) goes to the outbox recipient
   ``digest`` as message ``{workflow id}:digest:{cycle}``: a replayed or retried post sends it once.

A cycle with nothing new posts nothing. After each cycle the workflow continues as new, carrying its
state (cycles, reported ids, digest message ids, children), and the next execution waits ``interval_s``
before its cycle: the history of one execution is one cycle, however long the digest runs.

It runs until the external event ``stop`` (``POST /api/workflows/{id}/stop``): a stop that arrives while
the workflow waits ends it at once; one that arrives during a cycle lets that cycle finish (its summary
posted) first. Output: ``{"topic", "cycles", "digests": [outbox message ids], "reported": [document
ids]}``. The custom status is a WorkflowProgress (kind ``digest``, state ``waiting``, ``searching``,
``summarising``, ``posting`` or ``stopped``, progress ``{"cycles", "digests", "reported",
"next_cycle_at"}``) whose children are the summary runs.

Deterministic: times from ``context.current_utc_datetime``, ids from the instance id and the cycle.
"""

# No `from __future__ import annotations`: the Functions worker reads these functions' annotations.

import dataclasses
import logging
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

import shared_names as names
from orchestrators._workflow_common import DEFAULT_TENANT, ChildOutcome, WorkflowProgress, run_child
from orchestrators.run_contract import event_data

logger = logging.getLogger(__name__)

bp = df.Blueprint()

KIND = "digest"
ROLE = "summary"
DEFAULT_AGENT = "writer"
DEFAULT_MAX_DOCUMENTS = 3
SEARCH_TOP_K = 10
RECIPIENT = "digest"
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)


@dataclass
class DigestState:
    """What a digest carries from one cycle to the next."""

    cycles: int = 0
    reported: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    children: list[dict[str, str]] = field(default_factory=list)


@dataclass
class DigestRequest:
    """The input of a digest; ``state`` is what continue-as-new carries."""

    topic: str
    interval_s: float
    tenant: str = DEFAULT_TENANT
    agent: str = DEFAULT_AGENT
    max_documents: int = DEFAULT_MAX_DOCUMENTS
    state: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "DigestRequest":
        data = event_data(data)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def carried(self) -> DigestState:
        data = self.state or {}
        known = {f.name for f in dataclasses.fields(DigestState)}
        return DigestState(**{k: v for k, v in data.items() if k in known})


def new_documents(results: Any, reported: list[str], limit: int) -> list[dict[str, Any]]:
    """The search results not reported yet, best first, at most ``limit``."""
    seen = set(reported)
    hits = results if isinstance(results, list) else []
    fresh = [h for h in hits if isinstance(h, dict) and h.get("id") not in seen]
    return fresh[: max(limit, 0)]


def whole_sentences(snippet: str) -> str:
    """A search snippet without the cut-off sentence a shortened snippet ends with."""
    text = snippet.strip()
    if text.endswith("…"):
        end = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
        text = text[: end + 1] if end > 0 else text.rstrip("…").rstrip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def summary_request(topic: str, documents: list[dict[str, Any]]) -> str:
    """The agent's input: the new documents' titles and passages, to summarise."""
    passages = " ".join(f"{d.get('title')}: {whole_sentences(str(d.get('snippet') or ''))}" for d in documents)
    return f"summarise: {passages}" if documents else f"summarise: nothing new about {topic}."


def digest_text(topic: str, cycle: int, documents: list[dict[str, Any]], summary: ChildOutcome) -> str:
    """The message posted for one cycle."""
    lines = [f"Digest #{cycle} on {topic}", ""]
    if summary.ok:
        lines += [str(summary.output), ""]
    else:
        lines += [f"(No summary this time: the {summary.agent} run {summary.status}: {summary.error}.)", ""]
    lines.append("New:")
    lines += [f"- {d.get('title')} [{d.get('id')}]" for d in documents]
    return "\n".join(lines)


class DigestWorkflow:
    """One execution of a digest: at most one cycle. Its methods are generators yielding durable tasks."""

    def __init__(self, context: Any, request: DigestRequest) -> None:
        self.ctx = context
        self.id: str = context.instance_id
        self.request = request
        self.state = request.carried()
        self.progress = WorkflowProgress(kind=KIND, children=[dict(c) for c in self.state.children])
        self.stop_task = context.wait_for_external_event(names.STOP_EVENT)

    def status(self, state: str, **extra: Any) -> None:
        self.progress.publish(
            self.ctx,
            state,
            cycles=self.state.cycles,
            digests=len(self.state.digests),
            reported=len(self.state.reported),
            **extra,
        )

    def run(self) -> Generator[Any, Any, dict[str, Any]]:
        if self.state.cycles > 0:
            at = self.ctx.current_utc_datetime + timedelta(seconds=float(self.request.interval_s))
            self.status("waiting", next_cycle_at=at.isoformat())
            timer = self.ctx.create_timer(at)
            winner = yield self.ctx.task_any([timer, self.stop_task])
            if winner is self.stop_task:
                if not timer.is_completed:  # the SDK refuses to cancel a timer that fired
                    timer.cancel()
                return self.finish()
        yield from self.cycle()
        if self.stop_task.is_completed:
            return self.finish()
        self.state.children = self.progress.children
        self.ctx.continue_as_new(dataclasses.replace(self.request, state=dataclasses.asdict(self.state)).to_dict())
        return {}

    def cycle(self) -> Generator[Any, Any, None]:
        cycle = self.state.cycles + 1
        self.status("searching", next_cycle_at=None)
        found = yield self.ctx.call_activity_with_retry(
            names.SEARCH_KNOWLEDGE_BASE, RETRY, {"query": self.request.topic, "top_k": SEARCH_TOP_K}
        )
        fresh = new_documents(event_data(found).get("results"), self.state.reported, int(self.request.max_documents))
        if fresh:
            summary = yield from run_child(
                self.ctx,
                self.progress,
                self.request.tenant,
                ROLE,
                cycle,
                self.request.agent,
                summary_request(self.request.topic, fresh),
                state="summarising",
            )
            self.status("posting")
            message = {
                "id": f"{self.id}:digest:{cycle}",
                "to": RECIPIENT,
                "text": digest_text(self.request.topic, cycle, fresh, summary),
            }
            receipt = yield self.ctx.call_activity_with_retry(names.POST_TO_OUTBOX, RETRY, message)
            self.state.digests.append(str(event_data(receipt).get("message_id") or message["id"]))
            self.state.reported.extend(str(d.get("id")) for d in fresh)
        self.state.cycles = cycle
        if not self.ctx.is_replaying:
            logger.info("digest %s: cycle %d reported %d new documents", self.id, cycle, len(fresh))

    def finish(self) -> dict[str, Any]:
        self.status("stopped", next_cycle_at=None)
        if not self.ctx.is_replaying:
            logger.info("digest %s stopped after %d cycles", self.id, self.state.cycles)
        return {
            "topic": self.request.topic,
            "cycles": self.state.cycles,
            "digests": list(self.state.digests),
            "reported": list(self.state.reported),
        }


def run_digest(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    request = DigestRequest.from_dict(context.get_input() or {})
    return (yield from DigestWorkflow(context, request).run())


@bp.function_name(names.DIGEST_WORKFLOW)
@bp.orchestration_trigger(context_name="context")
def digest_workflow(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Orchestrator function registered as ``digest_workflow``."""
    return (yield from run_digest(context))
