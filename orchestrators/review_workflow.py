"""The ``review_workflow`` orchestration: a writer and a reviewer in a chain, looping until approval.

Input (``ReviewRequest``): ``{"brief", "max_rounds": 1..5 (3), "tenant"}``.

Round n: a ``writer`` run (child ``{id}:writer:{n}``) drafts the text for the brief (round 1) or revises
the last draft applying the last critique (later rounds); a ``reviewer`` run (child
``{id}:reviewer:{n}``) critiques that draft against the brief. A critique that starts with ``APPROVED``
ends the loop (``agents.workflow_prompts.is_approved``); otherwise the next round revises, until
``max_rounds`` rounds are done. A failed writer or reviewer run fails the workflow, naming the run.

Custom status: a ``WorkflowProgress`` with kind ``review``, state drafting → reviewing → revising →
reviewing ... → finished, progress ``{"round", "max_rounds", "approved"}``. Every child run's usage goes to
the ``usage`` entity.

Output::

    {"brief", "tenant", "approved": bool, "rounds": n, "drafts": [str] (n), "critiques": [str] (n),
     "final": the last draft, "usage": {"tokens", "runs"}}
"""

# No `from __future__ import annotations`: the Functions worker reads these functions' annotations.

import dataclasses
import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df

import shared_names as names
from agents.workflow_prompts import draft_prompt, is_approved, review_prompt, revise_prompt
from orchestrators._workflow_common import DEFAULT_TENANT, ChildOutcome, WorkflowProgress, run_child, usage_total
from orchestrators.run_contract import event_data

logger = logging.getLogger(__name__)

bp = df.Blueprint()

DEFAULT_MAX_ROUNDS = 3
MAX_ROUNDS = 5


@dataclass
class ReviewRequest:
    """The input of a review workflow."""

    brief: str
    max_rounds: int = DEFAULT_MAX_ROUNDS
    tenant: str = DEFAULT_TENANT

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "ReviewRequest":
        data = event_data(data)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class ReviewWorkflowError(Exception):
    """A writer or reviewer run failed, so the review cannot go on."""


def run_review(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    request = ReviewRequest.from_dict(context.get_input() or {})
    max_rounds = max(1, request.max_rounds)
    progress = WorkflowProgress(kind="review", progress={"round": 0, "max_rounds": max_rounds, "approved": False})
    outcomes: list[ChildOutcome] = []
    drafts: list[str] = []
    critiques: list[str] = []
    approved = False

    def step(role: str, n: int, text: str, state: str) -> Generator[Any, Any, str]:
        outcome = yield from run_child(context, progress, request.tenant, role, n, role, text, state=state)
        outcomes.append(outcome)
        if not outcome.ok:
            why = outcome.error or f"the run ended {outcome.status} without an answer"
            raise ReviewWorkflowError(f"the {role} run {outcome.run_id} (round {n}) failed: {why}")
        return outcome.output or ""

    for round_ in range(1, max_rounds + 1):
        progress.progress["round"] = round_
        if round_ == 1:
            draft = yield from step("writer", round_, draft_prompt(request.brief), "drafting")
        else:
            draft = yield from step("writer", round_, revise_prompt(request.brief, drafts[-1], critiques[-1]),
                                    "revising")
        drafts.append(draft)
        critique = yield from step("reviewer", round_, review_prompt(request.brief, draft), "reviewing")
        critiques.append(critique)
        if is_approved(critique):
            approved = True
            break

    progress.publish(context, "finished", approved=approved)
    if not context.is_replaying:
        logger.info("review workflow %s: %s after %d rounds", context.instance_id,
                    "approved" if approved else "not approved", len(drafts))
    return {
        "brief": request.brief,
        "tenant": request.tenant,
        "approved": approved,
        "rounds": len(drafts),
        "drafts": drafts,
        "critiques": critiques,
        "final": drafts[-1],
        "usage": usage_total(outcomes),
    }


@bp.function_name(names.REVIEW_WORKFLOW)
@bp.orchestration_trigger(context_name="context")
def review_workflow(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Orchestrator function registered as ``review_workflow``."""
    return (yield from run_review(context))
