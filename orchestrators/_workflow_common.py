"""What every agent workflow orchestration shares: its progress, its child runs and their usage.

- ``WorkflowProgress`` is the custom status of every workflow (``{"kind", "state", "progress",
  "children": [{"run_id", "role"}]}``), which ``GET /api/workflows/{id}`` reads whatever the kind.
- A child agent run is the sub-orchestration ``agent_run`` with the instance id
  ``child_run_id(workflow_id, role, n)`` = ``"{workflow_id}:{role}:{n}"``, so it is an ordinary run
  (``GET /api/runs/{id}``, its events) and a replay asks for the same instance again. Its tags name the
  workflow and the role (``GET /api/runs?tag=workflow:{id}`` lists a workflow's runs).
- A failed child raises nothing in the workflow: ``child_outcome`` turns the finished task into a
  ``ChildOutcome`` (``ok`` False, ``error`` = the run's failure message), so a workflow decides itself
  whether a failure sinks it.
- After each child run ``record_usage`` signals ``add`` ``{"tokens", "runs": 1}`` to the ``usage`` entity
  keys ``agent:{agent}`` and ``tenant:{tenant}``. A failed run counts as a run with 0 tokens: its parent
  only learns its failure message, not the tokens it used before failing.

Deterministic: nothing here reads a clock, the environment or a random source.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

import shared_names as names
from agents.messages import ChatMessage, Usage, add_usage, zero_usage
from orchestrators.run_contract import RunRequest, event_data

WORKFLOW_KINDS = ("research", "review", "publish", "watch", "digest")
DEFAULT_TENANT = "default"
# Children kept in the custom status; an eternal workflow would otherwise grow it without bound.
MAX_CHILDREN_SHOWN = 100

_HOST_PREFIX = re.compile(r"^(?:Orchestrator|Sub-orchestration|Activity) function '[^']*' failed:\s*")
_EXCEPTION_PREFIX = re.compile(r"^\w*Error:\s*")


def orchestration_name(kind: str) -> str:
    """The orchestration of a workflow kind: ``research`` → ``research_workflow``."""
    return f"{kind}_workflow"


def kind_of(orchestration: str | None) -> str | None:
    """The workflow kind of an orchestration name, None when it is not a workflow."""
    if orchestration and orchestration.endswith("_workflow"):
        kind = orchestration[: -len("_workflow")]
        return kind if kind in WORKFLOW_KINDS else None
    return None


def child_run_id(workflow_id: str, role: str, n: int) -> str:
    """The instance id of the ``n``-th (1-based) child run of ``role`` in workflow ``workflow_id``."""
    return f"{workflow_id}:{role}:{n}"


def agent_scope(agent: str) -> str:
    """The usage entity key of an agent."""
    return f"agent:{agent}"


def tenant_scope(tenant: str) -> str:
    """The usage entity key of a tenant."""
    return f"tenant:{tenant}"


@dataclass
class WorkflowProgress:
    """The custom status of a workflow orchestration.

    Attributes:
        kind: research | review | publish | watch | digest.
        state: Free text saying what the workflow does now ("planning", "waiting_for_decision" ...).
        progress: Kind-specific figures, e.g. ``{"done": 2, "total": 4}``.
        children: The child runs started so far (the last ``MAX_CHILDREN_SHOWN``), oldest first.
    """

    kind: str
    state: str = "starting"
    progress: dict[str, Any] = field(default_factory=dict)
    children: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def add_child(self, run_id: str, role: str) -> None:
        if not any(c["run_id"] == run_id for c in self.children):
            self.children.append({"run_id": run_id, "role": role})
            del self.children[:-MAX_CHILDREN_SHOWN]

    def publish(self, context: Any, state: str | None = None, **progress: Any) -> None:
        """Set ``state`` and update ``progress``, then make this the orchestration's custom status."""
        if state is not None:
            self.state = state
        self.progress.update(progress)
        context.set_custom_status(self.to_dict())


@dataclass
class ChildOutcome:
    """How a child run ended, as its parent saw it.

    Attributes:
        run_id: The child's instance id.
        role: Its role in the workflow (planner, researcher, writer, reviewer ...).
        agent: The agent it ran.
        status: completed | cancelled | budget_exceeded (the run's own status), or failed.
        output: The run's answer (None when it gave none).
        usage: Tokens the run used (zero for a failed run: see the module docstring).
        messages: What the run added to its conversation (tool calls and results included).
        error: The failure message of a failed run, or the error a finished run reported.
    """

    run_id: str
    role: str
    agent: str
    status: str
    output: str | None = None
    usage: Usage = field(default_factory=zero_usage)
    messages: list[ChatMessage] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the run completed with an answer."""
        return self.status == "completed" and bool(self.output)


def failure_message(error: Any) -> str:
    """The user-facing text of a failed child as its parent sees it: no host prefix, no details tail."""
    text = str(error).split(" \n", 1)[0].strip()
    text = _HOST_PREFIX.sub("", text).strip()
    return _EXCEPTION_PREFIX.sub("", text, count=1).strip() or "the run failed"


def start_agent_run(
    context: Any,
    role: str,
    n: int,
    agent: str,
    text: str,
    *,
    max_turns: int | None = None,
    retry: str | None = None,
) -> tuple[str, Any]:
    """Start child run ``n`` of ``role`` (agent ``agent``, input ``text``); its run id and its task."""
    run_id = child_run_id(context.instance_id, role, n)
    request = RunRequest(
        agent=agent,
        input=text,
        tags={"workflow": context.instance_id, "workflow_role": role},
        max_turns=max_turns,
        retry=retry,
    )
    return run_id, context.call_sub_orchestrator(names.AGENT_RUN, request.to_dict(), run_id)


def child_outcome(task: Any, run_id: str, role: str, agent: str) -> ChildOutcome:
    """The outcome of a finished child task (see ``ChildOutcome``)."""
    if task.state is TaskState.FAILED:
        error = failure_message(task.result)
        status = "terminated" if "was terminated" in error else "failed"
        return ChildOutcome(run_id=run_id, role=role, agent=agent, status=status, error=error)
    result = event_data(task.result)
    output = result.get("output")
    return ChildOutcome(
        run_id=run_id,
        role=role,
        agent=agent,
        status=str(result.get("status") or "completed"),
        output=output if isinstance(output, str) else None,
        usage=add_usage(zero_usage(), result.get("usage") or {}),
        messages=list(result.get("messages") or []),
        error=result.get("error"),
    )


def record_usage(context: Any, tenant: str, outcome: ChildOutcome) -> None:
    """Signal the child's tokens and one run to the usage of its agent and of the tenant."""
    amount = {"tokens": int(outcome.usage["total_tokens"]), "runs": 1}
    for scope in (agent_scope(outcome.agent), tenant_scope(tenant)):
        context.signal_entity(df.EntityId(names.USAGE_ENTITY, scope), "add", amount)


def run_child(
    context: Any,
    progress: WorkflowProgress,
    tenant: str,
    role: str,
    n: int,
    agent: str,
    text: str,
    *,
    state: str | None = None,
    max_turns: int | None = None,
) -> Generator[Any, Any, ChildOutcome]:
    """Run one child to its end: start it, show it in the progress, wait, record its usage; its outcome.

    A failed child does not raise: the outcome says it failed.
    """
    run_id, task = start_agent_run(context, role, n, agent, text, max_turns=max_turns)
    progress.add_child(run_id, role)
    progress.publish(context, state)
    yield context.task_any([task])  # a failed task completes the "any" instead of raising here
    outcome = child_outcome(task, run_id, role, agent)
    record_usage(context, tenant, outcome)
    return outcome


def usage_total(outcomes: Sequence[ChildOutcome]) -> dict[str, int]:
    """``{"tokens", "runs"}`` of a workflow's children, as the usage entity counted them."""
    return {"tokens": sum(int(o.usage["total_tokens"]) for o in outcomes), "runs": len(outcomes)}
