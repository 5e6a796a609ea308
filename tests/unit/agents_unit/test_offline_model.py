"""The offline model: which tool it picks for each rule, how it answers from tool results, what it remembers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from agents.catalogue import get_agent
from agents.messages import ChatMessage, ModelRequest, ModelResponse, ToolCall
from agents.models.offline import OfflineModel
from agents.steps import apply_tool_call, rejected_outcome, tool_message
from agents.tools.builtin import BUILTIN_TOOLS
from agents.tools.registry import ToolRegistry

ALL_TOOLS = ToolRegistry(BUILTIN_TOOLS).schemas()
MODEL = OfflineModel()


def respond(messages: list[ChatMessage], tools: list[dict[str, Any]] | None = None, **kwargs: Any) -> ModelResponse:
    return MODEL.respond(ModelRequest(messages=messages, tools=ALL_TOOLS if tools is None else tools, **kwargs))


def calls_for(text: str, tools: list[dict[str, Any]] | None = None) -> list[tuple[str, dict[str, Any]]]:
    response = respond([{"role": "user", "content": text}], tools)
    return [(c["name"], c["arguments"]) for c in response.tool_calls]


def answer_for(text: str, tools: list[dict[str, Any]] | None = None) -> str:
    response = respond([{"role": "user", "content": text}], tools)
    assert response.tool_calls == [], response
    return response.text


def only(*names: str) -> list[dict[str, Any]]:
    return ToolRegistry(BUILTIN_TOOLS).schemas(names)


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("what is 12*(3+4)?", "12*(3+4)"),
        ("compute 2^10", "2^10"),
        ("Calculate 7 times 6, please.", "7*6"),
        ("what is 100 divided by 8", "100/8"),
        ("what is 15% of 80?", "(15/100*80)"),
        ("what is the square root of 16 plus 3?", "sqrt(16)+3"),
        ("evaluate max(3, 9) - 1", "max(3,9)-1"),
    ],
)
def test_arithmetic_goes_to_the_calculator(text: str, expression: str) -> None:
    assert calls_for(text) == [("calculator", {"expression": expression})]


def test_numbers_without_an_operation_and_dates_are_not_arithmetic() -> None:
    assert calls_for("I have 3 cats") == []
    assert calls_for("remind me about the release on 2024-05-01") == []


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("what does the knowledge base say about retries?", "retries"),
        ("Search the knowledge base for human approval", "human approval"),
        ("search for continue-as-new", "continue-as-new"),
        ("According to the knowledge base, how are sessions bounded?", "how are sessions bounded"),
        ("tell me about fan-out", "fan-out"),
        ("How do durable timers work?", "How do durable timers work"),
    ],
)
def test_knowledge_questions_go_to_search_knowledge(text: str, query: str) -> None:
    assert calls_for(text) == [("search_knowledge", {"query": query})]


def test_a_general_question_without_a_knowledge_topic_is_answered_without_tools() -> None:
    answer = answer_for("what is the capital of France?")
    assert 'no answer to "what is the capital of France?"' in answer
    assert "offline model" in answer


@pytest.mark.parametrize(
    ("text", "to", "message"),
    [
        ("send a message to Bob: the build is green. Ship it!", "Bob", "the build is green. Ship it!"),
        (
            "Please send an email to ops@example.com saying the deploy finished",
            "ops@example.com",
            "the deploy finished",
        ),
        ("send Carol a message: lunch at noon?", "Carol", "lunch at noon?"),
    ],
)
def test_send_requests_go_to_send_message(text: str, to: str, message: str) -> None:
    assert calls_for(text) == [("send_message", {"to": to, "text": message})]


def test_a_send_request_without_recipient_or_text_explains_the_form() -> None:
    assert "send a message to <recipient>: <text>" in answer_for("send a message please")


@pytest.mark.parametrize(
    ("text", "arguments"),
    [
        ("what time is it?", {}),
        ("What's the time in Europe/Paris?", {"timezone": "Europe/Paris"}),
        ("what is the date in UTC", {"timezone": "UTC"}),
    ],
)
def test_time_questions_go_to_get_time(text: str, arguments: dict[str, str]) -> None:
    assert calls_for(text) == [("get_time", arguments)]


def test_only_offered_tools_are_called() -> None:
    assert answer_for("what is 2+2?", only("search_knowledge")) == (
        "I cannot compute that: the calculator tool is not available to me."
    )
    assert "search_knowledge tool is not available" in answer_for(
        "search the knowledge base for timers", only("calculator")
    )
    # An implicit knowledge question without the tool is just a question.
    assert "no answer to" in answer_for("how do durable timers work?", only("calculator"))
    assert calls_for("send a message to Bob: hi", only("calculator")) == []


def test_several_clauses_that_want_tools_fan_out_in_one_response() -> None:
    assert calls_for("compute 1+1; compute 2+2. And what time is it?") == [
        ("calculator", {"expression": "1+1"}),
        ("calculator", {"expression": "2+2"}),
        ("get_time", {}),
    ]


def test_call_ids_are_deterministic_and_distinct() -> None:
    messages: list[ChatMessage] = [{"role": "user", "content": "compute 1+1; compute 1+1"}]
    first, second = respond(messages), respond(messages)
    assert first == second
    ids = [c["id"] for c in first.tool_calls]
    assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)


def run_tools(response: ModelResponse, registry: ToolRegistry, *, reject: bool = False) -> list[ChatMessage]:
    spec = get_agent("assistant")

    async def one(call: ToolCall) -> ChatMessage:
        if reject:
            return tool_message(rejected_outcome(call, "not today"))
        return tool_message(await apply_tool_call(spec, registry, call))

    async def all_calls() -> list[ChatMessage]:
        return [await one(c) for c in response.tool_calls]

    return asyncio.run(all_calls())


def turn(conversation: list[ChatMessage], text: str, registry: ToolRegistry, *, reject: bool = False) -> str:
    """One user turn through the model and the real tools; returns the final answer."""
    conversation.append({"role": "user", "content": text})
    for _ in range(4):
        response = respond(conversation)
        conversation.append(response.message)
        if not response.tool_calls:
            return response.text
        conversation.extend(run_tools(response, registry, reject=reject))
    raise AssertionError("no final answer")


def test_answers_arithmetic_from_the_calculator_result(registry: ToolRegistry) -> None:
    assert turn([], "what is 12*(3+4)?", registry) == "12*(3+4) = 84"


def test_answers_knowledge_questions_citing_titles_and_ids(registry: ToolRegistry) -> None:
    answer = turn([], "How do durable timers work?", registry)
    assert answer.startswith("According to the knowledge base (Durable timers [durable-timers]): ")
    assert "See also:" in answer


def test_answers_a_search_with_no_hits_plainly(registry: ToolRegistry) -> None:
    assert turn([], "search for zebra migration", registry) == 'The knowledge base has nothing on "zebra migration".'


def test_answers_the_time_from_the_injected_clock(registry: ToolRegistry) -> None:
    assert turn([], "what time is it in Europe/Paris?", registry) == (
        "It is 16:09 on Friday 14 March 2025 (Europe/Paris)."
    )


def test_answers_a_sent_message_and_a_rejected_one(registry: ToolRegistry) -> None:
    assert turn([], "send a message to Bob: build is green", registry) == "Message sent to Bob."
    assert turn([], "send a message to Bob: build is green", registry, reject=True) == (
        "I did not send the message to Bob: the call was rejected by a human reviewer: not today."
    )


def test_answers_a_tool_error_with_the_error(registry: ToolRegistry) -> None:
    assert turn([], "what is 2**99999?", registry) == (
        "I could not compute 2**99999: exponent 99999 is too large (the limit is 10000)."
    )


def test_answers_an_argument_error_sent_back_by_the_tool_step() -> None:
    conversation: list[ChatMessage] = [
        {"role": "user", "content": "what is 2+2?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "name": "calculator", "arguments": {"expr": "2+2"}}],
        },
        {
            "role": "tool",
            "tool_call_id": "c1",
            "name": "calculator",
            "content": json.dumps(
                {"error": "unknown argument 'expr' for tool 'calculator'; expected: expression", "kind": "arguments"}
            ),
        },
    ]
    assert (
        respond(conversation).text
        == "The calculator tool failed: unknown argument 'expr' for tool 'calculator'; expected: expression."
    )


def test_remembers_facts_from_earlier_turns(registry: ToolRegistry) -> None:
    conversation: list[ChatMessage] = []
    assert turn(conversation, "Hi! My name is Ada.", registry) == "Hello! How can I help?\nNice to meet you, Ada."
    assert turn(conversation, "my favourite colour is teal", registry) == "Noted: your favourite colour is teal."
    assert turn(conversation, "what is my name?", registry) == "Your name is Ada."
    assert turn(conversation, "What is my favourite colour?", registry) == "Your favourite colour is teal."
    assert turn(conversation, "what is my age?", registry) == "You have not told me your age."


def test_a_follow_up_continues_from_the_previous_calculator_result(registry: ToolRegistry) -> None:
    conversation: list[ChatMessage] = []
    assert turn(conversation, "what is 12*(3+4)?", registry) == "12*(3+4) = 84"
    assert turn(conversation, "and times 2?", registry) == "84*2 = 168"
    assert turn(conversation, "divide it by 8", registry) == "168/8 = 21"
    assert turn(conversation, "minus 30", registry) == "21-30 = -9"
    assert turn(conversation, "double it", registry) == "(-9)*2 = -18"


def test_a_follow_up_without_an_earlier_result_says_so(registry: ToolRegistry) -> None:
    assert turn([], "and times 2?", registry) == (
        "There is no earlier result to continue from; give me the whole expression."
    )


def test_replies_and_tool_answers_of_one_message_are_combined(registry: ToolRegistry) -> None:
    assert turn([], "my name is Ada. compute 1+1; compute 2+2", registry) == (
        "Nice to meet you, Ada.\n1+1 = 2\n2+2 = 4"
    )


def test_input_added_after_tool_results_is_acted_on_and_both_are_answered(registry: ToolRegistry) -> None:
    # Steering: a new user message arrives after a tool ran and before the next model call.
    conversation: list[ChatMessage] = [{"role": "user", "content": "what is 6*7?"}]
    first = respond(conversation)
    conversation.append(first.message)
    conversation.extend(run_tools(first, registry))
    conversation.append({"role": "user", "content": "also compute 10+5"})
    second = respond(conversation)
    assert [(c["name"], c["arguments"]) for c in second.tool_calls] == [("calculator", {"expression": "10+5"})]
    conversation.append(second.message)
    conversation.extend(run_tools(second, registry))
    assert respond(conversation).text == "6*7 = 42\n10+5 = 15"


def test_write_requests_search_then_draft_with_sources(registry: ToolRegistry) -> None:
    assert calls_for("write a short note about human approval") == [("search_knowledge", {"query": "human approval"})]
    draft = turn([], "write a short note about human approval", registry)
    assert draft.startswith("Human approval\n\n")
    assert draft.splitlines()[-1].startswith("Sources: [human-approval]")


def test_a_writer_without_tools_drafts_without_claiming_facts() -> None:
    draft = answer_for("draft an announcement about the new outbox", tools=[])
    assert draft.startswith("The new outbox\n\nThis announcement is about the new outbox.")
    assert "states no facts" in draft


def test_summarise_keeps_the_most_representative_sentences() -> None:
    text = (
        "Durable timers wake orchestrations. The weather was nice. Timers in orchestrations are durable. "
        "Lunch was late."
    )
    assert (
        answer_for(f"summarise: {text}") == "Durable timers wake orchestrations. Timers in orchestrations are durable."
    )


def test_usage_is_counted_deterministically_and_grows_with_the_prompt() -> None:
    short = respond([{"role": "user", "content": "hello"}])
    longer = respond([{"role": "user", "content": "hello " * 50}])
    assert short.usage == respond([{"role": "user", "content": "hello"}]).usage
    assert short.usage["total_tokens"] == short.usage["prompt_tokens"] + short.usage["completion_tokens"]
    assert short.usage["completion_tokens"] == 7  # "Hello! How can I help?"
    assert longer.usage["prompt_tokens"] - short.usage["prompt_tokens"] == 49
    without_tools = respond([{"role": "user", "content": "hello"}], tools=[])
    assert without_tools.usage["prompt_tokens"] < short.usage["prompt_tokens"]  # tool definitions count


def test_max_tokens_cuts_the_answer() -> None:
    response = respond([{"role": "user", "content": "what is the capital of France?"}], max_tokens=5)
    assert response.finish_reason == "length"
    assert response.usage["completion_tokens"] <= 5
    assert response.text == "I have no answer to"


def test_the_system_message_is_ignored_and_the_model_name_reported() -> None:
    response = respond(
        [{"role": "system", "content": "what is 1+1?"}, {"role": "user", "content": "hello"}], model="my-model"
    )
    assert (response.text, response.model) == ("Hello! How can I help?", "my-model")
    assert respond([{"role": "user", "content": "hello"}]).model == "offline"
