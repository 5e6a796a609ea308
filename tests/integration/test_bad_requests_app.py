"""Every body-taking route of the app answers JSON it cannot use, and ids no run or workflow can have,
with a 400 in its error shape `{"error": {"code", "message"}}` that says what was wrong, never a 500.

The HTTP fuzz of the host found a 500 for JSON nested 100,000 levels deep (a RecursionError), for an
integer of more than 4,300 digits (a ValueError) and for the id `.` (the Durable client's URL folds it
away and gets a listing instead of a status). Sessions are tested where they are (test_sessions_api.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from funchost.testing.process import FunchostProcess, HttpResult
from funchost.testing.pytest_plugin import StartHost

from tests.paths import REPO_ROOT

# Every route of the app that takes a JSON body; the ids are ones no instance has.
BODY_ROUTES = [
    "/api/agents/assistant/runs", "/api/documents/digest", "/api/workflows/research", "/api/workflows/review",
    "/api/workflows/publish", "/api/workflows/watch", "/api/workflows/digest",
    "/api/workflows/wf-none/decision", "/api/workflows/wf-none/stop", "/api/runs/no-run/approvals",
    "/api/runs/no-run/steer", "/api/runs/no-run/cancel", "/api/runs/no-run/terminate",
    "/api/sessions/s1/messages",
]
UNUSABLE = [
    (b"[" * 100_000 + b"]" * 100_000, "more than 64 levels deep"),
    (b'{"a": ' * 65 + b"1" + b"}" * 65, "more than 64 levels deep"),
    (b'{"text": ' + b"9" * 5000 + b"}", "integer of 5000 digits"),
    (b'{"text": "caf\xe9"}', "UTF-8"),
]


@pytest.fixture
def host(start_host: StartHost, tmp_path: Path) -> FunchostProcess:
    return start_host(REPO_ROOT, env={"OUTBOX_DIR": str(tmp_path / "outbox"), "AGENT_MODEL_PROVIDER": "offline"})


def _problem(res: HttpResult, says: str) -> str | None:
    if res.status != 400:
        return f"{res.status}: {res.body[:200]!r}"
    try:
        error = res.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"not the error shape: {res.body[:200]!r}"
    if not isinstance(error.get("code"), str) or says.lower() not in str(error.get("message")).lower():
        return f"{error!r} does not say {says!r}"
    return None


def test_json_the_app_cannot_use_is_a_400_that_says_why_on_every_body_route(host: FunchostProcess) -> None:
    problems = []
    for body, says in UNUSABLE:
        for route in BODY_ROUTES:
            problem = _problem(host.post(route, raw=body, headers={"Content-Type": "application/json"}), says)
            if problem:
                problems.append(f"POST {route} with {body[:30]!r}: {problem}")
    assert not problems, "\n".join(problems)


def test_json_nested_64_levels_is_read(host: FunchostProcess) -> None:
    # Read, then refused for what it holds: the depth is not the complaint.
    body = b'{"input": "hi", "x": ' + b"[" * 62 + b"]" * 62 + b"}"
    res = host.post("/api/agents/assistant/runs", raw=body, headers={"Content-Type": "application/json"})
    assert res.status == 400, res.text
    assert res.json()["error"]["code"] == "unknown_field", res.text


@pytest.mark.parametrize(("what", "routes"), [
    ("run", ["GET /api/runs/{id}", "GET /api/runs/{id}/events", "POST /api/runs/{id}/approvals",
             "POST /api/runs/{id}/steer", "POST /api/runs/{id}/cancel", "POST /api/runs/{id}/terminate"]),
    ("workflow", ["GET /api/workflows/{id}", "POST /api/workflows/{id}/decision", "POST /api/workflows/{id}/stop"]),
])
def test_an_id_no_run_or_workflow_can_have_is_a_400(host: FunchostProcess, what: str, routes: list[str]) -> None:
    problems = []
    for odd in ("%2E", "%2E%2E", "a%20b", "a%23b", "x" * 101):
        for route in routes:
            method, path = route.split(" ")
            res = host.request(method, path.format(id=odd), raw=b"{}" if method == "POST" else None,
                               headers={"Content-Type": "application/json"})
            problem = _problem(res, f"The {what} id must be")
            if problem:
                problems.append(f"{method} {path.format(id=odd)}: {problem}")
    assert not problems, "\n".join(problems)


def test_a_chosen_run_id_of_dots_is_refused(host: FunchostProcess) -> None:
    for chosen in (".", ".."):
        res = host.post("/api/agents/assistant/runs", {"input": "hello", "instance_id": chosen})
        assert res.status == 400, res.text
        assert res.json()["error"]["code"] == "invalid_field", res.text
