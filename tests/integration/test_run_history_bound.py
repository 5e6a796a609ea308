"""A long agent run keeps its history bounded: it continues as new every few turns with its conversation.

The model (the local chat-completions server) asks for one calculator call per turn for nine turns, then
answers. The run must finish with every turn counted, one unbroken event sequence and the whole
conversation, while the orchestration's current execution holds only the last turns' history.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from funchost.testing.pytest_plugin import StartHost

from orchestrators.agent_run import TURNS_PER_EXECUTION
from tests.integration._agent_runs import events_after, get_run, openai_env, start_run, wait_for
from tests.paths import REPO_ROOT
from tests.support.chat_completions_server import ChatCompletionsServer, text_response, tool_call_response

TOOL_TURNS = 9


@pytest.fixture
def server() -> Iterator[ChatCompletionsServer]:
    with ChatCompletionsServer(fallback="error") as chat:
        yield chat


def test_a_long_run_continues_as_new_and_keeps_its_conversation(
    start_host: StartHost, server: ChatCompletionsServer, tmp_path: Path
) -> None:
    assert TOOL_TURNS > TURNS_PER_EXECUTION  # the run must cross at least one continue-as-new
    server.script(*[tool_call_response("calculator", {"expression": f"{n}+{n}"}, call_id=f"call_{n}")
                    for n in range(TOOL_TURNS)],
                  text_response("all added", usage={"prompt_tokens": 20, "completion_tokens": 7}))
    host = start_host(REPO_ROOT, env=openai_env(server, tmp_path))

    start_run(host, "long-run", "add some numbers", max_turns=TOOL_TURNS + 1)
    run = wait_for(host, "long-run", timeout=30)

    assert (run["status"], run["output"], run["turns"]) == ("completed", "all added", TOOL_TURNS + 1)
    assert run["usage"]["total_tokens"] == (TOOL_TURNS + 1) * 27
    events = events_after(host, "long-run")
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert [e["data"]["turn"] for e in events if e["type"] == "model_call_finished"] == list(
        range(1, TOOL_TURNS + 2))
    # Each model call saw the whole conversation so far: the carried-over messages were not lost.
    last_request = server.requests[-1].body["messages"]
    tool_results = [m for m in last_request if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_results] == [f"call_{n}" for n in range(TOOL_TURNS)]
    # The current execution started from carried state and replays only its own turns.
    status = host.status("long-run", "?showHistory=true&showInput=true").json()
    started = status["historyEvents"][0]
    assert started["EventType"] == "ExecutionStarted"
    assert started["Input"]["carried"]["turns"] >= TURNS_PER_EXECUTION
    scheduled = [e for e in status["historyEvents"] if e["EventType"] == "TaskCompleted"]
    assert len(scheduled) < 2 * (TOOL_TURNS + 1)
    assert get_run(host, "long-run")["status"] == "completed"
