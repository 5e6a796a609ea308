"""The agent and run HTTP API of the app at the repo root, through funchost over real HTTP.

Every run uses the offline model (the default when no provider is configured), which answers at once and
picks its tools from the request: arithmetic → calculator, "send a message" → send_message (which needs
a human's approval). Messages go to a local outbox folder under the test's tmp_path.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from funchost.testing.process import FunchostProcess, HttpResult
from funchost.testing.pytest_plugin import StartHost

from tests.paths import REPO_ROOT

RUNS = "/api/runs"
ARITHMETIC = "what is 12*(3+4)?"
SEND = "send a message to ops: the deploy is done"
TERMINAL = ("completed", "failed", "cancelled", "terminated", "budget_exceeded")
RUN_KEYS = {"id", "agent", "session_id", "status", "turns", "output", "usage", "pending_approvals", "tags",
            "created_at", "updated_at", "error"}
LINK_KEYS = {"status", "events", "approvals", "steer", "cancel", "terminate"}


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def host(start_host: StartHost, outbox: Path) -> FunchostProcess:
    return start_host(REPO_ROOT, env={"OUTBOX_DIR": str(outbox), "AGENT_MODEL_PROVIDER": "offline"})


def start_run(host: FunchostProcess, body: dict[str, Any], agent: str = "assistant", query: str = "") -> HttpResult:
    return host.post(f"/api/agents/{agent}/runs{query}", body)


def get_run(host: FunchostProcess, run_id: str) -> dict[str, Any]:
    res = host.get(f"{RUNS}/{run_id}")
    assert res.status == 200, res.text
    run: dict[str, Any] = res.json()
    return run


def wait_for(host: FunchostProcess, run_id: str, states: tuple[str, ...] = TERMINAL, timeout: float = 15.0
             ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = get_run(host, run_id)
        if run["status"] in states:
            return run
        assert time.monotonic() < deadline, f"run {run_id} not in {states} after {timeout}s: {run}"
        time.sleep(0.03)


def awaiting_approval(host: FunchostProcess, run_id: str, text: str = SEND, **extra: Any) -> dict[str, Any]:
    res = start_run(host, {"input": text, "instance_id": run_id, **extra})
    assert res.status == 202, res.text
    run = wait_for(host, run_id, ("awaiting_approval", *TERMINAL))
    assert run["status"] == "awaiting_approval", run
    return run


def error_of(res: HttpResult, status: int) -> dict[str, str]:
    """The `{"error": {"code", "message"}}` of an error answer, after checking its status."""
    assert res.status == status, f"expected {status}, got {res.status}: {res.text}"
    body = res.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    error: dict[str, str] = body["error"]
    return error


def parse_sse(res: HttpResult) -> tuple[list[dict[str, Any]], list[int]]:
    """The events of an SSE response, and the ids of their `id:` lines."""
    assert res.status == 200, res.text
    assert res.headers["Content-Type"].startswith("text/event-stream")
    assert res.headers["Cache-Control"] == "no-cache"
    events: list[dict[str, Any]] = []
    ids: list[int] = []
    blocks = [b for b in res.text.split("\n\n") if b]
    assert blocks[0] == "retry: 1000", res.text
    for block in blocks[1:]:
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        assert set(fields) == {"id", "event", "data"}, block
        event = json.loads(fields["data"])
        assert (event["id"], event["type"]) == (int(fields["id"]), fields["event"])
        ids.append(int(fields["id"]))
        events.append(event)
    return events, ids


def follow_events(host: FunchostProcess, run_id: str, *, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Read a run's events as an EventSource does: reconnect with Last-Event-ID until 204."""
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        headers = {"Last-Event-ID": str(events[-1]["id"])} if events else {}
        res = host.get(f"{RUNS}/{run_id}/events?wait=5", headers=headers)
        if res.status == 204:
            return events
        got, _ = parse_sse(res)
        events.extend(got)
    raise AssertionError(f"the events of {run_id} did not end in {timeout}s: {[e['type'] for e in events]}")


def durable_status(host: FunchostProcess, run_id: str) -> dict[str, Any]:
    status: dict[str, Any] = host.status(run_id).json()
    return status


def outbox_messages(outbox: Path) -> list[dict[str, Any]]:
    if not outbox.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(outbox.glob("*.json"))]


# --- catalogue and health --------------------------------------------------------------------------


def test_agents_and_health(host: FunchostProcess) -> None:
    agents = host.get("/api/agents")
    health = host.get("/api/health")

    assert agents.status == 200
    listed = {a["name"]: a for a in agents.json()["agents"]}
    assert set(listed) == {"assistant", "planner", "researcher", "reviewer", "writer"}
    assert {"calculator", "send_message"} <= set(listed["assistant"]["tools"])
    assert listed["researcher"]["limits"]["max_turns"] == 6
    assert health.status == 200
    assert health.json() == {"status": "ok", "model_provider": "offline", "agents": 5}


def test_health_names_a_misconfigured_setting_without_its_value(start_host: StartHost) -> None:
    host = start_host(REPO_ROOT, env={"AGENT_MODEL_PROVIDER": "openai", "OPENAI_BASE_URL": "not-a-url-s3cret"})

    res = host.get("/api/health")

    assert res.status == 503
    body = res.json()
    assert (body["status"], body["model_provider"]) == ("misconfigured", "openai")
    assert "OPENAI_MODEL" in body["error"]["message"] and "s3cret" not in res.text


# --- starting runs ---------------------------------------------------------------------------------


def test_a_calculator_run_with_wait_answers_200_with_the_result(host: FunchostProcess) -> None:
    res = start_run(host, {"input": ARITHMETIC, "tags": {"team": "ops"}}, query="?wait=10")

    assert res.status == 200, res.text
    run = res.json()
    assert set(run) == RUN_KEYS | {"links"}
    assert run["status"] == "completed" and "84" in run["output"]
    assert (run["agent"], run["turns"], run["tags"], run["error"]) == ("assistant", 2, {"team": "ops"}, None)
    assert run["usage"]["total_tokens"] == run["usage"]["prompt_tokens"] + run["usage"]["completion_tokens"] > 0
    assert len(run["id"]) == 32  # a new uuid hex
    assert set(run["links"]) == LINK_KEYS
    assert get_run(host, run["id"]) == {k: v for k, v in run.items() if k != "links"}


def test_without_wait_the_answer_is_202_with_the_run_and_its_links(host: FunchostProcess) -> None:
    res = start_run(host, {"input": ARITHMETIC, "instance_id": "calc-1"})

    assert res.status == 202, res.text
    run = res.json()
    assert run["id"] == "calc-1" and run["status"] in ("pending", "running", "completed")
    base = f"{host.base_url}/api/runs/calc-1"
    assert run["links"] == {"status": base, "events": f"{base}/events", "approvals": f"{base}/approvals",
                            "steer": f"{base}/steer", "cancel": f"{base}/cancel", "terminate": f"{base}/terminate"}
    assert res.headers["Location"] == base
    assert wait_for(host, "calc-1")["output"] == "12*(3+4) = 84"
    assert host.get(run["links"]["status"]).json()["status"] == "completed"


def test_wait_on_a_run_that_pauses_answers_202_when_the_time_is_up(host: FunchostProcess) -> None:
    res = start_run(host, {"input": SEND, "instance_id": "paused"}, query="?wait=0.5")

    assert res.status == 202, res.text
    run = res.json()
    assert run["status"] == "awaiting_approval"
    assert [(p["tool"], p["arguments"]) for p in run["pending_approvals"]] == [
        ("send_message", {"to": "ops", "text": "the deploy is done"})]
    assert set(run["links"]) == LINK_KEYS


def test_the_options_of_a_run_reach_the_orchestration(host: FunchostProcess) -> None:
    body = {"input": ARITHMETIC, "instance_id": "opts", "session_id": "sess-1", "tags": {"a": "1"},
            "max_turns": 5, "approval_timeout_s": 30, "retry": "no_retry"}

    res = start_run(host, body, agent="researcher", query="?wait=10")

    assert res.status == 200, res.text
    assert (res.json()["agent"], res.json()["session_id"], res.json()["tags"]) == ("researcher", "sess-1", {"a": "1"})
    given = durable_status(host, "opts")["input"]
    assert given["agent"] == "researcher" and given["input"] == ARITHMETIC
    assert (given["session_id"], given["tags"], given["max_turns"]) == ("sess-1", {"a": "1"}, 5)
    assert (given["approval_timeout_s"], given["retry"], given["history"]) == (30.0, "no_retry", [])


def test_a_failed_run_says_which_step_failed(host: FunchostProcess) -> None:
    res = start_run(host, {"input": ARITHMETIC, "instance_id": "short", "max_turns": 1}, query="?wait=10")

    assert res.status == 200, res.text
    run = res.json()
    assert (run["status"], run["output"]) == ("failed", None)
    assert run["error"] == "no final answer after 1 model calls (max_turns 1)"
    events = follow_events(host, "short")
    assert events[-1]["type"] == "run_failed" and events[-1]["data"]["error"] == run["error"]


def test_starting_a_run_refuses_bad_requests(host: FunchostProcess) -> None:
    path = "/api/agents/assistant/runs"
    assert error_of(host.post("/api/agents/nobody/runs", {"input": "hi"}), 404)["code"] == "unknown_agent"
    for body, code in [
        ({}, "missing_field"),
        ({"input": ""}, "missing_field"),
        ({"input": 12}, "invalid_field"),
        ({"input": "x" * 20_001}, "invalid_field"),
        ({"input": "hi", "instance_id": "has space"}, "invalid_field"),
        ({"input": "hi", "tags": {"k": 1}}, "invalid_field"),
        ({"input": "hi", "tags": {f"k{i}": "v" for i in range(21)}}, "invalid_field"),
        ({"input": "hi", "max_turns": 51}, "invalid_field"),
        ({"input": "hi", "approval_timeout_s": 0}, "invalid_field"),
        ({"input": "hi", "retry": "sometimes"}, "invalid_field"),
        ({"input": "hi", "agent": "writer"}, "unknown_field"),
        (["hi"], "invalid_json"),
    ]:
        assert error_of(host.post(path, body), 400)["code"] == code, body
    assert error_of(host.post(path, raw=b"{not json", headers={"Content-Type": "application/json"}), 400)[
        "code"] == "invalid_json"
    for wait in ("0", "61", "-1", "soon"):
        assert error_of(host.post(f"{path}?wait={wait}", {"input": "hi"}), 400)["code"] == "invalid_query"
    # None of them started anything.
    assert host.get(RUNS).json() == {"runs": [], "continuation": None}


def test_an_instance_id_in_use_is_a_conflict(host: FunchostProcess) -> None:
    awaiting_approval(host, "taken")
    assert start_run(host, {"input": ARITHMETIC, "instance_id": "done"}, query="?wait=10").status == 200

    for run_id in ("taken", "done"):
        assert error_of(start_run(host, {"input": ARITHMETIC, "instance_id": run_id}), 409)["code"] == "run_exists"
    assert get_run(host, "done")["output"] == "12*(3+4) = 84"  # the finished run is untouched


# --- approvals, steering, cancel, terminate ---------------------------------------------------------


def test_an_approved_message_is_sent_once_and_the_run_completes(host: FunchostProcess, outbox: Path) -> None:
    run = awaiting_approval(host, "approve-me")
    [pending] = run["pending_approvals"]
    assert outbox_messages(outbox) == []

    res = host.post(f"{RUNS}/approve-me/approvals", {"decisions": {pending["call_id"]: "approve"}, "comment": "ok"})

    assert res.status == 202, res.text
    assert res.json()["id"] == "approve-me" and set(res.json()["links"]) == LINK_KEYS
    done = wait_for(host, "approve-me")
    assert done["status"] == "completed" and done["pending_approvals"] == []
    assert "ops" in done["output"]
    [message] = outbox_messages(outbox)
    assert (message["to"], message["text"]) == ("ops", "the deploy is done")
    decided = [e for e in follow_events(host, "approve-me") if e["type"] == "approval_decided"]
    assert [e["data"] for e in decided] == [{"call_id": pending["call_id"], "decision": "approve", "comment": "ok"}]


def test_a_rejected_message_is_not_sent(host: FunchostProcess, outbox: Path) -> None:
    run = awaiting_approval(host, "reject-me")
    call_id = run["pending_approvals"][0]["call_id"]

    res = host.post(f"{RUNS}/reject-me/approvals", {"decisions": {call_id: "reject"}})

    assert res.status == 202, res.text
    done = wait_for(host, "reject-me")
    assert done["status"] == "completed"
    assert outbox_messages(outbox) == []
    events = follow_events(host, "reject-me")
    assert [e["data"]["decision"] for e in events if e["type"] == "approval_decided"] == ["reject"]
    assert not [e for e in events if e["type"] == "tool_call_started"]


def test_an_approval_times_out_as_a_rejection(host: FunchostProcess, outbox: Path) -> None:
    awaiting_approval(host, "slow-human", approval_timeout_s=1)

    done = wait_for(host, "slow-human")

    assert done["status"] == "completed" and outbox_messages(outbox) == []
    decided = [e["data"] for e in follow_events(host, "slow-human") if e["type"] == "approval_decided"]
    assert [(d["decision"], d["comment"]) for d in decided] == [("reject", "timed out")]


def test_approvals_refuse_calls_that_are_not_pending(host: FunchostProcess) -> None:
    run = awaiting_approval(host, "picky")
    call_id = run["pending_approvals"][0]["call_id"]
    path = f"{RUNS}/picky/approvals"

    error = error_of(host.post(path, {"decisions": {call_id: "approve", "call_nope": "approve"}}), 400)
    assert error["code"] == "unknown_call_id" and "call_nope" in error["message"]
    bad: list[dict[str, Any]] = [{"decisions": {}}, {"decisions": {call_id: "maybe"}}, {"decisions": [call_id]},
                                 {}, {"decisions": {call_id: "approve"}, "comment": 5}]
    for body in bad:
        error_of(host.post(path, body), 400)
    error_of(host.post(path, raw=b"nope", headers={"Content-Type": "application/json"}), 400)
    assert get_run(host, "picky")["status"] == "awaiting_approval"  # nothing was decided


def test_steering_input_joins_the_conversation_before_the_next_model_call(host: FunchostProcess) -> None:
    run = awaiting_approval(host, "steered")
    call_id = run["pending_approvals"][0]["call_id"]

    steer = host.post(f"{RUNS}/steered/steer", {"input": "also what is 2+2"})
    assert steer.status == 202, steer.text
    host.post(f"{RUNS}/steered/approvals", {"decisions": {call_id: "approve"}})

    done = wait_for(host, "steered")
    assert done["status"] == "completed" and "2+2 = 4" in done["output"]
    messages = durable_status(host, "steered")["output"]["messages"]
    assert {"role": "user", "content": "also what is 2+2"} in messages
    steered = [e for e in follow_events(host, "steered") if e["type"] == "steered"]
    assert [e["data"] for e in steered] == [{"input": "also what is 2+2"}]


def test_steering_refuses_a_malformed_body(host: FunchostProcess) -> None:
    awaiting_approval(host, "steer-bad")
    for body in ({}, {"input": ""}, {"input": 3}, {"input": "x", "mode": "steer"}, ["x"]):
        error_of(host.post(f"{RUNS}/steer-bad/steer", body), 400)


def test_cancel_while_awaiting_approval_ends_the_run_cancelled(host: FunchostProcess, outbox: Path) -> None:
    awaiting_approval(host, "cancel-me")

    res = host.post(f"{RUNS}/cancel-me/cancel", {"reason": "changed my mind"})

    assert res.status == 202, res.text
    done = wait_for(host, "cancel-me")
    assert (done["status"], done["pending_approvals"], done["error"]) == ("cancelled", [], None)
    assert outbox_messages(outbox) == []
    events = follow_events(host, "cancel-me")
    assert [e["data"] for e in events if e["type"] == "cancelled"] == [{"reason": "changed my mind"}]
    assert events[-1]["type"] == "run_finished" and events[-1]["data"]["status"] == "cancelled"


def test_cancel_and_terminate_take_an_empty_body_but_not_a_malformed_one(host: FunchostProcess) -> None:
    awaiting_approval(host, "bodies")
    for action in ("cancel", "terminate"):
        for body in ({"reason": 7}, ["x"], {"why": "x"}):
            error_of(host.post(f"{RUNS}/bodies/{action}", body), 400)
        error_of(host.post(f"{RUNS}/bodies/{action}", raw=b"{", headers={"Content-Type": "application/json"}), 400)

    assert host.post(f"{RUNS}/bodies/cancel", raw=b"").status == 202
    assert wait_for(host, "bodies")["status"] == "cancelled"


def test_terminate_stops_the_run_at_once(host: FunchostProcess, outbox: Path) -> None:
    awaiting_approval(host, "stop-me")

    res = host.post(f"{RUNS}/stop-me/terminate", {"reason": "runaway"})

    assert res.status == 202, res.text
    done = wait_for(host, "stop-me")
    assert (done["status"], done["error"], done["pending_approvals"]) == ("terminated", "terminated: runaway", [])
    assert outbox_messages(outbox) == []
    events = follow_events(host, "stop-me")
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-2]["type"] == "approval_requested"
    assert (events[-1]["type"], events[-1]["data"]) == ("run_terminated", {"reason": "runaway"})


def test_actions_on_a_finished_run_are_conflicts(host: FunchostProcess) -> None:
    assert start_run(host, {"input": ARITHMETIC, "instance_id": "finished"}, query="?wait=10").status == 200

    for action, body in [("approvals", {"decisions": {"c": "approve"}}), ("steer", {"input": "more"}),
                         ("cancel", {}), ("terminate", {})]:
        assert error_of(host.post(f"{RUNS}/finished/{action}", body), 409)["code"] == "run_finished", action
    assert get_run(host, "finished")["status"] == "completed"


def test_unknown_runs_and_other_instances_are_not_found(host: FunchostProcess) -> None:
    digest = host.post("/api/documents/digest?wait=10", {"text": "One sentence. Another one."})
    assert digest.status == 200, digest.text
    digest_id = host.get("/runtime/webhooks/durabletask/instances/").json()[0]["instanceId"]

    for run_id in ("no-such-run", digest_id):
        assert error_of(host.get(f"{RUNS}/{run_id}"), 404)["code"] == "run_not_found"
        assert error_of(host.get(f"{RUNS}/{run_id}/events?wait=0"), 404)["code"] == "run_not_found"
        for action, body in [("approvals", {"decisions": {"c": "approve"}}), ("steer", {"input": "more"}),
                             ("cancel", {}), ("terminate", {})]:
            assert error_of(host.post(f"{RUNS}/{run_id}/{action}", body), 404)["code"] == "run_not_found", action
    assert host.get(RUNS).json()["runs"] == []


# --- listing ---------------------------------------------------------------------------------------


def test_listing_filters_and_pages_newest_first(host: FunchostProcess) -> None:
    runs: list[tuple[str, str, dict[str, Any]]] = [
        ("l1", "assistant", {"tags": {"team": "ops"}, "session_id": "s1"}),
        ("l2", "researcher", {"tags": {"team": "ops"}}),
        ("l3", "assistant", {"tags": {"team": "web"}, "session_id": "s1"}),
        ("l4", "assistant", {}),
    ]
    for run_id, agent, extra in runs:
        res = start_run(host, {"input": ARITHMETIC, "instance_id": run_id, **extra}, agent=agent, query="?wait=10")
        assert res.status == 200, res.text
    awaiting_approval(host, "l5", tags={"team": "ops"})
    assert host.post("/api/documents/digest?wait=10", {"text": "Not a run. Really not."}).status == 200

    def ids(query: str) -> list[str]:
        res = host.get(f"{RUNS}{query}")
        assert res.status == 200, res.text
        return [r["id"] for r in res.json()["runs"]]

    everything = host.get(RUNS).json()
    assert [r["id"] for r in everything["runs"]] == ["l5", "l4", "l3", "l2", "l1"]
    assert everything["continuation"] is None
    assert everything["runs"][0] == get_run(host, "l5")
    assert ids("?agent=researcher") == ["l2"]
    assert ids("?session_id=s1") == ["l3", "l1"]
    assert ids("?status=awaiting_approval") == ["l5"]
    assert ids("?status=completed") == ["l4", "l3", "l2", "l1"]
    assert ids("?status=completed,awaiting_approval") == ["l5", "l4", "l3", "l2", "l1"]
    assert ids("?status=failed") == []
    assert ids("?tag=team:ops") == ["l5", "l2", "l1"]
    assert ids("?tag=team:ops&agent=assistant&status=completed") == ["l1"]
    assert ids("?agent=nobody") == []

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        query = "?top=2&status=completed,awaiting_approval" + (f"&continuation={token}" if token else "")
        page = host.get(f"{RUNS}{query}").json()
        assert len(page["runs"]) <= 2
        seen += [r["id"] for r in page["runs"]]
        pages += 1
        token = page["continuation"]
        if token is None:
            break
    assert (seen, pages) == (["l5", "l4", "l3", "l2", "l1"], 3)


def test_listing_refuses_bad_queries(host: FunchostProcess) -> None:
    for query in ("?status=done", "?status=Completed", "?tag=team", "?top=0", "?top=101", "?top=many",
                  "?continuation=not-ours"):
        assert error_of(host.get(f"{RUNS}{query}"), 400)["code"] == "invalid_query", query


# --- events ----------------------------------------------------------------------------------------


def test_the_events_of_a_finished_run_resume_without_gaps_or_duplicates(host: FunchostProcess) -> None:
    assert start_run(host, {"input": ARITHMETIC, "instance_id": "ev"}, query="?wait=10").status == 200

    events, ids = parse_sse(host.get(f"{RUNS}/ev/events"))
    n = len(events)
    assert ids == list(range(1, n + 1))
    assert [e["type"] for e in events] == [
        "run_started", "model_call_started", "model_call_finished", "tool_call_started", "tool_call_finished",
        "model_call_started", "model_call_finished", "run_finished"]
    assert events[0]["data"]["input"] == ARITHMETIC
    assert events[2]["data"]["usage"]["total_tokens"] > 0
    assert events[-1]["data"] == {"status": "completed", "output": "12*(3+4) = 84"}

    middle = n // 2
    resumed, resumed_ids = parse_sse(host.get(f"{RUNS}/ev/events", headers={"Last-Event-ID": str(middle)}))
    assert resumed_ids == list(range(middle + 1, n + 1))
    assert events[:middle] + resumed == events
    after, _ = parse_sse(host.get(f"{RUNS}/ev/events?after=3"))
    assert after == events[3:]
    # The header is what an EventSource sends on reconnect; it wins over the URL it was opened with.
    header_wins, _ = parse_sse(host.get(f"{RUNS}/ev/events?after=1", headers={"Last-Event-ID": str(n - 1)}))
    assert header_wins == events[-1:]

    for end in (host.get(f"{RUNS}/ev/events", headers={"Last-Event-ID": str(n)}),
                host.get(f"{RUNS}/ev/events?after={n}"), host.get(f"{RUNS}/ev/events?after={n + 10}")):
        assert (end.status, end.body) == (204, b"")


def test_the_events_of_a_live_run_arrive_by_long_poll(host: FunchostProcess) -> None:
    run = awaiting_approval(host, "live")
    call_id = run["pending_approvals"][0]["call_id"]
    so_far, ids = parse_sse(host.get(f"{RUNS}/live/events?wait=0"))
    assert so_far[-1]["type"] == "approval_requested"
    last = ids[-1]

    idle = host.get(f"{RUNS}/live/events?wait=0.2", headers={"Last-Event-ID": str(last)})
    assert parse_sse(idle) == ([], [])  # nothing new yet: an empty response, the client reconnects

    answer: dict[str, HttpResult] = {}
    waiting = threading.Thread(target=lambda: answer.setdefault(
        "res", host.get(f"{RUNS}/live/events?wait=20", headers={"Last-Event-ID": str(last)})))
    waiting.start()
    time.sleep(0.3)  # let the request reach its wait before the approval makes new events
    host.post(f"{RUNS}/live/approvals", {"decisions": {call_id: "approve"}})
    waiting.join(25)

    arrived, arrived_ids = parse_sse(answer["res"])
    assert arrived_ids[0] == last + 1 and arrived[0]["type"] == "approval_decided"
    events = so_far + arrived
    while True:
        res = host.get(f"{RUNS}/live/events?wait=5", headers={"Last-Event-ID": str(events[-1]["id"])})
        if res.status == 204:
            break
        events += parse_sse(res)[0]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "run_finished"


def test_events_refuse_bad_cursors_and_waits(host: FunchostProcess) -> None:
    assert start_run(host, {"input": ARITHMETIC, "instance_id": "cur"}, query="?wait=10").status == 200

    for query, headers in [("?after=-1", {}), ("?after=x", {}), ("", {"Last-Event-ID": "abc"}), ("?wait=56", {}),
                           ("?wait=-1", {})]:
        res = host.get(f"{RUNS}/cur/events{query}", headers=headers)
        assert error_of(res, 400)["code"] in ("invalid_cursor", "invalid_query"), (query, headers)
