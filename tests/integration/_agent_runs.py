"""Helpers of the agent-run tests that point the app at the repo root at the local chat-completions server.

They speak HTTP only: the run API under /api/runs, the Durable status API for a run's recorded
output, and what `ChatCompletionsServer` recorded of the model calls it answered.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from funchost.testing.process import FunchostProcess

from tests.support.chat_completions_server import ChatCompletionsServer, RecordedRequest, ScriptedResponse

RUNS = "/api/runs"
ARITHMETIC = "what is 12*(3+4)?"
SEND = "send a message to ops: the deploy is done"
TERMINAL = ("completed", "failed", "cancelled", "terminated", "budget_exceeded")
MODEL_NAME = "test-model"


def openai_env(server: ChatCompletionsServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    """App settings for the OpenAI-compatible client against `server`, with an outbox under `tmp_path`."""
    return {
        "AGENT_MODEL_PROVIDER": "openai",
        "OPENAI_BASE_URL": server.openai_base_url,
        "OPENAI_API_KEY": "test",
        "OPENAI_MODEL": MODEL_NAME,
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        **extra,
    }


def slow(response: ScriptedResponse, seconds: float) -> ScriptedResponse:
    """`response`, answered only after `seconds`."""
    return dataclasses.replace(response, delay_s=seconds)


def start_run(host: FunchostProcess, run_id: str, text: str, *, agent: str = "assistant", **options: Any) -> None:
    res = host.post(f"/api/agents/{agent}/runs", {"input": text, "instance_id": run_id, **options})
    assert res.status == 202, res.text


def get_run(host: FunchostProcess, run_id: str) -> dict[str, Any]:
    res = host.get(f"{RUNS}/{run_id}")
    assert res.status == 200, res.text
    run: dict[str, Any] = res.json()
    return run


def wait_for(
    host: FunchostProcess, run_id: str, states: tuple[str, ...] = TERMINAL, timeout: float = 20.0
) -> dict[str, Any]:
    """The run once its status is one of `states`."""
    deadline = time.monotonic() + timeout
    while True:
        run = get_run(host, run_id)
        if run["status"] in states:
            return run
        assert time.monotonic() < deadline, f"run {run_id} not in {states} after {timeout}s: {run}\n{host.log()}"
        time.sleep(0.03)


def approve(host: FunchostProcess, run_id: str, *call_ids: str) -> None:
    res = host.post(f"{RUNS}/{run_id}/approvals", {"decisions": dict.fromkeys(call_ids, "approve")})
    assert res.status == 202, res.text


def run_messages(host: FunchostProcess, run_id: str) -> list[dict[str, Any]]:
    """The messages a finished run added to the conversation (its recorded output)."""
    status = host.status(run_id).json()
    assert status["runtimeStatus"] == "Completed", status
    messages: list[dict[str, Any]] = status["output"]["messages"]
    return messages


def sse_blocks(text: str) -> list[dict[str, Any]]:
    """The events of complete SSE messages in `text`, after checking each message's `id:` and `event:`."""
    events: list[dict[str, Any]] = []
    for block in text.split("\n\n"):
        if not block or block.startswith("retry: "):
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        event = json.loads(fields["data"])
        assert (event["id"], event["type"]) == (int(fields["id"]), fields["event"]), block
        events.append(event)
    return events


def events_after(
    host: FunchostProcess, run_id: str, last_id: int = 0, *, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """Every event after `last_id` until the stream ends (204), reconnecting as an EventSource does."""
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        cursor = events[-1]["id"] if events else last_id
        res = host.get(f"{RUNS}/{run_id}/events?wait=5", headers={"Last-Event-ID": str(cursor)})
        if res.status == 204:
            return events
        assert res.status == 200, res.text
        events += sse_blocks(res.text)
    raise AssertionError(f"the events of {run_id} did not end in {timeout}s: {[e['type'] for e in events]}")


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def turn_of(request: RecordedRequest) -> int:
    """The run turn a model request belongs to: every earlier turn left exactly one assistant message."""
    return 1 + sum(1 for m in request.body["messages"] if m.get("role") == "assistant")


def requests_for_turn(server: ChatCompletionsServer, turn: int) -> list[RecordedRequest]:
    return [r for r in server.requests if turn_of(r) == turn]


def conversation(request: RecordedRequest) -> list[dict[str, Any]]:
    """The messages of a model request without its system message."""
    return [m for m in request.body["messages"] if m.get("role") != "system"]


def outbox_messages(outbox: Path) -> list[dict[str, Any]]:
    if not outbox.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(outbox.glob("*.json"))]
