"""The reference agent loop in plain Python: model call, tools, results back, until an answer or a limit.

This is the semantics the durable run orchestration must match (it uses the same `agents.steps`), and
the baseline the benchmark compares it with. What it does not have is what the orchestration adds: no
checkpoints (a crash loses the run), no retries (a failed model call fails the run), no steering or
cancellation, and approval is a callback answered on the spot rather than a durable wait.

Outcomes, in the order they are checked after each model call:
- usage above the token budget: `budget_exceeded` (output: the answer, if that call gave one);
- no tool calls: `completed` with the response text as output;
- otherwise the tool calls run (concurrently, results in call order) and the next turn starts;
- `max_turns` model calls without a final answer: `failed`;
- a model call that raises `ModelCallError` or exceeds the step timeout, or a tool that raises anything
  but a `ToolError`: `failed`, with an error naming the step and the cause.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.catalogue import AgentSpec
from agents.errors import ModelCallError
from agents.messages import ChatMessage, ModelResponse, ToolCall, Usage, add_usage, zero_usage
from agents.models.base import ModelClient
from agents.steps import (
    ToolOutcome,
    apply_tool_call,
    build_model_request,
    check_tool_call,
    idempotency_key,
    needs_approval,
    over_budget,
    rejected_outcome,
    start_messages,
    tool_message,
)
from agents.tools.registry import ToolRegistry

logger = logging.getLogger(__name__)

LoopStatus = Literal["completed", "failed", "budget_exceeded"]
Approver = Callable[[ToolCall], bool | Awaitable[bool]]


@dataclass
class LoopResult:
    """How a run of the loop ended.

    Attributes:
        status: "completed", "failed" or "budget_exceeded".
        output: The final answer (None when the run ended without one).
        messages: The conversation without the system message: history, the input, every model message and
            tool result; what a session keeps for its next turn.
        turns: Model calls made.
        usage: Tokens used by this run's model calls.
        tool_outcomes: Every tool call's outcome, in order.
        error: Why the run failed (None unless `status` is "failed").
    """

    status: LoopStatus
    output: str | None
    messages: list[ChatMessage]
    turns: int
    usage: Usage
    tool_outcomes: list[ToolOutcome] = field(default_factory=list)
    error: str | None = None

    @property
    def steps(self) -> int:
        """Model calls plus tool calls: the unit the benchmark reports per-step overhead in."""
        return self.turns + len(self.tool_outcomes)


async def run_agent_loop(
    spec: AgentSpec,
    user_input: str,
    model: ModelClient,
    tools: ToolRegistry,
    history: Sequence[ChatMessage] | None = None,
    *,
    approve: Approver | None = None,
    run_id: str | None = None,
) -> LoopResult:
    """Run `spec` on `user_input` until it answers or reaches a limit.

    Args:
        spec: The agent.
        user_input: The user's message.
        model: The model client.
        tools: The tool registry, bound to its services.
        history: Earlier turns of the conversation (system messages are ignored).
        approve: Decides each call that needs approval (sync or async); None rejects them all.
        run_id: Scopes the idempotency keys of tool side effects; a fresh one per call when None.
    """
    run = run_id or uuid.uuid4().hex
    messages = start_messages(user_input, history)
    usage = zero_usage()
    outcomes: list[ToolOutcome] = []
    timeout = spec.limits.step_timeout_s

    def result(status: LoopStatus, output: str | None, turns: int, error: str | None = None) -> LoopResult:
        return LoopResult(status, output, messages, turns, usage, outcomes, error)

    for turn in range(1, spec.limits.max_turns + 1):
        request = build_model_request(spec, messages, tools)
        try:
            response: ModelResponse = await asyncio.wait_for(model.complete(request), timeout)
        except ModelCallError as exc:
            return result("failed", None, turn, f"model call {turn} failed: {exc}")
        except asyncio.TimeoutError:
            return result("failed", None, turn, f"model call {turn} timed out after {timeout:g} s")
        usage = add_usage(usage, response.usage)
        messages.append(response.message)
        calls = response.tool_calls
        if over_budget(spec, usage):
            return result("budget_exceeded", None if calls else response.text, turn)
        if not calls:
            return result("completed", response.text, turn)

        async def settle(call: ToolCall) -> ToolOutcome:
            invalid = check_tool_call(spec, tools, call)
            if invalid is not None:
                return invalid
            if needs_approval(spec, tools, call) and not await _decide(approve, call):
                return rejected_outcome(call)
            return await asyncio.wait_for(
                apply_tool_call(spec, tools, call, idempotency_key=idempotency_key(run, call["id"])), timeout
            )

        settled = await asyncio.gather(*(settle(call) for call in calls), return_exceptions=True)
        for call, item in zip(calls, settled, strict=True):
            if isinstance(item, BaseException):
                if not isinstance(item, Exception):  # cancellation and interpreter exits are not tool failures
                    raise item
                cause = (
                    f"timed out after {timeout:g} s"
                    if isinstance(item, asyncio.TimeoutError)
                    else (f"{type(item).__name__}: {item}")
                )
                return result("failed", None, turn, f"tool call {call['name']} ({call['id']}) failed: {cause}")
            outcomes.append(item)
            messages.append(tool_message(item))
    return result(
        "failed",
        None,
        spec.limits.max_turns,
        f"the agent gave no final answer within max_turns={spec.limits.max_turns}",
    )


async def _decide(approve: Approver | None, call: ToolCall) -> bool:
    if approve is None:
        return False
    decision: Any = approve(call)
    if inspect.isawaitable(decision):
        decision = await decision
    return bool(decision)
