"""The research and review workflows, the usage entity and the workflow views, through funchost over HTTP.

The app at the repo root runs them with real agent runs as sub-orchestrations. Most tests use the offline
model, whose planner, writer and reviewer rules (`agents.models._offline_workflows`) make the outputs
exact. A failing subtopic and a slow fan-out need a model provider that misbehaves on cue: for those the
app talks to the local chat-completions server (`tests.support.chat_completions_server`), which answers
like the offline model, here with one addition (`WorkflowModelServer`): a researcher's model request
waits `research_delay_s`, and one about a subtopic in `failing` gets an HTTP 400, which a run never
retries, so exactly that researcher run fails, whatever order the runs reach the server in.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from funchost.testing.process import FunchostProcess, HttpResult
from funchost.testing.pytest_plugin import StartHost

from agents.knowledge import knowledge_from_env
from tests.integration._agent_runs import events_after, openai_env, types
from tests.paths import REPO_ROOT
from tests.support.chat_completions_server import ChatCompletionsServer, RecordedRequest

WORKFLOWS = "/api/workflows"
TOPIC = "durable functions patterns"
VIEW_KEYS = {"id", "kind", "status", "state", "progress", "output", "children", "created_at", "updated_at", "error"}


def planned_subtopics(topic: str, most: int) -> list[str]:
    """What the offline planner answers for `topic`: the titles of the matching documents, best first."""
    titles = [hit["title"] for hit in knowledge_from_env({}).search(topic, most)]
    assert len(titles) >= 2, "the test topic must match at least two knowledge documents"
    return titles


def research_subtopic(body: Any) -> str | None:
    """The subtopic of a researcher's model request (its first user message is "Research <subtopic>")."""
    for message in body.get("messages") or [] if isinstance(body, dict) else []:
        content = message.get("content") or ""
        if message.get("role") == "user" and content.startswith("Research "):
            return str(content.split("\n", 1)[0][len("Research ") :])
    return None


def requests_about(requests: list[RecordedRequest], subtopic: str) -> int:
    return sum(1 for r in requests if research_subtopic(r.body) == subtopic)


class WorkflowModelServer(ChatCompletionsServer):
    """The chat-completions server with slow researchers and researchers that fail (see the module docstring)."""

    def __init__(self, *, research_delay_s: float = 0.0, failing: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.research_delay_s = research_delay_s
        self.failing = failing

    async def _answer(self, request: web.Request, authorised: bool) -> web.StreamResponse:
        subtopic = research_subtopic(await request.json())
        if subtopic is not None and subtopic in self.failing:
            await self._record(request)
            error = {"message": f"this model refuses to research {subtopic!r}", "type": "invalid_request_error"}
            return web.json_response({"error": error}, status=400)
        if subtopic is not None and self.research_delay_s:
            await asyncio.sleep(self.research_delay_s)
        return await super()._answer(request, authorised)


@pytest.fixture
def host(start_host: StartHost, tmp_path: Path) -> FunchostProcess:
    return start_host(REPO_ROOT, env={"AGENT_MODEL_PROVIDER": "offline", "OUTBOX_DIR": str(tmp_path / "outbox")})


# --- helpers --------------------------------------------------------------------------------------


def start(host: FunchostProcess, kind: str, body: dict[str, Any], query: str = "") -> dict[str, Any]:
    res = host.post(f"{WORKFLOWS}/{kind}{query}", body)
    assert res.status in (200, 202), res.text
    view: dict[str, Any] = res.json()
    return view


def get_workflow(host: FunchostProcess, workflow_id: str) -> dict[str, Any]:
    res = host.get(f"{WORKFLOWS}/{workflow_id}")
    assert res.status == 200, res.text
    view: dict[str, Any] = res.json()
    return view


def wait_for_workflow(host: FunchostProcess, workflow_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = get_workflow(host, workflow_id)
        if view["status"] in ("completed", "failed", "terminated"):
            return view
        assert time.monotonic() < deadline, f"workflow {workflow_id} still {view['status']}: {view}\n{host.log()}"
        time.sleep(0.05)


def get_run(host: FunchostProcess, run_id: str) -> dict[str, Any]:
    res = host.get(f"/api/runs/{run_id}")
    assert res.status == 200, res.text
    run: dict[str, Any] = res.json()
    return run


def error_code(res: HttpResult, status: int) -> str:
    assert res.status == status, f"expected {status}, got {res.status}: {res.text}"
    body = res.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return str(body["error"]["code"])


def child_ids(view: dict[str, Any]) -> list[str]:
    return [c["run_id"] for c in view["children"]]


def child_tokens(host: FunchostProcess, run_ids: list[str]) -> int:
    return sum(int(get_run(host, run_id)["usage"]["total_tokens"]) for run_id in run_ids)


def usage(host: FunchostProcess, scope: str) -> dict[str, Any]:
    res = host.get(f"/api/usage/{scope}")
    assert res.status == 200, res.text
    found: dict[str, Any] = res.json()
    return found


# --- research ---------------------------------------------------------------------------------------


def test_research_plans_researches_and_writes_a_report_citing_the_knowledge_base(host: FunchostProcess) -> None:
    expected = planned_subtopics(TOPIC, 3)
    view = start(host, "research", {"topic": TOPIC, "max_subtopics": 3, "tenant": "acme"}, "?wait=60")
    wf = view["id"]

    assert set(view) == VIEW_KEYS | {"links"} and view["links"]["status"].endswith(f"{WORKFLOWS}/{wf}")
    assert wf.startswith("wf-research-") and (view["kind"], view["status"], view["error"]) == (
        "research", "completed", None), view
    assert view["progress"] == {"total": 3, "done": 3, "failed": 0, "running": 0}
    output = view["output"]
    assert [s["subtopic"] for s in output["subtopics"]] == expected
    for i, entry in enumerate(output["subtopics"], start=1):
        assert (entry["status"], entry["run_id"]) == ("completed", f"{wf}:researcher:{i}")
        run = get_run(host, entry["run_id"])
        assert (run["agent"], run["status"], run["output"]) == ("researcher", "completed", entry["summary"])
        assert entry["sources"], entry
        assert f"[{entry['sources'][0]}]" in entry["summary"]  # the researcher cites what it found
    report = output["report"]
    assert report.startswith("Durable functions patterns: a report")
    assert all(subtopic in report for subtopic in expected)
    found = {source for entry in output["subtopics"] for source in entry["sources"]}
    assert output["citations"] and set(output["citations"]) <= found
    assert all(f"[{doc_id}]" in report for doc_id in output["citations"])
    assert output["citations"] == list(dict.fromkeys(output["citations"]))

    roles = [(c["role"], c["status"]) for c in view["children"]]
    assert roles == [("planner", "completed")] + [("researcher", "completed")] * 3 + [("writer", "completed")]
    assert child_ids(view) == [f"{wf}:planner:1", *(f"{wf}:researcher:{i}" for i in (1, 2, 3)), f"{wf}:writer:1"]
    planner = host.get(view["children"][0]["links"]["status"])
    assert planner.status == 200 and planner.json()["agent"] == "planner"
    assert planner.json()["tags"] == {"workflow": wf, "workflow_role": "planner"}
    assert types(events_after(host, f"{wf}:writer:1"))[-1] == "run_finished"
    tokens = child_tokens(host, child_ids(view))
    assert output["usage"] == {"tokens": tokens, "runs": 5}
    assert usage(host, "tenant:acme") == {"scope": "tenant:acme", "tokens": tokens, "runs": 5}


def test_one_failing_subtopic_is_listed_as_failed_and_the_report_still_written(
    start_host: StartHost, tmp_path: Path
) -> None:
    expected = planned_subtopics(TOPIC, 4)
    broken = expected[2]
    with WorkflowModelServer(research_delay_s=0.3, failing=(broken,)) as server:
        host = start_host(REPO_ROOT, env=openai_env(server, tmp_path))
        wf = start(host, "research", {"topic": TOPIC, "max_subtopics": 4, "parallelism": 2})["id"]
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while (view := get_workflow(host, wf))["status"] in ("pending", "running"):
            seen.append(view["progress"])
            assert time.monotonic() < deadline, view
            time.sleep(0.05)

    assert view["status"] == "completed", view
    output = view["output"]
    by_subtopic = {s["subtopic"]: s for s in output["subtopics"]}
    assert list(by_subtopic) == expected
    failed = by_subtopic.pop(broken)
    assert (failed["status"], failed["run_id"], failed["sources"]) == ("failed", f"{wf}:researcher:3", [])
    assert "model call at turn 1 failed" in failed["error"] and "refuses to research" in failed["error"]
    assert "summary" not in failed
    assert all(s["status"] == "completed" and s["summary"] for s in by_subtopic.values())
    assert f"Not covered, because their research failed: {broken}." in output["report"]
    assert output["citations"]
    assert view["progress"] == {"total": 4, "done": 4, "failed": 1, "running": 0}
    statuses = {c["run_id"]: c["status"] for c in view["children"]}
    assert statuses[f"{wf}:researcher:3"] == "failed" and get_run(host, f"{wf}:researcher:3")["status"] == "failed"
    # Progress counted up while the window slid, never more than `parallelism` researchers at once.
    researching = [p for p in seen if "total" in p]
    assert researching and all(p["running"] <= 2 for p in researching)
    assert any(0 < p["done"] < 4 for p in researching), researching


# --- review -----------------------------------------------------------------------------------------


def test_review_revises_until_the_reviewer_approves(host: FunchostProcess) -> None:
    brief = "Write a short note on retries and backoff for the Friday release"
    view = start(host, "review", {"brief": brief, "tenant": "acme"}, "?wait=60")
    wf = view["id"]

    assert (view["kind"], view["status"]) == ("review", "completed"), view
    output = view["output"]
    assert (output["brief"], output["approved"], output["rounds"]) == (brief, True, 2)
    assert output["critiques"][0] == "Not approved. Missing: friday, release. Add a sentence on each."
    assert output["critiques"][1].startswith("APPROVED.")
    first, second = output["drafts"]
    assert second == f"{first}\n\nIt also covers friday and release." and output["final"] == second
    assert "Sources: [retries-and-backoff]" in first
    assert [(c["run_id"], c["role"]) for c in view["children"]] == [
        (f"{wf}:writer:1", "writer"), (f"{wf}:reviewer:1", "reviewer"),
        (f"{wf}:writer:2", "writer"), (f"{wf}:reviewer:2", "reviewer")]
    assert get_run(host, f"{wf}:reviewer:2")["output"] == output["critiques"][1]
    assert view["progress"] == {"round": 2, "max_rounds": 3, "approved": True}


def test_review_approved_at_once_needs_one_round(host: FunchostProcess) -> None:
    output = start(host, "review", {"brief": "Explain durable timers"}, "?wait=60")["output"]
    assert (output["approved"], output["rounds"], len(output["drafts"]), len(output["critiques"])) == (True, 1, 1, 1)
    assert output["critiques"][0] == "APPROVED. The draft covers every point of the brief: durable, timers."


def test_review_that_is_never_approved_stops_at_max_rounds(host: FunchostProcess) -> None:
    brief = "Durable timers for reminders. The reviewer must never approve."
    view = start(host, "review", {"brief": brief, "max_rounds": 3}, "?wait=60")

    assert view["status"] == "completed", view
    output = view["output"]
    assert (output["approved"], output["rounds"]) == (False, 3)
    assert len(output["drafts"]) == len(output["critiques"]) == 3
    assert all(c.startswith("Not approved.") and "never approve" in c for c in output["critiques"])
    for earlier, later in zip(output["drafts"], output["drafts"][1:], strict=False):
        assert later.startswith(earlier) and later != earlier  # each round revised the previous draft
    assert output["final"] == output["drafts"][2]
    assert [c["role"] for c in view["children"]] == ["writer", "reviewer"] * 3


# --- usage ------------------------------------------------------------------------------------------


def test_usage_totals_add_up_over_concurrent_workflows(host: FunchostProcess) -> None:
    assert error_code(host.get("/api/usage/tenant:acme"), 404) == "usage_not_found"
    ids = [start(host, "research", {"topic": topic, "max_subtopics": 3, "parallelism": 3, "tenant": "acme"})["id"]
           for topic in (TOPIC, "retries and backoff", "approval and timers")]
    ids.append(start(host, "review", {"brief": "Explain durable timers", "tenant": "globex"})["id"])
    views = [wait_for_workflow(host, wf) for wf in ids]
    assert [v["status"] for v in views] == ["completed"] * 4

    runs = {run_id: get_run(host, run_id) for v in views for run_id in child_ids(v)}
    research_runs = [r for v in views[:3] for r in child_ids(v)]
    assert len(research_runs) == 15
    acme = usage(host, "tenant:acme")
    assert acme == {"scope": "tenant:acme", "runs": 15,
                    "tokens": sum(runs[r]["usage"]["total_tokens"] for r in research_runs)}
    assert usage(host, "tenant:globex")["runs"] == 2
    for agent in ("planner", "researcher", "writer", "reviewer"):
        mine = [r for r in runs.values() if r["agent"] == agent]
        assert usage(host, f"agent:{agent}") == {
            "scope": f"agent:{agent}", "runs": len(mine), "tokens": sum(r["usage"]["total_tokens"] for r in mine)}
    assert usage(host, "agent:writer")["runs"] == 4  # three reports and one draft

    listed = host.get(f"{WORKFLOWS}?kind=research&status=completed").json()["workflows"]
    assert [w["id"] for w in listed] == sorted(ids[:3], key=lambda i: next(
        v["created_at"] for v in views if v["id"] == i), reverse=True)
    assert {w["kind"] for w in host.get(WORKFLOWS).json()["workflows"]} == {"research", "review"}
    assert host.get(f"{WORKFLOWS}?status=running").json()["workflows"] == []


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body", "code"),
    [
        ("research", {}, "missing_field"),
        ("research", {"topic": "  "}, "missing_field"),
        ("research", {"topic": 7}, "invalid_field"),
        ("research", {"topic": "x", "max_subtopics": 0}, "invalid_field"),
        ("research", {"topic": "x", "max_subtopics": 9}, "invalid_field"),
        ("research", {"topic": "x", "parallelism": True}, "invalid_field"),
        ("research", {"topic": "x", "tenant": "a b"}, "invalid_field"),
        ("research", {"topic": "x", "subtopics": 3}, "unknown_field"),
        ("review", {"max_rounds": 2}, "missing_field"),
        ("review", {"brief": "x", "max_rounds": 6}, "invalid_field"),
        ("review", {"brief": "x", "instance_id": "has space"}, "invalid_field"),
    ],
)
def test_bad_bodies_are_400(host: FunchostProcess, kind: str, body: dict[str, Any], code: str) -> None:
    assert error_code(host.post(f"{WORKFLOWS}/{kind}", body), 400) == code


def test_bad_requests_and_unknown_ids(host: FunchostProcess) -> None:
    assert error_code(host.post(f"{WORKFLOWS}/research", raw=b"not json"), 400) == "invalid_json"
    assert error_code(host.post(f"{WORKFLOWS}/research?wait=0", {"topic": "x"}), 400) == "invalid_query"
    assert error_code(host.get(f"{WORKFLOWS}/wf-research-nothing"), 404) == "workflow_not_found"
    assert error_code(host.get(f"{WORKFLOWS}?kind=essay"), 400) == "invalid_query"
    assert error_code(host.get(f"{WORKFLOWS}?status=done"), 400) == "invalid_query"
    assert error_code(host.get("/api/usage/team:acme"), 400) == "invalid_scope"
    assert error_code(host.get("/api/usage/agent:nobody"), 404) == "usage_not_found"

    done = start(host, "review", {"brief": "Explain durable timers", "instance_id": "my-review"}, "?wait=60")
    assert (done["id"], done["status"]) == ("my-review", "completed")
    assert error_code(host.post(f"{WORKFLOWS}/research", {"topic": "x", "instance_id": "my-review"}), 409) == (
        "workflow_exists")
    # An agent run is not a workflow, even one started by a workflow.
    assert error_code(host.get(f"{WORKFLOWS}/my-review:writer:1"), 404) == "workflow_not_found"


# --- crash ------------------------------------------------------------------------------------------


@pytest.mark.crash
@pytest.mark.usefixtures("restartable_store")
def test_a_kill_during_the_fan_out_repeats_no_finished_child_run(start_host: StartHost, tmp_path: Path) -> None:
    expected = planned_subtopics(TOPIC, 4)
    with WorkflowModelServer(research_delay_s=0.5) as server:
        env = openai_env(server, tmp_path)
        host = start_host(REPO_ROOT, env=env)
        wf = start(host, "research", {"topic": TOPIC, "max_subtopics": 4, "parallelism": 2, "tenant": "acme"})["id"]
        deadline = time.monotonic() + 60
        while not 1 <= (view := get_workflow(host, wf))["progress"].get("done", 0) < 3:
            assert time.monotonic() < deadline and view["status"] in ("pending", "running"), view
            time.sleep(0.02)
        finished = [c["run_id"] for c in view["children"] if c["status"] == "completed"]
        requests_before = server.requests
        host.kill()

        restarted = start_host(REPO_ROOT, env=env)
        done = wait_for_workflow(restarted, wf)
        requests_after = server.requests

    assert done["status"] == "completed", done
    output = done["output"]
    assert [(s["subtopic"], s["status"]) for s in output["subtopics"]] == [(s, "completed") for s in expected]
    assert output["report"].startswith("Durable functions patterns: a report") and output["citations"]
    # Every child ran under its one id, and no child that had finished before the kill ran again.
    assert child_ids(done) == [f"{wf}:planner:1", *(f"{wf}:researcher:{i}" for i in (1, 2, 3, 4)), f"{wf}:writer:1"]
    assert f"{wf}:planner:1" in finished
    plans = [r for r in requests_after if "Plan the research of:" in str(r.body["messages"])]
    assert len(plans) == 2  # the planner's two model calls, both before the kill, never made again
    for run_id in finished:
        n = int(run_id.rsplit(":", 1)[1])
        if ":researcher:" in run_id:
            subtopic = expected[n - 1]
            assert requests_about(requests_after, subtopic) == requests_about(requests_before, subtopic) == 2
    for run_id in child_ids(done):
        run = get_run(restarted, run_id)
        events = types(events_after(restarted, run_id))
        assert run["status"] == "completed", run
        assert events.count("run_started") == 1 and events[-1] == "run_finished", (run_id, events)
        assert events.count("model_call_finished") == run["turns"], (run_id, events)
    tokens = child_tokens(restarted, child_ids(done))
    assert usage(restarted, "tenant:acme") == {"scope": "tenant:acme", "tokens": tokens, "runs": 6}
    assert output["usage"] == {"tokens": tokens, "runs": 6}
