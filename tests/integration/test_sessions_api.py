"""Multi-turn sessions through the Function App at the repo root, served by funchost, over real HTTP.

The offline model answers (deterministic): it remembers "my name is X" from earlier user messages of
the conversation, computes with `calculator` and asks for approval before `send_message`, so a session
can be held mid-turn (awaiting approval) for as long as a test needs to queue or steer messages.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost

from tests.paths import REPO_ROOT

DURABLE = "/runtime/webhooks/durabletask"
SEND = "send a message to ops: the deploy is done"


@pytest.fixture
def app(start_host: StartHost, tmp_path: Path) -> Callable[..., FunchostProcess]:
    """Start the app with its outbox in the test's folder, plus any app settings given."""

    def start(**settings: str) -> FunchostProcess:
        return start_host(REPO_ROOT, env={"OUTBOX_DIR": str(tmp_path / "outbox"), **settings})

    return start


def new_session() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def send(
    host: FunchostProcess,
    sid: str,
    message: str,
    *,
    agent: str = "assistant",
    mode: str | None = None,
    wait: float | None = None,
) -> tuple[int, Any]:
    body: dict[str, Any] = {"agent": agent, "message": message}
    if mode is not None:
        body["mode"] = mode
    query = f"?wait={wait}" if wait is not None else ""
    res = host.post(f"/api/sessions/{sid}/messages{query}", body)
    return res.status, res.json()


def poll(what: str, read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = read()
        if done(last):
            return last
        time.sleep(0.05)
    pytest.fail(f"{what} not reached in {timeout}s; last seen: {last!r}")


def session(host: FunchostProcess, sid: str) -> dict[str, Any]:
    res = host.get(f"/api/sessions/{sid}")
    assert res.status == 200, res.text
    return dict(res.json())


def run(host: FunchostProcess, run_id: str) -> dict[str, Any]:
    res = host.get(f"/api/runs/{run_id}")
    assert res.status == 200, res.text
    return dict(res.json())


def awaiting_approval(host: FunchostProcess, run_id: str) -> dict[str, Any]:
    def read() -> dict[str, Any] | None:
        res = host.get(f"/api/runs/{run_id}")
        return res.json() if res.status == 200 else None

    found: dict[str, Any] = poll(
        f"run {run_id} awaiting approval", read, lambda r: bool(r) and r["status"] == "awaiting_approval"
    )
    return found


def approve_all(host: FunchostProcess, run_id: str) -> None:
    pending = awaiting_approval(host, run_id)["pending_approvals"]
    decisions = {p["call_id"]: "approve" for p in pending}
    res = host.post(f"/api/runs/{run_id}/approvals", {"decisions": decisions})
    assert res.status == 202, res.text


def idle_with_turns(host: FunchostProcess, sid: str, count: int, timeout: float = 30.0) -> dict[str, Any]:
    found: dict[str, Any] = poll(
        f"session {sid} idle with {count} finished turns",
        lambda: session(host, sid),
        lambda s: (
            s["status"] == "idle" and len(s["turns"]) == count and all(t["status"] != "running" for t in s["turns"])
        ),
        timeout,
    )
    return found


def instance(host: FunchostProcess, instance_id: str, query: str = "") -> dict[str, Any]:
    res = host.status(instance_id, query)
    assert res.status in (200, 202), res.text
    return dict(res.json())


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_two_turn_session_answers_from_the_first_turn(app: Callable[..., FunchostProcess]) -> None:
    host = app()
    sid = new_session()

    status, first = send(host, sid, "my name is Ada", wait=20)
    assert status == 200, first
    assert first["status"] == "completed" and first["session_id"] == sid
    status, second = send(host, sid, "what is my name?", wait=20)
    assert status == 200, second
    assert second["status"] == "completed"
    assert second["output"] == "Your name is Ada."
    assert second["links"]["status"].endswith(f"/api/runs/{second['id']}")

    # The run answers as soon as it completes; the session's loop records the turn just after.
    state = idle_with_turns(host, sid, 2)
    assert state["session_id"] == sid and state["agent"] == "assistant" and state["status"] == "idle"
    assert [t["run_id"] for t in state["turns"]] == [first["id"], second["id"]]
    assert [t["status"] for t in state["turns"]] == ["completed", "completed"]
    assert [t["output"] for t in state["turns"]] == [first["output"], "Your name is Ada."]
    assert [(m["role"], m["content"]) for m in state["messages"]] == [
        ("user", "my name is Ada"),
        ("assistant", first["output"]),
        ("user", "what is my name?"),
        ("assistant", "Your name is Ada."),
    ]
    total = {k: first["usage"][k] + second["usage"][k] for k in first["usage"]}
    assert state["usage"] == total and total["total_tokens"] > 0
    assert state["active_run"] is None and state["queued"] == []
    assert state["summary"] is None and state["dropped_turns"] == 0
    # The turn's run is an ordinary run of the run API, tied to its session.
    assert run(host, second["id"])["session_id"] == sid


def test_messages_queue_behind_the_running_turn_and_run_in_order(app: Callable[..., FunchostProcess]) -> None:
    host = app()
    sid = new_session()

    status, held = send(host, sid, SEND, wait=0.5)  # needs approval: the turn waits for a human
    assert status == 202, held
    assert held["mode"] == "queue" and held["links"]["session"].endswith(f"/api/sessions/{sid}")
    awaiting_approval(host, held["run_id"])
    status, second = send(host, sid, "what is 6*7?")
    assert status == 202 and second["mode"] == "queue"
    status, third = send(host, sid, "and times 10?")
    assert status == 202

    # A message is accepted (202) once it is on its way to the loop, which queues it a moment later.
    waiting = poll("both messages queued", lambda: session(host, sid), lambda s: len(s["queued"]) >= 2)
    assert waiting["status"] == "active"
    assert waiting["active_run"] == held["run_id"]
    assert waiting["queued"] == [second["run_id"], third["run_id"]]
    assert host.get(f"/api/runs/{second['run_id']}").status == 404  # not started while the first runs

    approve_all(host, held["run_id"])
    state = idle_with_turns(host, sid, 3)

    order = [held["run_id"], second["run_id"], third["run_id"]]
    assert [t["run_id"] for t in state["turns"]] == order
    assert [t["output"] for t in state["turns"]] == ["Message sent to ops.", "6*7 = 42", "42*10 = 420"]
    # One at a time: each turn's run was created after the one before it had finished.
    statuses = [instance(host, run_id) for run_id in order]
    for before, after in zip(statuses, statuses[1:], strict=False):
        assert before["runtimeStatus"] == "Completed"
        assert when(after["createdTime"]) >= when(before["lastUpdatedTime"])


def test_steer_joins_the_turn_that_waits_for_approval(app: Callable[..., FunchostProcess]) -> None:
    host = app()
    sid = new_session()

    status, held = send(host, sid, SEND)
    assert status == 202
    awaiting_approval(host, held["run_id"])

    status, steered = send(host, sid, "what is 2+3?", mode="steer")
    assert status == 202, steered
    assert steered == {**steered, "run_id": held["run_id"], "mode": "steer"}
    assert session(host, sid)["queued"] == []  # steering adds no turn

    approve_all(host, held["run_id"])
    state = idle_with_turns(host, sid, 1)

    assert state["turns"][0]["output"] == "Message sent to ops.\n2+3 = 5"
    user_inputs = [m["content"] for m in state["messages"] if m["role"] == "user"]
    assert user_inputs == [SEND, "what is 2+3?"]
    events = host.get(f"/api/runs/{held['run_id']}/events").text
    assert "event: steered" in events and "what is 2+3?" in events

    # With no turn running, a steering message becomes a turn of its own.
    status, own = send(host, sid, "what is 1+1?", mode="steer", wait=20)
    assert status == 200, own
    assert own["output"] == "1+1 = 2" and own["id"] != held["run_id"]
    assert len(session(host, sid)["turns"]) == 2


def test_a_failed_turn_is_recorded_and_the_session_goes_on(app: Callable[..., FunchostProcess]) -> None:
    host = app()
    sid = new_session()

    status, held = send(host, sid, SEND)
    awaiting_approval(host, held["run_id"])
    status, after = send(host, sid, "what is 6*7?")
    assert status == 202

    res = host.post(f"/api/runs/{held['run_id']}/terminate", {"reason": "changed my mind"})
    assert res.status == 202, res.text
    state = idle_with_turns(host, sid, 2)

    failed, done = state["turns"]
    assert failed["run_id"] == held["run_id"] and failed["status"] == "terminated"
    assert failed["output"] is None and "changed my mind" in failed["error"]
    assert done["run_id"] == after["run_id"] and done["status"] == "completed" and done["output"] == "6*7 = 42"
    # The terminated turn left nothing in the conversation the next turns build on.
    assert [m["content"] for m in state["messages"] if m["role"] == "user"] == ["what is 6*7?"]


def test_the_loop_continues_as_new_and_keeps_every_message(app: Callable[..., FunchostProcess]) -> None:
    host = app()
    sid = new_session()

    status, held = send(host, sid, SEND)
    awaiting_approval(host, held["run_id"])
    run_ids = [held["run_id"]]
    for i in range(1, 7):
        status, queued = send(host, sid, f"what is {i}+{i}?")
        assert status == 202
        run_ids.append(queued["run_id"])
    approve_all(host, held["run_id"])
    state = idle_with_turns(host, sid, 7)

    assert [t["run_id"] for t in state["turns"]] == run_ids
    assert [t["output"] for t in state["turns"][1:]] == [f"{i}+{i} = {2 * i}" for i in range(1, 7)]
    loop = instance(host, f"session-{sid}", "?showInput=true")
    assert loop["runtimeStatus"] == "Running"
    assert loop["input"]["turns_done"] == 5  # the execution that runs now started after five turns
    assert loop["customStatus"] == {"session_id": sid, "agent": "assistant", "active_run": None, "queued": []}


def test_messages_sent_at_once_to_a_new_session_all_become_turns(app: Callable[..., FunchostProcess]) -> None:
    host = app()
    sid = new_session()

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda i: send(host, sid, f"what is {i}*{i}?"), range(4)))

    assert [status for status, _ in answers] == [202] * 4, answers
    state = idle_with_turns(host, sid, 4)
    assert sorted(t["run_id"] for t in state["turns"]) == sorted(body["run_id"] for _, body in answers)
    assert sorted(t["output"] for t in state["turns"]) == sorted(f"{i}*{i} = {i * i}" for i in range(4))


def test_the_session_token_budget_counts_every_turn(app: Callable[..., FunchostProcess]) -> None:
    host = app(SESSION_TOKEN_BUDGET="1000")  # one offline model call costs roughly 800 tokens
    sid = new_session()

    status, first = send(host, sid, "my name is Ada", wait=20)
    assert status == 200 and first["status"] == "completed", first
    assert first["usage"]["total_tokens"] < 1000
    status, second = send(host, sid, "what is my name?", wait=20)
    assert status == 200, second
    assert second["status"] == "budget_exceeded"

    state = idle_with_turns(host, sid, 2)  # the loop records the turn's end just after the run answers
    assert [t["status"] for t in state["turns"]] == ["completed", "budget_exceeded"]
    assert state["usage"]["total_tokens"] == first["usage"]["total_tokens"] + second["usage"]["total_tokens"] > 1000


def test_get_and_delete_a_session(app: Callable[..., FunchostProcess]) -> None:
    host = app()
    sid = new_session()
    assert host.get(f"/api/sessions/{sid}").json()["error"]["code"] == "session_not_found"
    assert host.get(f"/api/sessions/{sid}").status == 404
    assert host.delete(f"/api/sessions/{sid}").status == 404

    status, held = send(host, sid, SEND)
    awaiting_approval(host, held["run_id"])

    res = host.delete(f"/api/sessions/{sid}")
    assert res.status == 202, res.text
    assert res.json() == {"session_id": sid, "deleted": True, "terminated_runs": [held["run_id"]]}
    # A termination is accepted, then applied: wait for each instance to end, and check how it ended.
    assert host.wait_for_status(f"session-{sid}")["runtimeStatus"] == "Terminated"
    assert host.wait_for_status(held["run_id"])["runtimeStatus"] == "Terminated"
    poll("the deleted session to be gone", lambda: host.get(f"/api/sessions/{sid}").status, lambda s: s == 404)
    assert host.delete(f"/api/sessions/{sid}").status == 404

    # The id can be used again: a new conversation, which knows nothing of the deleted one.
    status, fresh = send(host, sid, "what is my name?", wait=20)
    assert status == 200, fresh
    assert fresh["output"] == "You have not told me your name."
    assert [t["run_id"] for t in session(host, sid)["turns"]] == [fresh["id"]]


def test_bad_requests_unknown_agents_and_agent_mismatch(app: Callable[..., FunchostProcess]) -> None:
    host = app()
    sid = new_session()

    def error(res: Any) -> tuple[int, str]:
        return res.status, res.json()["error"]["code"]

    path = f"/api/sessions/{sid}/messages"
    assert error(host.post(path, raw=b"{not json")) == (400, "invalid_json")
    assert error(host.post(path, {"agent": "assistant"})) == (400, "missing_field")
    assert error(host.post(path, {"agent": "assistant", "message": "  "})) == (400, "missing_field")
    assert error(host.post(path, {"agent": "assistant", "message": 5})) == (400, "invalid_field")
    assert error(host.post(path, {"agent": "assistant", "message": "hi", "mode": "shout"})) == (400, "invalid_field")
    assert error(host.post(path, {"agent": "assistant", "message": "hi", "colour": "red"})) == (400, "unknown_field")
    assert error(host.post(path + "?wait=0", {"agent": "assistant", "message": "hi"})) == (400, "invalid_query")
    too_long = "x" * 101
    assert error(host.post(f"/api/sessions/{too_long}/messages", {"agent": "assistant", "message": "hi"})) == (
        400,
        "invalid_session_id",
    )
    assert error(host.get("/api/sessions/bad%20id")) == (400, "invalid_session_id")
    assert error(host.post(path, {"agent": "nobody", "message": "hi"})) == (404, "agent_not_found")
    assert host.get(f"/api/sessions/{sid}").status == 404  # nothing was started by the refused requests

    status, first = send(host, sid, "hello", wait=20)
    assert status == 200, first
    res = host.post(path, {"agent": "writer", "message": "hello"})
    assert error(res) == (409, "agent_mismatch")
    assert len(session(host, sid)["turns"]) == 1


def test_an_idle_session_expires_and_a_later_message_starts_anew(app: Callable[..., FunchostProcess]) -> None:
    host = app(SESSION_IDLE_TIMEOUT_S="1")
    sid = new_session()

    status, first = send(host, sid, "my name is Ada", wait=20)
    assert status == 200, first
    expired = poll("the session to expire", lambda: session(host, sid), lambda s: s["status"] == "expired", timeout=15)

    assert expired["messages"] == [] and expired["turns"] == [] and expired["summary"] is None
    assert expired["agent"] == "assistant" and expired["usage"] == first["usage"] and expired["turn_count"] == 1
    assert expired["expired_at"] is not None
    loop = instance(host, f"session-{sid}")
    assert loop["runtimeStatus"] == "Completed"
    assert loop["output"] == {"session_id": sid, "status": "expired", "turns": 1}

    # After expiry the session is a new conversation, with any agent.
    status, again = send(host, sid, "what is my name?", agent="researcher", wait=20)
    assert status == 200, again
    assert again["output"] == "You have not told me your name."
    state = session(host, sid)
    assert state["agent"] == "researcher" and [t["run_id"] for t in state["turns"]] == [again["id"]]

    # Deleting an idle session stops its loop, which holds no run.
    res = host.delete(f"/api/sessions/{sid}")
    assert res.status == 202, res.text
    assert res.json()["terminated_runs"] == []
    assert instance(host, f"session-{sid}")["runtimeStatus"] in ("Terminated", "Completed")
    poll("the deleted session to be gone", lambda: host.get(f"/api/sessions/{sid}").status, lambda s: s == 404)
