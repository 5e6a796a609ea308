"""Agent runs under failure: kill -9 of the host and restart, steering, cancel, budgets, dropped SSE connections.

The app at the repo root runs real agent loops against the local chat-completions server
(`tests.support.chat_completions_server`): with its script empty it answers like the offline model, and
a scripted response makes one model call slow (so a test can act while that call is in flight) or
reports the usage a test needs. The server records every request, which is how these tests count the
model calls a run made; the outbox folder shows what `send_message` really sent.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from funchost.testing.waiting import wait_until

from tests.integration._agent_runs import (
    ARITHMETIC,
    RUNS,
    SEND,
    approve,
    conversation,
    events_after,
    get_run,
    openai_env,
    outbox_messages,
    requests_for_turn,
    run_messages,
    slow,
    sse_blocks,
    start_run,
    types,
    wait_for,
)
from tests.paths import REPO_ROOT
from tests.support.chat_completions_server import ChatCompletionsServer, text_response, tool_call_response

SUPERSEDED_DELAY_S = 1.5
# The events of a send_message run whose call is approved, in order.
APPROVED_SEND_EVENTS = [
    "run_started",
    "model_call_started",
    "model_call_finished",
    "approval_requested",
    "approval_decided",
    "tool_call_started",
    "tool_call_finished",
    "model_call_started",
    "model_call_finished",
    "run_finished",
]


@pytest.fixture
def server() -> Iterator[ChatCompletionsServer]:
    with ChatCompletionsServer() as chat:
        yield chat


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def env(server: ChatCompletionsServer, tmp_path: Path) -> dict[str, str]:
    return openai_env(server, tmp_path)


@pytest.fixture
def host(start_host: StartHost, env: dict[str, str]) -> FunchostProcess:
    return start_host(REPO_ROOT, env=env)


def sent_statuses(server: ChatCompletionsServer, turn: int) -> list[str]:
    """What each model request of `turn` was told about its send_message calls ("sent" or "already_sent")."""
    found: list[str] = []
    for request in requests_for_turn(server, turn):
        for message in request.body["messages"]:
            if message.get("role") == "tool" and '"message_id"' in (message.get("content") or ""):
                found.append("already_sent" if '"already_sent"' in message["content"] else "sent")
    return found


# --- kill -9 and restart ------------------------------------------------------------------------------


@pytest.mark.crash
@pytest.mark.usefixtures("restartable_store")
def test_a_kill_during_a_model_call_repeats_no_finished_step(
    start_host: StartHost, host: FunchostProcess, env: dict[str, str], server: ChatCompletionsServer, outbox: Path
) -> None:
    start_run(host, "crash-model", SEND)
    [pending] = wait_for(host, "crash-model", ("awaiting_approval",))["pending_approvals"]
    # The model call after the approved send answers slowly: the host dies while it waits for it.
    server.script(slow(text_response("an answer the dead host never reads"), 3.0))
    approve(host, "crash-model", pending["call_id"])
    wait_until(lambda: len(requests_for_turn(server, 2)) == 1, "the second model call to reach the server")
    assert len(outbox_messages(outbox)) == 1  # the approved send ran before that call

    host.kill()
    restarted = start_host(REPO_ROOT, env=env)
    done = wait_for(restarted, "crash-model")

    assert (done["status"], done["output"], done["turns"]) == ("completed", "Message sent to ops.", 2), done
    assert len(requests_for_turn(server, 1)) == 1  # the finished first model call was not made again
    # The call cut by the kill ran again; both attempts were told the message was sent by the first and
    # only run of the tool (a second run would have reported "already_sent").
    assert len(requests_for_turn(server, 2)) == 2
    assert sent_statuses(server, 2) == ["sent", "sent"]
    [message] = outbox_messages(outbox)
    assert (message["to"], message["text"]) == ("ops", "the deploy is done")
    events = events_after(restarted, "crash-model")
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert types(events) == APPROVED_SEND_EVENTS


@pytest.mark.crash
@pytest.mark.usefixtures("restartable_store")
def test_a_kill_during_an_approval_wait_sends_the_approved_message_once(
    start_host: StartHost, host: FunchostProcess, env: dict[str, str], server: ChatCompletionsServer, outbox: Path
) -> None:
    start_run(host, "crash-approval", SEND)
    [pending] = wait_for(host, "crash-approval", ("awaiting_approval",))["pending_approvals"]
    assert len(server.requests) == 1

    host.kill()
    restarted = start_host(REPO_ROOT, env=env)
    waiting = get_run(restarted, "crash-approval")
    assert (waiting["status"], waiting["pending_approvals"]) == ("awaiting_approval", [pending])
    approve(restarted, "crash-approval", pending["call_id"])
    done = wait_for(restarted, "crash-approval")

    assert (done["status"], done["output"]) == ("completed", "Message sent to ops."), done
    [message] = outbox_messages(outbox)
    assert (message["to"], message["text"]) == ("ops", "the deploy is done")
    assert (len(requests_for_turn(server, 1)), len(requests_for_turn(server, 2))) == (1, 1)
    assert len(server.requests) == 2
    events = events_after(restarted, "crash-approval")
    assert types(events) == APPROVED_SEND_EVENTS
    assert [e["data"]["decision"] for e in events if e["type"] == "approval_decided"] == ["approve"]


# --- steering, cancel, budget -------------------------------------------------------------------------


def test_steering_supersedes_the_model_call_in_flight(host: FunchostProcess, server: ChatCompletionsServer) -> None:
    server.script(slow(text_response("a superseded answer"), SUPERSEDED_DELAY_S))
    start_run(host, "steer-live", ARITHMETIC)
    wait_until(lambda: len(server.requests) == 1, "the first model call to reach the server")
    late_answer_at = time.monotonic() + SUPERSEDED_DELAY_S

    res = host.post(f"{RUNS}/steer-live/steer", {"input": "also compute 2+2"})

    assert res.status == 202, res.text
    done = wait_for(host, "steer-live")
    assert (done["status"], done["output"], done["turns"]) == ("completed", "12*(3+4) = 84\n2+2 = 4", 2), done
    messages = run_messages(host, "steer-live")
    assert messages[:2] == [{"role": "user", "content": ARITHMETIC}, {"role": "user", "content": "also compute 2+2"}]
    assert all(m.get("content") != "a superseded answer" for m in messages)
    # The call made after the steer saw both inputs and none of the superseded call's answer.
    assert conversation(server.requests[1]) == messages[:2]
    events = events_after(host, "steer-live")
    assert types(events)[:5] == [
        "run_started",
        "model_call_started",
        "steered",
        "model_call_started",
        "model_call_finished",
    ]
    assert [e["data"]["turn"] for e in events if e["type"] == "model_call_finished"] == [1, 2]
    assert events[2]["data"] == {"input": "also compute 2+2"}
    assert len(server.requests) == 3
    # The superseded call still answers, late (nothing shows when; give it its delay): the finished run
    # ignores that answer.
    time.sleep(max(0.0, late_answer_at + 0.3 - time.monotonic()))
    assert get_run(host, "steer-live") == done
    history = host.status("steer-live", "?showHistory=true").json()["historyEvents"]
    assert history[-1]["EventType"] == "ExecutionCompleted"


def test_cancel_during_a_tool_fan_out_stops_before_another_step(
    start_host: StartHost, server: ChatCompletionsServer, tmp_path: Path
) -> None:
    # The outbox "folder" is a file: send_message fails with an OSError, so the fan-out of three calls
    # waits to retry it (fixed_delay: 5 s) while the two calculator calls are done. The cancel lands then.
    blocked = tmp_path / "outbox"
    blocked.write_text("not a folder")
    host = start_host(REPO_ROOT, env=openai_env(server, tmp_path))
    start_run(host, "fan-cancel", f"what is 2+3? what is 4*5? {SEND}", retry="fixed_delay")
    pending = wait_for(host, "fan-cancel", ("awaiting_approval",))["pending_approvals"]
    approve(host, "fan-cancel", *[p["call_id"] for p in pending])
    wait_until(
        lambda: "retry_scheduled" in types(events_so_far(host, "fan-cancel")),
        "the failed send_message call to wait for its retry",
    )
    assert get_run(host, "fan-cancel")["status"] == "running"

    res = host.post(f"{RUNS}/fan-cancel/cancel", {"reason": "enough"})

    assert res.status == 202, res.text
    done = wait_for(host, "fan-cancel")
    assert (done["status"], done["output"], done["turns"], done["error"]) == ("cancelled", None, 1, None), done
    assert len(server.requests) == 1  # no model call after the cancel
    events = events_after(host, "fan-cancel")
    assert types(events) == [
        "run_started",
        "model_call_started",
        "model_call_finished",
        "approval_requested",
        "approval_decided",
        "tool_call_started",
        "tool_call_started",
        "tool_call_started",
        "retry_scheduled",
        "cancelled",
        "run_finished",
    ]
    assert [e["data"]["tool"] for e in events if e["type"] == "tool_call_started"] == [
        "calculator",
        "calculator",
        "send_message",
    ]
    assert events[-3]["data"]["step"] == "tool calls at turn 1" and events[-3]["data"]["delay_s"] == 5.0
    assert (events[-2]["data"], events[-1]["data"]) == ({"reason": "enough"}, {"status": "cancelled", "output": None})
    # In the run's own clock, it stopped while the retry still waited, not at the next attempt.
    waited = datetime.fromisoformat(events[-2]["at"]) - datetime.fromisoformat(events[-3]["at"])
    assert waited.total_seconds() < 5.0
    history = host.status("fan-cancel", "?showHistory=true").json()["historyEvents"]
    tool_steps = [e["EventType"] for e in history if e.get("FunctionName") == "run_tool"]
    assert sorted(tool_steps) == ["TaskCompleted", "TaskCompleted", "TaskFailed"]  # one attempt, no retry


def events_so_far(host: FunchostProcess, run_id: str) -> list[dict[str, Any]]:
    res = host.get(f"{RUNS}/{run_id}/events?wait=0")
    return sse_blocks(res.text) if res.status == 200 else []


def test_a_run_over_its_token_budget_ends_budget_exceeded(host: FunchostProcess, server: ChatCompletionsServer) -> None:
    # The assistant may use 20,000 tokens: the first call stays under, the second goes over.
    server.script(
        tool_call_response(
            "calculator",
            {"expression": "2+3"},
            call_id="call_a",
            usage={"prompt_tokens": 15_000, "completion_tokens": 100},
        ),
        tool_call_response(
            "calculator",
            {"expression": "4*5"},
            call_id="call_b",
            usage={"prompt_tokens": 5_000, "completion_tokens": 100},
        ),
    )
    start_run(host, "over-budget", "what is 2+3, then 4*5?")

    done = wait_for(host, "over-budget")

    assert (done["status"], done["output"], done["turns"], done["error"]) == ("budget_exceeded", None, 2, None), done
    assert done["usage"] == {"prompt_tokens": 20_000, "completion_tokens": 200, "total_tokens": 20_200}
    assert len(server.requests) == 2
    events = events_after(host, "over-budget")
    assert [e["data"]["call_id"] for e in events if e["type"] == "tool_call_started"] == ["call_a"]
    assert events[-1]["data"] == {"status": "budget_exceeded", "output": None}
    assert [r["id"] for r in host.get(f"{RUNS}?status=budget_exceeded").json()["runs"]] == ["over-budget"]


# --- following the events over a connection that drops ------------------------------------------------


def read_then_drop(host: FunchostProcess, path: str, headers: dict[str, str], complete_events: int) -> str:
    """GET `path`, read until `complete_events` SSE messages have arrived, then close the connection."""
    connection = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        assert response.status == 200
        received = b""
        # The retry: line is one more message; a message is complete at its blank line.
        while received.count(b"\n\n") < complete_events + 1:
            chunk = response.read(16)
            assert chunk, f"the stream ended early: {received!r}"
            received += chunk
    finally:
        connection.close()
    return received.decode("utf-8")


def test_events_resume_after_a_dropped_connection_without_gap_or_duplicate(
    start_host: StartHost, tmp_path: Path
) -> None:
    host = start_host(REPO_ROOT, env={"AGENT_MODEL_PROVIDER": "offline", "OUTBOX_DIR": str(tmp_path / "outbox")})
    start_run(host, "sse-drop", SEND)
    [pending] = wait_for(host, "sse-drop", ("awaiting_approval",))["pending_approvals"]

    # A response cut short: only what arrived in whole counts, the rest is asked for again.
    partial = read_then_drop(host, f"{RUNS}/sse-drop/events?wait=0", {}, complete_events=2)
    first = sse_blocks(partial[: partial.rindex("\n\n") + 2])
    assert [e["id"] for e in first] == [1, 2]
    resumed = events_after_cursor(host, "sse-drop", first[-1]["id"])
    assert resumed[-1]["type"] == "approval_requested"
    so_far = first + resumed

    # A long poll dropped while it waits for the next event, which arrives after it is gone.
    waiting = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
    waiting.request("GET", f"{RUNS}/sse-drop/events?wait=5", headers={"Last-Event-ID": str(so_far[-1]["id"])})
    waiting.close()
    approve(host, "sse-drop", pending["call_id"])
    assert wait_for(host, "sse-drop")["status"] == "completed"

    events = so_far + events_after(host, "sse-drop", so_far[-1]["id"])
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert types(events) == APPROVED_SEND_EVENTS
    assert events == events_after(host, "sse-drop")  # the same as one uninterrupted reader sees


def events_after_cursor(host: FunchostProcess, run_id: str, cursor: int) -> list[dict[str, Any]]:
    """The events after `cursor` available now (one request, no wait)."""
    res = host.get(f"{RUNS}/{run_id}/events?wait=0", headers={"Last-Event-ID": str(cursor)})
    assert res.status == 200, res.text
    return sse_blocks(res.text)
