"""The plain-Python reference loop end to end: offline model and real tools, and real clients on the protocol server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from agents.catalogue import AgentLimits, AgentSpec, get_agent
from agents.loop import LoopResult, run_agent_loop
from agents.messages import ChatMessage, ToolCall
from agents.models.offline import OfflineModel
from agents.models.openai_compatible import OpenAICompatibleModel
from agents.tools.builtin import BUILTIN_TOOLS
from agents.tools.context import ToolServices
from agents.tools.outbox import LocalOutbox
from agents.tools.registry import ToolRegistry, tool
from tests.support.chat_completions_server import (
    ChatCompletionsServer,
    error_response,
    text_response,
    tool_call_response,
)

ASSISTANT = get_agent("assistant")


def run(spec: AgentSpec, text: str, registry: ToolRegistry, **kwargs: Any) -> LoopResult:
    return asyncio.run(run_agent_loop(spec, text, OfflineModel(), registry, **kwargs))


def test_an_arithmetic_run_answers_with_the_calculators_number(registry: ToolRegistry) -> None:
    result = run(ASSISTANT, "what is 12*(3+4)?", registry)
    assert (result.status, result.output, result.error) == ("completed", "12*(3+4) = 84", None)
    assert (result.turns, result.steps) == (2, 3)
    assert [m["role"] for m in result.messages] == ["user", "assistant", "tool", "assistant"]
    assert result.tool_outcomes[0].result == {"expression": "12*(3+4)", "result": 84}
    assert result.usage["total_tokens"] == result.usage["prompt_tokens"] + result.usage["completion_tokens"] > 0


def test_parallel_tool_calls_answer_in_call_order(registry: ToolRegistry) -> None:
    result = run(ASSISTANT, "compute 1+1; compute 2*3; what time is it?", registry)
    assert [o.name for o in result.tool_outcomes] == ["calculator", "calculator", "get_time"]
    assert result.output == "1+1 = 2\n2*3 = 6\nIt is 15:09 on Friday 14 March 2025 (UTC)."


def test_a_rejected_approval_is_said_in_the_answer_and_nothing_is_sent(
    registry: ToolRegistry, outbox: LocalOutbox
) -> None:
    asked: list[ToolCall] = []

    def reject(call: ToolCall) -> bool:
        asked.append(call)
        return False

    result = run(ASSISTANT, "send a message to Bob: the build is green", registry, approve=reject)
    assert result.status == "completed"
    assert result.output == "I did not send the message to Bob: the call was rejected by a human reviewer."
    assert [(c["name"], c["arguments"]) for c in asked] == [
        ("send_message", {"to": "Bob", "text": "the build is green"})
    ]
    assert outbox.messages() == []
    # With no approver at all, approval-requiring calls are rejected too.
    assert run(ASSISTANT, "send a message to Bob: hi", registry).output == (
        "I did not send the message to Bob: the call was rejected by a human reviewer."
    )


def test_an_approved_message_is_sent_once(registry: ToolRegistry, outbox: LocalOutbox) -> None:
    async def approve(call: ToolCall) -> bool:
        return True

    result = run(ASSISTANT, "send a message to Bob: the build is green", registry, approve=approve, run_id="run-7")
    assert (result.status, result.output) == ("completed", "Message sent to Bob.")
    assert [(m.id, m.to, m.text) for m in outbox.messages()] == [
        (f"run-7:{result.tool_outcomes[0].call_id}", "Bob", "the build is green")
    ]


def test_a_two_turn_session_uses_the_first_answer(registry: ToolRegistry) -> None:
    first = run(ASSISTANT, "what is 12*(3+4)?", registry)
    second = run(ASSISTANT, "and times 2?", registry, history=first.messages)
    assert second.output == "84*2 = 168"
    named = run(ASSISTANT, "my name is Ada", registry)
    assert run(ASSISTANT, "what is my name?", registry, history=named.messages).output == "Your name is Ada."


def test_max_turns_without_a_final_answer_fails(registry: ToolRegistry) -> None:
    result = run(ASSISTANT.with_limits(max_turns=1), "what is 2+2?", registry)
    assert (result.status, result.output, result.turns) == ("failed", None, 1)
    assert result.error == "the agent gave no final answer within max_turns=1"


def test_exceeding_the_token_budget_ends_the_run(registry: ToolRegistry) -> None:
    result = run(ASSISTANT.with_limits(token_budget=300), "what is 2+2?", registry)
    assert (result.status, result.output, result.turns) == ("budget_exceeded", None, 1)
    assert result.usage["total_tokens"] > 300
    assert result.tool_outcomes == []  # the tool call of the call that broke the budget never ran


@pytest.fixture
def server() -> Iterator[ChatCompletionsServer]:
    with ChatCompletionsServer(fallback="error") as running:
        yield running


def remote(server: ChatCompletionsServer) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(model="test-model", base_url=server.openai_base_url, timeout=5)


def run_remote(spec: AgentSpec, text: str, server: ChatCompletionsServer, registry: ToolRegistry) -> LoopResult:
    async def go() -> LoopResult:
        model = remote(server)
        try:
            return await run_agent_loop(spec, text, model, registry)
        finally:
            await model.aclose()

    return asyncio.run(go())


def test_a_non_retryable_model_error_fails_the_run_naming_the_step(
    server: ChatCompletionsServer, registry: ToolRegistry
) -> None:
    server.script(error_response(400, "Invalid schema for function 'calculator'."))
    result = run_remote(ASSISTANT, "what is 2+2?", server, registry)
    assert result.status == "failed"
    assert result.error == (
        "model call 1 failed: openai model call failed with HTTP 400: Invalid schema for function 'calculator'."
    )
    assert len(server.requests) == 1


def test_bad_arguments_from_the_model_go_back_to_it_and_the_run_continues(
    server: ChatCompletionsServer, registry: ToolRegistry
) -> None:
    server.script(tool_call_response("calculator", {"expr": "2+2"}), text_response("Sorry, 4."))
    result = run_remote(ASSISTANT, "what is 2+2?", server, registry)
    assert (result.status, result.output) == ("completed", "Sorry, 4.")
    second_request = server.requests[1].body["messages"]
    tool_reply = next(m for m in second_request if m["role"] == "tool")
    assert json.loads(tool_reply["content"]) == {
        "error": "unknown argument 'expr' for tool 'calculator'; expected: expression",
        "kind": "arguments",
    }


def test_an_infrastructure_fault_of_a_tool_fails_the_run(server: ChatCompletionsServer) -> None:
    @tool
    def archive(name: str) -> str:
        """Archive a document."""
        raise RuntimeError("disk on fire")

    spec = AgentSpec(name="archivist", description="d", instructions="i", tools=("archive",))
    server.script(tool_call_response("archive", {"name": "q3"}, call_id="call_9"))
    result = run_remote(spec, "archive q3", server, ToolRegistry([archive]))
    assert (result.status, result.error) == ("failed", "tool call archive (call_9) failed: RuntimeError: disk on fire")


def test_a_step_over_the_timeout_fails_the_run(server: ChatCompletionsServer) -> None:
    @tool
    async def slow() -> str:
        """Takes its time."""
        await asyncio.sleep(5)
        return "done"

    spec = AgentSpec(
        # Long enough for the local model server's answer even on a loaded machine, far below the tool's 5 s.
        name="slowpoke", description="d", instructions="i", tools=("slow",), limits=AgentLimits(step_timeout_s=1.0)
    )
    server.script(tool_call_response("slow", {}, call_id="call_s"))
    result = run_remote(spec, "go", server, ToolRegistry([slow]))
    assert (result.status, result.error) == ("failed", "tool call slow (call_s) failed: timed out after 1 s")


def test_the_loop_works_with_any_registry_services(tmp_path: Any) -> None:
    registry = ToolRegistry(BUILTIN_TOOLS, services=ToolServices(outbox=LocalOutbox(tmp_path)))
    history: list[ChatMessage] = [{"role": "system", "content": "ignored"}]
    result = run(ASSISTANT, "send a message to ops: done", registry, history=history, approve=lambda c: True)
    assert result.output == "Message sent to ops." and result.messages[0]["role"] == "user"
