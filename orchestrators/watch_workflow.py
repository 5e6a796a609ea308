"""The ``watch_workflow`` orchestration: search the knowledge base until a match appears or the watch expires.

The monitor pattern. Input (``WatchRequest``, validated by ``POST /api/workflows/watch``): ``{"query",
"interval_s", "expires_s", "min_score"?}``. Every ``interval_s`` seconds (a durable timer) the activity
``search_knowledge_base`` searches the knowledge base for ``query``; the watch ends as soon as the best
document scores above ``min_score`` (default 0: any document that matches a word of the query), or when
``expires_s`` seconds have passed since it started. The knowledge base is read afresh at every check, so a
document added to the folder while the watch runs is found.

History stays bounded: every ``CHECKS_PER_EXECUTION`` checks the workflow continues as new, carrying its
deadline and its count of checks (``carried``), so a watch of days replays a few dozen events, not
thousands.

Output: ``{"query", "found", "match"?: {"id", "title", "snippet", "score"}, "checks", "expired"}``. The
custom status is a WorkflowProgress (kind ``watch``, state ``checking`` or ``waiting``, progress
``{"checks", "expires_at", "next_check_at", "best_score"}``); the watch starts no agent runs.

Deterministic: the deadline is computed once from ``context.current_utc_datetime`` and carried.
"""

# No `from __future__ import annotations`: the Functions worker reads these functions' annotations.

import dataclasses
import logging
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

import shared_names as names
from orchestrators._workflow_common import WorkflowProgress
from orchestrators.run_contract import event_data

logger = logging.getLogger(__name__)

bp = df.Blueprint()

KIND = "watch"
CHECKS_PER_EXECUTION = 10
DEFAULT_MIN_SCORE = 0.0
SEARCH_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)


@dataclass
class WatchRequest:
    """The input of a watch; ``carried`` is its state across continue-as-new."""

    query: str
    interval_s: float
    expires_s: float
    min_score: float = DEFAULT_MIN_SCORE
    carried: dict[str, Any] | None = None  # {"checks", "expires_at", "best_score"}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "WatchRequest":
        data = event_data(data)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def first_match(results: Any, min_score: float) -> dict[str, Any] | None:
    """The best search result that scores above ``min_score``, as ``{id, title, snippet, score}``."""
    for hit in results if isinstance(results, list) else []:
        if isinstance(hit, dict) and float(hit.get("score") or 0.0) > min_score:
            return {k: hit.get(k) for k in ("id", "title", "snippet", "score")}
    return None


def best_score(results: Any) -> float | None:
    scores = [float(h.get("score") or 0.0) for h in results if isinstance(h, dict)] if isinstance(results, list) else []
    return max(scores) if scores else None


def next_check(now: datetime, interval_s: float, expires_at: datetime) -> datetime:
    """When to check next: one interval on, but never after the deadline."""
    return min(now + timedelta(seconds=interval_s), expires_at)


class WatchWorkflow:
    """One execution of a watch. Its methods are generators yielding durable tasks."""

    def __init__(self, context: Any, request: WatchRequest) -> None:
        self.ctx = context
        self.id: str = context.instance_id
        self.request = request
        carried = request.carried or {}
        now: datetime = context.current_utc_datetime
        self.expires_at = (
            datetime.fromisoformat(carried["expires_at"])
            if carried.get("expires_at")
            else now + timedelta(seconds=float(request.expires_s))
        )
        self.checks: int = int(carried.get("checks", 0))
        self.best: float | None = carried.get("best_score")
        self.progress = WorkflowProgress(kind=KIND)

    def status(self, state: str, next_check_at: datetime | None = None) -> None:
        self.progress.publish(
            self.ctx,
            state,
            checks=self.checks,
            expires_at=self.expires_at.isoformat(),
            next_check_at=next_check_at.isoformat() if next_check_at else None,
            best_score=self.best,
        )

    def output(self, match: dict[str, Any] | None) -> dict[str, Any]:
        result: dict[str, Any] = {"query": self.request.query, "found": match is not None}
        if match is not None:
            result["match"] = match
        result.update(checks=self.checks, expired=match is None)
        self.status("found" if match else "expired")
        if not self.ctx.is_replaying:
            logger.info("watch %s ended after %d checks: %s", self.id, self.checks, "found" if match else "expired")
        return result

    def run(self) -> Generator[Any, Any, dict[str, Any]]:
        checks_here = 0
        while True:
            if self.ctx.current_utc_datetime >= self.expires_at:
                return self.output(None)
            if checks_here >= CHECKS_PER_EXECUTION:
                return self.continue_as_new()
            self.status("checking")
            found = yield self.ctx.call_activity_with_retry(
                names.SEARCH_KNOWLEDGE_BASE, SEARCH_RETRY, {"query": self.request.query, "top_k": 1}
            )
            results = event_data(found).get("results")
            self.checks += 1
            checks_here += 1
            score = best_score(results)
            if score is not None and (self.best is None or score > self.best):
                self.best = score
            match = first_match(results, float(self.request.min_score))
            if match is not None:
                return self.output(match)
            at = next_check(self.ctx.current_utc_datetime, float(self.request.interval_s), self.expires_at)
            self.status("waiting", at)
            yield self.ctx.create_timer(at)

    def continue_as_new(self) -> dict[str, Any]:
        carried = {"checks": self.checks, "expires_at": self.expires_at.isoformat(), "best_score": self.best}
        self.ctx.continue_as_new(dataclasses.replace(self.request, carried=carried).to_dict())
        return {}


def run_watch(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    request = WatchRequest.from_dict(context.get_input() or {})
    return (yield from WatchWorkflow(context, request).run())


@bp.function_name(names.WATCH_WORKFLOW)
@bp.orchestration_trigger(context_name="context")
def watch_workflow(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Orchestrator function registered as ``watch_workflow``."""
    return (yield from run_watch(context))
