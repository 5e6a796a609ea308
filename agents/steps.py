"""The steps of an agent run, as functions both run loops share.

`agents.loop.run_agent_loop` strings these together in plain Python; the run orchestration calls the same
functions, the pure ones in the orchestrator and the ones doing I/O in activities, so the two cannot drift
apart. What a step means:

- A model step sends `build_model_request(spec, messages, registry)` and appends the response's message.
  Each model call is one turn; `max_turns` bounds them.
- Tool calls of a response are first checked (`check_tool_call`: a tool the agent has, a JSON object of
  valid arguments). A call that fails the check is answered at once with a tool error and never reaches a
  human or a tool.
- A valid call to a tool that needs approval (`needs_approval`) waits for a human decision; a rejected
  call is answered with `rejected_outcome`, whose text says it was rejected (and the reviewer's comment).
- Other calls run (`apply_tool_call`). A `ToolError` (bad arguments, a refusal) becomes an error result
  the model can act on; any other exception propagates, because it is a fault of the infrastructure that a
  retry may cure, not something the model did.
- Every outcome becomes one `tool` message (`tool_message`), in the order of the calls, after the
  assistant message that asked for them.
- The run is over when a response has no tool calls (its text is the output), when usage passes the token
  budget (`over_budget`: `budget_exceeded`), or when `max_turns` model calls gave no final answer
  (`failed`).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agents.catalogue import AgentSpec
from agents.errors import ToolArgumentError, ToolError, ToolNotFoundError
from agents.messages import ChatMessage, ModelRequest, ModelResponse, ToolCall, Usage, system_message, user_message
from agents.tools.registry import ToolRegistry

logger = logging.getLogger(__name__)

ErrorKind = Literal["arguments", "not_found", "tool", "rejected"]


@dataclass
class ToolOutcome:
    """The result of one tool call, as it goes back to the model and into the run's record.

    Attributes:
        call_id: The model's id of the call.
        name: Tool name.
        ok: True when the tool ran and returned `result`.
        result: The tool's JSON result (when `ok`).
        error: What went wrong, written for the model (when not `ok`).
        error_kind: "arguments" (invalid arguments), "not_found" (no such tool for this agent), "tool" (the
            tool refused) or "rejected" (a human rejected the call).
    """

    call_id: str
    name: str
    ok: bool
    result: Any = None
    error: str | None = None
    error_kind: ErrorKind | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "name": self.name,
            "ok": self.ok,
            "result": self.result,
            "error": self.error,
            "error_kind": self.error_kind,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolOutcome:
        return cls(
            call_id=str(data["call_id"]),
            name=str(data["name"]),
            ok=bool(data["ok"]),
            result=data.get("result"),
            error=data.get("error"),
            error_kind=data.get("error_kind"),
        )

    def content(self) -> str:
        """The `tool` message content: `{"result": ...}` or `{"error": ..., "kind": ...}` as JSON."""
        if self.ok:
            return json.dumps({"result": self.result}, ensure_ascii=False)
        return json.dumps({"error": self.error, "kind": self.error_kind}, ensure_ascii=False)


def start_messages(user_input: str, history: Sequence[ChatMessage] | None = None) -> list[ChatMessage]:
    """The conversation a run starts from: earlier turns (without system messages), then the new input."""
    earlier = [copy.deepcopy(m) for m in history or () if m.get("role") != "system"]
    return [*earlier, user_message(user_input)]


def build_model_request(spec: AgentSpec, messages: Sequence[ChatMessage], registry: ToolRegistry) -> ModelRequest:
    """The request of the next model call: the agent's instructions as system message, the conversation, its tools.

    Raises:
        ToolNotFoundError: The agent names a tool the registry does not have (a catalogue error).
    """
    conversation = [m for m in messages if m.get("role") != "system"]
    return ModelRequest(
        messages=[system_message(spec.instructions), *conversation],
        tools=registry.schemas(spec.tools),
        model=spec.model.model,
        temperature=spec.model.temperature,
        max_tokens=spec.model.max_tokens,
    )


def is_final(response: ModelResponse) -> bool:
    """True when the response asks for no tools: its text is the run's answer."""
    return not response.tool_calls


def check_tool_call(spec: AgentSpec, registry: ToolRegistry, call: ToolCall) -> ToolOutcome | None:
    """An error outcome when `call` cannot run as asked (unknown tool, arguments not valid); None when it can.

    Pure and deterministic, so the orchestrator can run it before asking a human to approve the call.
    """
    name = call["name"]
    if name not in spec.tools or name not in registry:
        available = ", ".join(spec.tools) or "none"
        return _error(
            call, f"there is no tool named {name!r} for this agent; available tools: {available}", "not_found"
        )
    if call.get("parse_error"):
        return _error(
            call,
            f"the arguments were not a valid JSON object ({call.get('parse_error')}); "
            "send the arguments as a JSON object",
            "arguments",
        )
    try:
        registry.validate(name, call["arguments"])
    except ToolArgumentError as exc:
        return _error(call, str(exc), "arguments")
    return None


def needs_approval(spec: AgentSpec, registry: ToolRegistry, call: ToolCall) -> bool:
    """True when a human must approve `call` before it runs (the tool always needs it, or this agent says so)."""
    name = call["name"]
    if name in spec.approval_required:
        return True
    return name in registry and registry.requires_approval(name)


async def apply_tool_call(
    spec: AgentSpec, registry: ToolRegistry, call: ToolCall, *, idempotency_key: str | None = None
) -> ToolOutcome:
    """Run one tool call; a `ToolError` becomes an error outcome, any other exception propagates.

    Args:
        spec: The agent (only its tools may run).
        registry: The tools, bound to their services.
        call: The model's call.
        idempotency_key: Key of the call's side effect; see `idempotency_key`.
    """
    invalid = check_tool_call(spec, registry, call)
    if invalid is not None:
        return invalid
    try:
        result = await registry.run(call["name"], call["arguments"], call["id"], idempotency_key=idempotency_key)
    except ToolNotFoundError as exc:
        return _error(call, str(exc), "not_found")
    except ToolArgumentError as exc:
        return _error(call, str(exc), "arguments")
    except ToolError as exc:
        return _error(call, str(exc) or type(exc).__name__, "tool")
    return ToolOutcome(call_id=call["id"], name=call["name"], ok=True, result=result)


def rejected_outcome(call: ToolCall, comment: str | None = None) -> ToolOutcome:
    """The outcome of a call a human rejected (or whose approval timed out, with a comment saying so)."""
    reason = "the call was rejected by a human reviewer"
    if comment:
        reason = f"{reason}: {comment}"
    return _error(call, reason, "rejected")


def tool_message(outcome: ToolOutcome) -> ChatMessage:
    """The `tool` message that gives `outcome` back to the model."""
    return {"role": "tool", "content": outcome.content(), "tool_call_id": outcome.call_id, "name": outcome.name}


def over_budget(spec: AgentSpec, usage: Usage) -> bool:
    """True when the run's usage has passed the agent's token budget."""
    return usage["total_tokens"] > spec.limits.token_budget


def idempotency_key(run_id: str, call_id: str) -> str:
    """The idempotency key of a tool call's side effect: unique per run and call.

    A model's call ids are only unique within one conversation (the offline model derives them from the
    conversation), so the key includes the run's id: the same call of the same run (a retried or replayed
    activity) shares a key, a call of another run does not.
    """
    return f"{run_id}:{call_id}"


def _error(call: ToolCall, message: str, kind: ErrorKind) -> ToolOutcome:
    return ToolOutcome(call_id=call["id"], name=call["name"], ok=False, error=message, error_kind=kind)
