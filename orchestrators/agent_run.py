"""The ``agent_run`` orchestration: one agent run, every model call and tool call an activity.

A crash resumes from the last finished step and never repeats it, because each step's result is in
the orchestration's history. Around the steps of ``agents.steps`` (shared with the plain-Python
loop in ``agents.loop``) this adds what only a durable run can do:

- retries with exponential backoff and deterministic jitter (``retry_policy``), never for errors a
  retry cannot cure, and a per-step timeout;
- human approval of sensitive tool calls (state ``awaiting_approval``), rejected on timeout;
- steering: new input is added before the next model call, and a model call in flight when it
  arrives is superseded;
- cooperative cancel at step boundaries; token budgets per run and per session;
- an event per step, appended to the ``run_log`` entity for clients following the run live;
- continue-as-new every few turns, carrying the conversation, so replays stay short.

Deterministic: time comes from ``context.current_utc_datetime``, jitter from hashes, ids from the run.
"""

# No `from __future__ import annotations`: the Functions worker reads these functions' annotations.

import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

import shared_names as names
from agents.catalogue import AgentSpec, get_agent
from agents.errors import UnknownAgentError
from agents.messages import ChatMessage, ModelResponse, ToolCall, Usage, add_usage, user_message, zero_usage
from agents.steps import (
    ToolOutcome,
    check_tool_call,
    is_final,
    needs_approval,
    rejected_outcome,
    start_messages,
    tool_message,
)
from agents.tools.builtin import builtin_registry
from orchestrators.retry_policy import RetryPolicy, policy_named
from orchestrators.run_contract import (
    PendingApproval,
    RunProgress,
    RunRequest,
    RunResult,
    StepFailure,
    event_data,
    parse_failure,
)

logger = logging.getLogger(__name__)

bp = df.Blueprint()

# Turns per execution before the run continues as new with its conversation: bounds replay cost.
TURNS_PER_EXECUTION = 6
_REGISTRY = builtin_registry()  # schemas and validation only: pure, safe in an orchestrator


def _failed(task: Any) -> bool:
    return task.state is TaskState.FAILED


def _cancel(timer: Any) -> None:
    """Cancel a timer that is no longer needed (the SDK refuses to cancel a fired one)."""
    if not timer.is_completed:
        timer.cancel()


class AgentRunError(Exception):
    """The run failed; the message says which step and why."""


class _Stopped(Exception):
    """A cancel arrived: the run ends as ``cancelled`` at this boundary."""


class _Steered(Exception):
    """New input arrived while a model call was in flight: that call is superseded."""


class AgentRun:
    """One execution of a run. Its methods are generators yielding durable tasks."""

    def __init__(self, context: Any, request: RunRequest) -> None:
        self.ctx = context
        self.request = request
        self.run_id: str = context.instance_id
        try:
            spec = get_agent(request.agent)
        except UnknownAgentError as exc:
            raise AgentRunError(str(exc)) from exc
        if request.max_turns:
            spec = spec.with_limits(max_turns=request.max_turns)
        self.spec: AgentSpec = spec
        self.policy: RetryPolicy = policy_named(request.retry)
        carried = request.carried or {}
        self.history_len: int = carried.get("history_len", len(request.history))
        self.messages: list[ChatMessage] = carried.get("messages") or start_messages(request.input, request.history)
        self.turns: int = carried.get("turns", 0)
        self.usage: Usage = carried.get("usage") or zero_usage()
        self.next_event_id: int = carried.get("next_event_id", 1)
        self.progress = RunProgress(agent=spec.name, session_id=request.session_id, tags=request.tags,
                                    turns=self.turns, usage=self.usage)
        self._events: list[dict[str, Any]] = []
        self.cancel_task = context.wait_for_external_event(names.CANCEL_EVENT)
        self.steer_task = context.wait_for_external_event(names.STEER_EVENT)
        self.approval_task = context.wait_for_external_event(names.APPROVAL_EVENT)

    # --- events and status ------------------------------------------------------------------------

    def emit(self, kind: str, **data: Any) -> None:
        event = {"id": self.next_event_id, "type": kind, "at": self.ctx.current_utc_datetime.isoformat(),
                 "data": data}
        self.next_event_id += 1
        self._events.append(event)

    def publish(self, **changes: Any) -> None:
        """Send buffered events to the run log and refresh the custom status."""
        if self._events:
            self.ctx.signal_entity(df.EntityId(names.RUN_LOG_ENTITY, self.run_id), "append", self._events)
            self._events = []
        for key, value in changes.items():
            setattr(self.progress, key, value)
        self.progress.turns, self.progress.usage = self.turns, self.usage
        self.progress.event_count = self.next_event_id - 1
        self.ctx.set_custom_status(self.progress.to_dict())

    def result(self, status: str, output: str | None) -> dict[str, Any]:
        return RunResult(status=status, output=output, turns=self.turns, usage=self.usage,
                         messages=self.messages[self.history_len:]).to_dict()

    # --- boundaries -------------------------------------------------------------------------------

    def check_boundary(self) -> None:
        """At a step boundary: a cancel stops the run; steering input joins the conversation."""
        if self.cancel_task.is_completed:
            raise _Stopped(event_data(self.cancel_task.result).get("reason"))
        while self.steer_task.is_completed:
            text = str(event_data(self.steer_task.result).get("input") or "").strip()
            self.steer_task = self.ctx.wait_for_external_event(names.STEER_EVENT)
            if text:
                self.messages.append(user_message(text))
                self.emit("steered", input=text)

    def wait(self, tasks: list[Any], *, steerable: bool = False) -> Generator[Any, Any, Any]:
        """Wait for the first of ``tasks``, a cancel or (when steerable) steering input."""
        watched = [*tasks, self.cancel_task] + ([self.steer_task] if steerable else [])
        winner = yield self.ctx.task_any(watched)
        if winner is self.cancel_task:
            raise _Stopped(event_data(self.cancel_task.result).get("reason"))
        if steerable and winner is self.steer_task:
            raise _Steered()
        return winner

    def sleep(self, seconds: float) -> Generator[Any, Any, None]:
        timer = self.ctx.create_timer(self.ctx.current_utc_datetime + timedelta(seconds=seconds))
        yield from self.wait([timer])

    # --- steps ------------------------------------------------------------------------------------

    def step_with_retry(self, step: str, schedule: Any, *, steerable: bool = False) -> Generator[Any, Any, Any]:
        """Run one activity with the run's retry policy and the agent's step timeout."""
        attempt = 1
        while True:
            task = schedule()
            deadline = self.ctx.create_timer(self.ctx.current_utc_datetime
                                              + timedelta(seconds=self.spec.limits.step_timeout_s))
            try:
                winner = yield from self.wait([task, deadline], steerable=steerable)
            except (_Steered, _Stopped):
                _cancel(deadline)
                raise
            if winner is task:
                _cancel(deadline)
                if not _failed(task):
                    return task.result
                failure = parse_failure(str(task.result))
            else:
                failure = StepFailure(f"timed out after {self.spec.limits.step_timeout_s:g} s", retryable=True)
            if not failure.retryable or attempt >= self.policy.max_attempts:
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise AgentRunError(f"{step} failed{tries}: {failure.message}")
            delay = self.policy.delay_s(attempt, f"{self.run_id}:{step}", failure.retry_after_s)
            self.emit("retry_scheduled", step=step, attempt=attempt, delay_s=delay, error=failure.message)
            self.publish(step="retry_wait")
            yield from self.sleep(delay)
            attempt += 1

    def model_step(self) -> Generator[Any, Any, ModelResponse]:
        turn = self.turns + 1
        self.emit("model_call_started", turn=turn)
        self.publish(step="model", state="running")
        payload = {"run_id": self.run_id, "agent": self.spec.name, "messages": self.messages, "turn": turn}
        raw = yield from self.step_with_retry(
            f"model call at turn {turn}", lambda: self.ctx.call_activity(names.CALL_MODEL, payload), steerable=True)
        response = ModelResponse.from_dict(raw)
        self.turns = turn
        self.usage = add_usage(self.usage, response.usage)
        self.emit("model_call_finished", turn=turn, usage=response.usage, finish_reason=response.finish_reason)
        return response

    def approvals(self, calls: list[ToolCall]) -> Generator[Any, Any, dict[str, tuple[str, str | None]]]:
        """Ask a human about ``calls``; returns call id → (decision, comment). Unanswered calls time out."""
        pending = {c["id"]: c for c in calls}
        decided: dict[str, tuple[str, str | None]] = {}
        self.emit("approval_requested", calls=[{"call_id": c["id"], "tool": c["name"], "arguments": c["arguments"]}
                                               for c in calls])
        deadline = self.ctx.create_timer(self.ctx.current_utc_datetime
                                          + timedelta(seconds=self.request.approval_timeout_s))
        while pending:
            self.publish(state="awaiting_approval", step="approval", pending_approvals=[
                PendingApproval(c["id"], c["name"], c["arguments"]) for c in pending.values()])
            winner = yield from self.wait([self.approval_task, deadline])
            if winner is deadline:
                for call_id in pending:
                    decided[call_id] = ("reject", "no decision before the approval timeout")
                    self.emit("approval_decided", call_id=call_id, decision="reject", comment="timed out")
                break
            data = event_data(self.approval_task.result)
            self.approval_task = self.ctx.wait_for_external_event(names.APPROVAL_EVENT)
            comment = data.get("comment")
            for call_id, decision in (data.get("decisions") or {}).items():
                if call_id in pending and decision in ("approve", "reject"):
                    decided[call_id] = (decision, comment)
                    del pending[call_id]
                    self.emit("approval_decided", call_id=call_id, decision=decision, comment=comment)
        _cancel(deadline)
        self.publish(state="running", pending_approvals=[])
        return decided

    def tool_step(self, calls: list[ToolCall]) -> Generator[Any, Any, None]:
        outcomes: dict[str, ToolOutcome] = {}
        runnable: list[ToolCall] = []
        for call in calls:
            invalid = check_tool_call(self.spec, _REGISTRY, call)
            if invalid is not None:
                outcomes[call["id"]] = invalid
            else:
                runnable.append(call)
        asking = [c for c in runnable if needs_approval(self.spec, _REGISTRY, c)]
        if asking:
            decisions = yield from self.approvals(asking)
            for call in asking:
                decision, comment = decisions.get(call["id"], ("reject", None))
                if decision != "approve":
                    outcomes[call["id"]] = rejected_outcome(call, comment)
            runnable = [c for c in runnable if c["id"] not in outcomes]
        for call in runnable:
            self.emit("tool_call_started", call_id=call["id"], tool=call["name"], arguments=call["arguments"])
        self.publish(step="tools")
        results = yield from self.run_tools(runnable)
        outcomes.update(results)
        for call in calls:
            outcome = outcomes[call["id"]]
            if call["id"] in results:
                self.emit("tool_call_finished", call_id=call["id"], tool=call["name"], ok=outcome.ok,
                          error=outcome.error)
            self.messages.append(tool_message(outcome))

    def run_tools(self, calls: list[ToolCall]) -> Generator[Any, Any, dict[str, ToolOutcome]]:
        """Fan the calls out in parallel; failed ones are retried together after the policy's delay."""
        done: dict[str, ToolOutcome] = {}
        remaining = list(calls)
        attempt = 1
        while remaining:
            tasks = {c["id"]: self.ctx.call_activity(names.RUN_TOOL, {"run_id": self.run_id, "agent": self.spec.name,
                                                                       "call": c}) for c in remaining}
            open_tasks = dict(tasks)
            failures: dict[str, StepFailure] = {}
            while open_tasks:
                winner = yield from self.wait(list(open_tasks.values()))
                call_id = next(k for k, t in open_tasks.items() if t is winner)
                del open_tasks[call_id]
                if _failed(winner):
                    failures[call_id] = parse_failure(str(winner.result))
                else:
                    done[call_id] = ToolOutcome.from_dict(winner.result)
            remaining = [c for c in remaining if c["id"] in failures]
            if not remaining:
                break
            worst = next(iter(failures.values()))
            if attempt >= self.policy.max_attempts or not all(f.retryable for f in failures.values()):
                names_ = ", ".join(f"{c['name']} ({c['id']})" for c in remaining)
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise AgentRunError(f"tool call {names_} at turn {self.turns} failed{tries}: {worst.message}")
            delay = self.policy.delay_s(attempt, f"{self.run_id}:tools:{self.turns}", worst.retry_after_s)
            self.emit("retry_scheduled", step=f"tool calls at turn {self.turns}", attempt=attempt, delay_s=delay,
                      error=worst.message)
            self.publish(step="retry_wait")
            yield from self.sleep(delay)
            attempt += 1
        return done

    def over_budget(self) -> bool:
        if self.usage["total_tokens"] > self.spec.limits.token_budget:
            return True
        budget, used = self.request.session_token_budget, self.request.session_usage
        return bool(budget and used and used["total_tokens"] + self.usage["total_tokens"] > budget)

    # --- the run ----------------------------------------------------------------------------------

    def run(self) -> Generator[Any, Any, dict[str, Any]]:
        if self.request.carried is None:
            self.emit("run_started", agent=self.spec.name, input=self.request.input,
                      session_id=self.request.session_id)
        turns_at_start = self.turns
        try:
            while True:
                self.check_boundary()
                if self.turns >= self.spec.limits.max_turns:
                    raise AgentRunError(f"no final answer after {self.turns} model calls (max_turns "
                                        f"{self.spec.limits.max_turns})")
                if self.turns - turns_at_start >= TURNS_PER_EXECUTION:
                    return self.continue_as_new()
                try:
                    response = yield from self.model_step()
                except _Steered:
                    continue  # the superseded call's answer is ignored; the input joins at the boundary
                self.messages.append(response.message)
                if self.over_budget():
                    output = response.text if is_final(response) else None
                    return self.finish("budget_exceeded", output)
                if is_final(response):
                    return self.finish("completed", response.text)
                yield from self.tool_step(response.tool_calls)
        except _Stopped as stop:
            self.emit("cancelled", reason=stop.args[0] if stop.args else None)
            last = next((m.get("content") for m in reversed(self.messages) if m.get("role") == "assistant"
                         and m.get("content")), None)
            return self.finish("cancelled", last)
        except AgentRunError as failure:
            self.emit("run_failed", error=str(failure))
            self.publish(state="running")
            raise

    def finish(self, status: str, output: str | None) -> dict[str, Any]:
        self.emit("run_finished", status=status, output=output)
        self.publish(state="running", pending_approvals=[])
        if not self.ctx.is_replaying:
            logger.info("agent run %s ended %s after %d turns", self.run_id, status, self.turns)
        return self.result(status, output)

    def continue_as_new(self) -> dict[str, Any]:
        self.publish()
        carried = {"messages": self.messages, "turns": self.turns, "usage": self.usage,
                   "next_event_id": self.next_event_id, "history_len": self.history_len}
        request = RunRequest.from_dict({**self.request.to_dict(), "carried": carried})
        self.ctx.continue_as_new(request.to_dict())
        return {}


def run_agent(context: Any) -> Generator[Any, Any, dict[str, Any]]:
    request = RunRequest.from_dict(context.get_input() or {})
    return (yield from AgentRun(context, request).run())


@bp.function_name(names.AGENT_RUN)
@bp.orchestration_trigger(context_name="context")
def agent_run(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Orchestrator function registered as ``agent_run``."""
    return (yield from run_agent(context))
