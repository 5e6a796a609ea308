"""The ``publish_workflow`` orchestration: content is published once a named approver approves it.

The human-interaction pattern. Input (``PublishRequest``, validated by ``POST /api/workflows/publish``):
``{"content", "approvers": [str], "timeout_s", "reminder_s"?, "escalate_to"?, "tenant"?}``.

The workflow waits for the external event ``decision`` ``{"approver", "decision": "approve"|"reject",
"comment"?}`` raced against a durable timer of ``timeout_s``:

- the first decision by one of ``approvers`` settles it: ``approve`` publishes the content (a message to
  the outbox recipient ``publish``, idempotent per workflow), ``reject`` ends it unpublished;
- a decision by anyone else (or one the starter flagged ``"refused": true``) is refused: it is recorded
  in ``refused`` as ``{"approver", "at"}`` and the wait goes on. The orchestration checks the approver
  itself, so an event raised past the starter is refused all the same;
- when ``reminder_s`` passes without a decision, one reminder goes to the approvers through the outbox
  (message id ``{workflow id}:reminder``, so a replay cannot send it twice);
- when ``timeout_s`` passes without a decision, the workflow escalates (a message to ``escalate_to``;
  outcome ``escalated``, the content is not published) or, without ``escalate_to``, rejects it.

Output: ``{"content", "outcome": "published"|"rejected"|"escalated", "decided_by"?, "comment"?,
"timed_out", "reminders_sent", "refused": [{"approver", "at"}], "message_id"?}`` where ``message_id`` is
the outbox message that published or escalated it. The custom status is a WorkflowProgress (kind
``publish``, state ``waiting_for_decision`` → ``publishing``/``escalating`` → the outcome). The workflow
starts no agent runs, so it has no children and records no usage.

Deterministic: every time comes from ``context.current_utc_datetime``; the messages' ids from the
instance id.
"""

# No `from __future__ import annotations`: the Functions worker reads these functions' annotations.

import dataclasses
import logging
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

import shared_names as names
from orchestrators._workflow_common import WorkflowProgress
from orchestrators.run_contract import event_data

logger = logging.getLogger(__name__)

bp = df.Blueprint()

KIND = "publish"
PUBLISH_RECIPIENT = "publish"
DECISIONS = ("approve", "reject")
PREVIEW_CHARS = 200
OUTBOX_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)


@dataclass
class PublishRequest:
    """The input of a publish workflow."""

    content: str
    approvers: list[str]
    timeout_s: float
    reminder_s: float | None = None
    escalate_to: str | None = None
    tenant: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "PublishRequest":
        data = event_data(data)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Decision:
    """A decision by one of the approvers."""

    approver: str
    decision: str  # approve | reject
    comment: str | None = None


@dataclass(frozen=True)
class Refusal:
    """A decision by someone who may not decide."""

    approver: str


def judge(data: Any, approvers: list[str]) -> "Decision | Refusal | None":
    """What a ``decision`` event means for a workflow with these approvers; None when it is malformed."""
    data = event_data(data)
    approver, decision, comment = data.get("approver"), data.get("decision"), data.get("comment")
    if not isinstance(approver, str) or not approver:
        return None
    if data.get("refused") is True or approver not in approvers:
        return Refusal(approver)
    if decision not in DECISIONS:
        return None
    return Decision(approver, str(decision), comment if isinstance(comment, str) else None)


@dataclass
class PublishOutcome:
    """The output of a publish workflow."""

    content: str
    outcome: str = "pending"  # published | rejected | escalated
    decided_by: str | None = None
    comment: str | None = None
    timed_out: bool = False
    reminders_sent: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)
    message_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The output JSON: optional fields that are unset are left out."""
        data = dataclasses.asdict(self)
        return {k: v for k, v in data.items() if v is not None or k not in ("decided_by", "comment", "message_id")}


def _preview(content: str) -> str:
    return content if len(content) <= PREVIEW_CHARS else content[: PREVIEW_CHARS - 1].rstrip() + "…"


def reminder_text(workflow_id: str, request: PublishRequest, deadline: datetime) -> str:
    return (
        f"Reminder: publishing is waiting for your decision (workflow {workflow_id}). Approve or reject it "
        f"before {deadline.isoformat(timespec='seconds')}.\n\n{_preview(request.content)}"
    )


def escalation_text(workflow_id: str, request: PublishRequest) -> str:
    return (
        f"Escalation: none of {', '.join(request.approvers)} decided on publishing within "
        f"{request.timeout_s:g} s (workflow {workflow_id}); it was not published.\n\n{_preview(request.content)}"
    )


def _cancel(timer: Any) -> None:
    if timer is not None and not timer.is_completed:
        timer.cancel()


class PublishWorkflow:
    """One publish workflow. Its methods are generators yielding durable tasks."""

    def __init__(self, context: Any, request: PublishRequest) -> None:
        self.ctx = context
        self.id: str = context.instance_id
        self.request = request
        self.result = PublishOutcome(content=request.content)
        self.progress = WorkflowProgress(kind=KIND)
        started: datetime = context.current_utc_datetime
        self.deadline_at = started + timedelta(seconds=float(request.timeout_s))
        self.reminder_at = started + timedelta(seconds=float(request.reminder_s)) if request.reminder_s else None

    def status(self, state: str) -> None:
        self.progress.publish(
            self.ctx,
            state,
            approvers=list(self.request.approvers),
            deadline=self.deadline_at.isoformat(),
            reminder_at=self.reminder_at.isoformat() if self.reminder_at else None,
            reminders_sent=self.result.reminders_sent,
            refused=len(self.result.refused),
        )

    def post(self, key: str, to: str, text: str) -> Generator[Any, Any, str]:
        """Send a message through the outbox, once per ``{workflow id}:{key}``; returns its message id."""
        message = {"id": f"{self.id}:{key}", "to": to, "text": text}
        receipt = yield self.ctx.call_activity_with_retry(names.POST_TO_OUTBOX, OUTBOX_RETRY, message)
        return str(event_data(receipt).get("message_id") or message["id"])

    def run(self) -> Generator[Any, Any, dict[str, Any]]:
        deadline = self.ctx.create_timer(self.deadline_at)
        reminder = self.ctx.create_timer(self.reminder_at) if self.reminder_at else None
        decision_task = self.ctx.wait_for_external_event(names.DECISION_EVENT)
        decided: Decision | None = None
        while decided is None:
            self.status("waiting_for_decision")
            watched = [decision_task, deadline] + ([reminder] if reminder is not None else [])
            winner = yield self.ctx.task_any(watched)
            if winner is decision_task:
                verdict = judge(decision_task.result, self.request.approvers)
                decision_task = self.ctx.wait_for_external_event(names.DECISION_EVENT)
                if isinstance(verdict, Refusal):
                    at = self.ctx.current_utc_datetime.isoformat()
                    self.result.refused.append({"approver": verdict.approver, "at": at})
                    self.log("refused a decision by %s, who is not an approver", verdict.approver)
                elif isinstance(verdict, Decision):
                    decided = verdict
                else:
                    self.log("ignored a malformed %s event", names.DECISION_EVENT)
            elif reminder is not None and winner is reminder:
                reminder = None
                self.status("sending_reminder")
                text = reminder_text(self.id, self.request, self.deadline_at)
                yield from self.post("reminder", ", ".join(self.request.approvers), text)
                self.result.reminders_sent += 1
            else:
                _cancel(reminder)
                return (yield from self.time_out())
        _cancel(deadline)
        _cancel(reminder)
        return (yield from self.settle(decided))

    def settle(self, decided: Decision) -> Generator[Any, Any, dict[str, Any]]:
        self.result.decided_by, self.result.comment = decided.approver, decided.comment
        if decided.decision == "approve":
            self.status("publishing")
            self.result.message_id = yield from self.post("publish", PUBLISH_RECIPIENT, self.request.content)
            self.result.outcome = "published"
        else:
            self.result.outcome = "rejected"
        return self.finish()

    def time_out(self) -> Generator[Any, Any, dict[str, Any]]:
        self.result.timed_out = True
        if self.request.escalate_to:
            self.status("escalating")
            text = escalation_text(self.id, self.request)
            self.result.message_id = yield from self.post("escalation", self.request.escalate_to, text)
            self.result.outcome = "escalated"
        else:
            self.result.outcome = "rejected"
            self.result.comment = f"no decision within {self.request.timeout_s:g} s"
        return self.finish()

    def finish(self) -> dict[str, Any]:
        self.status(self.result.outcome)
        self.log("ended %s", self.result.outcome)
        return self.result.to_dict()

    def log(self, message: str, *args: Any) -> None:
        if not self.ctx.is_replaying:
            logger.info("publish workflow %s: " + message, self.id, *args)


def run_publish(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    request = PublishRequest.from_dict(context.get_input() or {})
    return (yield from PublishWorkflow(context, request).run())


@bp.function_name(names.PUBLISH_WORKFLOW)
@bp.orchestration_trigger(context_name="context")
def publish_workflow(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Orchestrator function registered as ``publish_workflow``."""
    return (yield from run_publish(context))
