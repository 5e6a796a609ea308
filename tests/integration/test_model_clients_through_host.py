"""The real model clients inside agent runs: the app at the repo root, through funchost, against a local server
that speaks the chat-completions protocol (`tests.support.chat_completions_server`).

The OpenAI-compatible client (AGENT_MODEL_PROVIDER=openai) and the Azure OpenAI client with an API key
(azure_openai) send real HTTP requests; the server answers from its script, else like the offline
model, and records every request. Checked here: tool calls parsed and run, usage counted per run,
retryable errors (429 honouring Retry-After, timeouts) retried by the run's policy and nothing else,
errors that cannot succeed (400, 401) failing the run at once, and what the model is told about
malformed calls and calls a human never approved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost

from orchestrators.retry_policy import PRESETS
from tests.integration._agent_runs import (
    ARITHMETIC,
    MODEL_NAME,
    SEND,
    events_after,
    openai_env,
    outbox_messages,
    requests_for_turn,
    run_messages,
    slow,
    start_run,
    types,
    wait_for,
)
from tests.paths import REPO_ROOT
from tests.support.chat_completions_server import (
    ChatCompletionsServer,
    error_response,
    rate_limited,
    text_response,
    tool_call_response,
)

AZURE_KEY = "azure-test-key"
DEPLOYMENT = "agents-gpt"


@pytest.fixture
def server() -> Iterator[ChatCompletionsServer]:
    with ChatCompletionsServer(api_key="test") as chat:
        yield chat


@pytest.fixture
def host(start_host: StartHost, server: ChatCompletionsServer, tmp_path: Path) -> FunchostProcess:
    return start_host(REPO_ROOT, env=openai_env(server, tmp_path))


def test_a_tool_call_from_the_model_runs_and_usage_is_counted(
    host: FunchostProcess, server: ChatCompletionsServer
) -> None:
    server.script(
        tool_call_response(
            "calculator", {"expression": "6*7"}, call_id="call_x", usage={"prompt_tokens": 120, "completion_tokens": 30}
        ),
        text_response("6*7 = 42", usage={"prompt_tokens": 200, "completion_tokens": 10}),
    )
    start_run(host, "tools-usage", "what is 6*7?")

    done = wait_for(host, "tools-usage")

    assert (done["status"], done["output"], done["turns"]) == ("completed", "6*7 = 42", 2), done
    assert done["usage"] == {"prompt_tokens": 320, "completion_tokens": 40, "total_tokens": 360}
    first, second = server.requests
    assert (first.path, first.headers["Authorization"]) == ("/v1/chat/completions", "Bearer test")
    assert (first.body["model"], first.body["temperature"]) == (MODEL_NAME, 0.2)
    assert first.body["messages"][0]["role"] == "system"
    assert first.body["messages"][1:] == [{"role": "user", "content": "what is 6*7?"}]
    offered = {t["function"]["name"]: t["function"] for t in first.body["tools"]}
    assert set(offered) == {"calculator", "get_time", "send_message", "search_knowledge"}
    assert offered["calculator"]["parameters"]["required"] == ["expression"]
    call, result = second.body["messages"][2:]
    assert call["tool_calls"] == [
        {"id": "call_x", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "6*7"}'}}
    ]
    assert (result["role"], result["tool_call_id"]) == ("tool", "call_x")
    assert json.loads(result["content"]) == {"result": {"expression": "6*7", "result": 42}}
    events = events_after(host, "tools-usage")
    assert [e["data"]["usage"]["total_tokens"] for e in events if e["type"] == "model_call_finished"] == [150, 210]
    assert [(e["data"]["call_id"], e["data"]["ok"]) for e in events if e["type"] == "tool_call_finished"] == [
        ("call_x", True)
    ]


def test_malformed_tool_arguments_go_back_to_the_model_as_a_tool_error(
    host: FunchostProcess, server: ChatCompletionsServer
) -> None:
    server.script(tool_call_response("calculator", '{"expression": ', call_id="call_bad"))
    start_run(host, "bad-args", "what is 6*7?")

    done = wait_for(host, "bad-args")

    assert (done["status"], done["turns"]) == ("completed", 2), done
    [told] = [m for m in server.requests[1].body["messages"] if m["role"] == "tool"]
    assert told["tool_call_id"] == "call_bad"
    error = json.loads(told["content"])
    assert error["kind"] == "arguments" and "JSON" in error["error"], error
    assert "tool_call_started" not in types(events_after(host, "bad-args"))  # nothing ran


def quick_retry_run_id() -> str:
    """A run id whose first model-call retry the policy alone would schedule in under a second."""
    policy = PRESETS["exponential_backoff"]
    return next(
        run_id
        for run_id in (f"rate-limited-{i}" for i in range(100))
        if policy.delay_s(1, f"{run_id}:model call at turn 1") < 0.95
    )


def test_a_429_is_retried_after_its_retry_after(host: FunchostProcess, server: ChatCompletionsServer) -> None:
    run_id = quick_retry_run_id()
    server.script(rate_limited(retry_after="1"))
    start_run(host, run_id, ARITHMETIC)

    done = wait_for(host, run_id)

    assert (done["status"], done["output"], done["turns"]) == ("completed", "12*(3+4) = 84", 2), done
    assert len(requests_for_turn(server, 1)) == 2
    assert len(server.requests) == 3
    [retry] = [e["data"] for e in events_after(host, run_id) if e["type"] == "retry_scheduled"]
    # The policy's own delay is below a second for this run id: the server's Retry-After set it.
    assert (retry["step"], retry["attempt"], retry["delay_s"]) == ("model call at turn 1", 1, 1.0)
    assert "429" in retry["error"] and "Rate limit reached" in retry["error"]


def test_a_model_call_that_times_out_is_retried(
    start_host: StartHost, server: ChatCompletionsServer, tmp_path: Path
) -> None:
    host = start_host(REPO_ROOT, env=openai_env(server, tmp_path, AGENT_MODEL_TIMEOUT_S="0.3"))
    server.script(slow(text_response("too late"), 2.0))
    start_run(host, "timed-out", ARITHMETIC)

    done = wait_for(host, "timed-out")

    assert (done["status"], done["output"]) == ("completed", "12*(3+4) = 84"), done
    assert len(requests_for_turn(server, 1)) == 2
    [retry] = [e["data"] for e in events_after(host, "timed-out") if e["type"] == "retry_scheduled"]
    assert (retry["step"], retry["error"]) == ("model call at turn 1", "openai model call timed out")


@pytest.mark.parametrize("status", [400, 401])
def test_an_error_a_retry_cannot_cure_fails_the_run_at_once(
    host: FunchostProcess, server: ChatCompletionsServer, status: int
) -> None:
    server.script(error_response(status, "Invalid 'messages[1].content': too long."))
    start_run(host, f"refused-{status}", ARITHMETIC)

    done = wait_for(host, f"refused-{status}")

    assert (done["status"], done["output"], done["turns"]) == ("failed", None, 0), done
    assert done["error"] == (
        f"model call at turn 1 failed: openai model call failed with HTTP {status}: "
        "Invalid 'messages[1].content': too long."
    )
    assert len(server.requests) == 1
    events = events_after(host, f"refused-{status}")
    assert "retry_scheduled" not in types(events)
    assert (events[-1]["type"], events[-1]["data"]) == ("run_failed", {"error": done["error"]})


def test_the_model_is_told_that_an_unanswered_approval_was_rejected(
    host: FunchostProcess, server: ChatCompletionsServer, tmp_path: Path
) -> None:
    start_run(host, "unanswered", SEND, approval_timeout_s=1)

    done = wait_for(host, "unanswered")

    assert done["status"] == "completed", done
    assert done["output"].startswith("I did not send the message to ops: the call was rejected"), done
    assert outbox_messages(tmp_path / "outbox") == []
    [request] = requests_for_turn(server, 2)
    [told] = [m for m in request.body["messages"] if m["role"] == "tool"]
    assert json.loads(told["content"]) == {
        "error": "the call was rejected by a human reviewer: no decision before the approval timeout",
        "kind": "rejected",
    }
    recorded = run_messages(host, "unanswered")[2]  # the run keeps what the model was told
    assert (recorded["role"], recorded["tool_call_id"], recorded["content"]) == (
        "tool",
        told["tool_call_id"],
        told["content"],
    )


def test_the_azure_openai_client_runs_an_agent(start_host: StartHost, tmp_path: Path) -> None:
    with ChatCompletionsServer(api_key=AZURE_KEY) as server:
        host = start_host(
            REPO_ROOT,
            env={
                "AGENT_MODEL_PROVIDER": "azure_openai",
                "AZURE_OPENAI_ENDPOINT": server.azure_endpoint,
                "AZURE_OPENAI_API_KEY": AZURE_KEY,
                "AZURE_OPENAI_DEPLOYMENT": DEPLOYMENT,
                "OUTBOX_DIR": str(tmp_path / "outbox"),
            },
        )
        start_run(host, "on-azure", ARITHMETIC)

        done = wait_for(host, "on-azure")
        requests = server.requests

    assert (done["status"], done["output"], done["turns"]) == ("completed", "12*(3+4) = 84", 2), done
    assert done["usage"]["total_tokens"] > 0
    assert len(requests) == 2
    for request in requests:
        assert request.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
        assert (request.deployment, request.query["api-version"]) == (DEPLOYMENT, "2024-10-21")
        assert request.headers["api-key"] == AZURE_KEY
    assert [m["role"] for m in requests[1].body["messages"]] == ["system", "user", "assistant", "tool"]
