"""The shared steps of a run: requests, tool-call checks, approval, outcomes and tool messages."""

from __future__ import annotations

import asyncio
import dataclasses
import json

from agents.catalogue import get_agent
from agents.messages import ToolCall
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

ASSISTANT = get_agent("assistant")
RESEARCHER = get_agent("researcher")


def call(name: str, arguments: dict[str, object], call_id: str = "c1") -> ToolCall:
    return {"id": call_id, "name": name, "arguments": arguments}


def test_build_model_request_puts_instructions_first_and_offers_the_agents_tools(registry: ToolRegistry) -> None:
    history = [
        {"role": "system", "content": "old system"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
    messages = start_messages("what is 2+2?", history)  # type: ignore[arg-type]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    request = build_model_request(RESEARCHER, messages, registry)
    assert request.messages[0] == {"role": "system", "content": RESEARCHER.instructions}
    assert request.messages[1:] == messages
    assert request.tool_names() == ["search_knowledge", "calculator"]
    assert (request.model, request.temperature) == (None, 0.0)


def test_check_tool_call(registry: ToolRegistry) -> None:
    assert check_tool_call(ASSISTANT, registry, call("calculator", {"expression": "1+1"})) is None
    not_for_agent = check_tool_call(RESEARCHER, registry, call("send_message", {"to": "a", "text": "b"}))
    assert not_for_agent is not None and not_for_agent.error_kind == "not_found"
    assert not_for_agent.error == (
        "there is no tool named 'send_message' for this agent; available tools: search_knowledge, calculator"
    )
    bad = check_tool_call(ASSISTANT, registry, call("calculator", {"expr": "1"}))
    assert bad is not None and bad.error_kind == "arguments" and "unknown argument 'expr'" in (bad.error or "")
    unparsed: ToolCall = {
        "id": "c2",
        "name": "calculator",
        "arguments": {},
        "raw_arguments": "{oops",
        "parse_error": "invalid JSON",
    }
    parsed = check_tool_call(ASSISTANT, registry, unparsed)
    assert parsed is not None and parsed.error_kind == "arguments" and "not a valid JSON object" in (parsed.error or "")


def test_needs_approval_from_the_tool_or_the_agent(registry: ToolRegistry) -> None:
    assert needs_approval(ASSISTANT, registry, call("send_message", {}))
    assert not needs_approval(ASSISTANT, registry, call("calculator", {}))
    strict = dataclasses.replace(ASSISTANT, approval_required=("calculator",))
    assert needs_approval(strict, registry, call("calculator", {}))


def test_apply_tool_call_turns_tool_errors_into_outcomes(registry: ToolRegistry) -> None:
    ok = asyncio.run(apply_tool_call(ASSISTANT, registry, call("calculator", {"expression": "6*7"})))
    assert ok == ToolOutcome(call_id="c1", name="calculator", ok=True, result={"expression": "6*7", "result": 42})
    refused = asyncio.run(apply_tool_call(ASSISTANT, registry, call("calculator", {"expression": "x"})))
    assert (refused.ok, refused.error_kind, refused.error) == (
        False,
        "tool",
        "names are not allowed in an expression: 'x'",
    )
    invalid = asyncio.run(apply_tool_call(ASSISTANT, registry, call("calculator", {})))
    assert invalid.error_kind == "arguments"


def test_outcomes_round_trip_and_become_tool_messages() -> None:
    ok = ToolOutcome(call_id="c1", name="calculator", ok=True, result={"result": 4})
    rejected = rejected_outcome(call("send_message", {"to": "Bob", "text": "hi"}, "c2"), "approval timed out")
    for outcome in (ok, rejected):
        assert ToolOutcome.from_dict(json.loads(json.dumps(outcome.to_dict()))) == outcome
    assert tool_message(ok) == {
        "role": "tool",
        "content": '{"result": {"result": 4}}',
        "tool_call_id": "c1",
        "name": "calculator",
    }
    assert json.loads(tool_message(rejected)["content"] or "") == {
        "error": "the call was rejected by a human reviewer: approval timed out",
        "kind": "rejected",
    }


def test_budget_and_keys() -> None:
    small = ASSISTANT.with_limits(token_budget=100)
    assert not over_budget(small, {"prompt_tokens": 60, "completion_tokens": 40, "total_tokens": 100})
    assert over_budget(small, {"prompt_tokens": 60, "completion_tokens": 41, "total_tokens": 101})
    assert idempotency_key("run-1", "call_a") == "run-1:call_a"
