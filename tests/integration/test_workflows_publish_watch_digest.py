"""The publish, watch and digest workflows of the app at the repo root, through funchost over real HTTP.

Each test points the app at its own outbox folder and, for watch and digest, its own knowledge folder
(`OUTBOX_DIR`, `KNOWLEDGE_DIR`), so what a workflow sends and finds is read back from files the test
owns. Agent runs use the offline model. Timers are short (well under two seconds).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost

from orchestrators.watch_workflow import CHECKS_PER_EXECUTION
from tests.paths import REPO_ROOT

WORKFLOWS = "/api/workflows"
CONTENT = "Release 1.2 is out: faster approvals and a new digest."


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    write_doc(folder, "deploys", "Deploys", "We deploy on weekdays. A deploy needs a green build and a reviewer.")
    return folder


@pytest.fixture
def env(outbox: Path, knowledge: Path) -> dict[str, str]:
    return {"OUTBOX_DIR": str(outbox), "KNOWLEDGE_DIR": str(knowledge), "AGENT_MODEL_PROVIDER": "offline"}


@pytest.fixture
def host(start_host: StartHost, env: dict[str, str]) -> FunchostProcess:
    return start_host(REPO_ROOT, env=env)


def write_doc(folder: Path, doc_id: str, title: str, body: str) -> None:
    (folder / f"{doc_id}.md").write_text(f"# {title}\n\n{body}\n", encoding="utf-8")


def start(host: FunchostProcess, kind: str, body: dict[str, Any]) -> str:
    res = host.post(f"{WORKFLOWS}/{kind}", body)
    assert res.status == 202, res.text
    started = res.json()
    assert started["kind"] == kind and started["status"] in ("pending", "running")
    assert started["links"]["status"].endswith(f"{WORKFLOWS}/{started['id']}")
    assert res.headers["Location"] == started["links"]["status"]
    workflow_id: str = started["id"]
    return workflow_id


def status(host: FunchostProcess, workflow_id: str) -> dict[str, Any]:
    res = host.status(workflow_id)
    assert res.status in (200, 202), res.text
    found: dict[str, Any] = res.json()
    return found


def wait_until(
    host: FunchostProcess,
    workflow_id: str,
    condition: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """The workflow's Durable status once `condition` holds for it."""
    deadline = time.monotonic() + timeout
    while True:
        found = status(host, workflow_id)
        if condition(found):
            return found
        if found.get("runtimeStatus") in ("Failed", "Terminated"):
            pytest.fail(f"{workflow_id} ended {found['runtimeStatus']} waiting for {what}: {found}\n{host.log()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}: {found}\n{host.log()}")
        time.sleep(0.03)


def progress(found: dict[str, Any]) -> dict[str, Any]:
    custom = found.get("customStatus") or {}
    result: dict[str, Any] = custom.get("progress") or {}
    return result


def state_of(found: dict[str, Any]) -> str | None:
    return (found.get("customStatus") or {}).get("state")


def finished(host: FunchostProcess, workflow_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The output of the workflow once it completed."""
    found = wait_until(host, workflow_id, lambda s: s.get("runtimeStatus") == "Completed", "completion", timeout)
    output: dict[str, Any] = found["output"]
    return output


def messages(outbox: Path) -> list[dict[str, Any]]:
    """The outbox's messages, by id (their `created_at` has a resolution of one second)."""
    if not outbox.is_dir():
        return []
    return sorted((json.loads(p.read_text()) for p in outbox.glob("*.json")), key=lambda m: m["id"])


def by_id(outbox: Path) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in messages(outbox)}


def decide(host: FunchostProcess, workflow_id: str, approver: str, decision: str, **extra: Any) -> Any:
    return host.post(f"{WORKFLOWS}/{workflow_id}/decision", {"approver": approver, "decision": decision, **extra})


# --- publish ------------------------------------------------------------------------------------


def test_an_approval_publishes_exactly_one_message_after_one_reminder(host: FunchostProcess, outbox: Path) -> None:
    wf = start(host, "publish", {"content": CONTENT, "approvers": ["alice", "bob"], "timeout_s": 60, "reminder_s": 0.3})
    waiting = wait_until(host, wf, lambda s: progress(s).get("reminders_sent") == 1, "the reminder")
    assert state_of(waiting) == "waiting_for_decision"
    [reminder] = messages(outbox)
    assert (reminder["id"], reminder["to"]) == (f"{wf}:reminder", "alice, bob")
    assert f"(workflow {wf})" in reminder["text"] and CONTENT in reminder["text"]

    res = decide(host, wf, "alice", "approve", comment="ship it")
    assert res.status == 202, res.text
    assert res.json()["id"] == wf and res.json()["kind"] == "publish"
    output = finished(host, wf)

    assert output == {
        "content": CONTENT,
        "outcome": "published",
        "decided_by": "alice",
        "comment": "ship it",
        "timed_out": False,
        "reminders_sent": 1,
        "refused": [],
        "message_id": f"{wf}:publish",
    }
    published = [m for m in messages(outbox) if m["id"] == f"{wf}:publish"]
    assert [(m["to"], m["text"]) for m in published] == [("publish", CONTENT)]
    assert len(messages(outbox)) == 2  # the reminder went out once, the content once
    late = decide(host, wf, "bob", "reject")
    assert late.status == 409 and late.json()["error"]["code"] == "workflow_finished"


def test_a_decision_by_someone_not_an_approver_is_refused_with_403_and_recorded(
    host: FunchostProcess, outbox: Path
) -> None:
    wf = start(host, "publish", {"content": CONTENT, "approvers": ["alice", "bob"], "timeout_s": 60})
    wait_until(host, wf, lambda s: state_of(s) == "waiting_for_decision", "the wait for a decision")

    refused = decide(host, wf, "mallory", "approve")
    assert refused.status == 403
    assert refused.json() == {
        "error": {
            "code": "not_an_approver",
            "message": f"'mallory' is not an approver of workflow '{wf}'; the refusal is recorded.",
        }
    }
    wait_until(host, wf, lambda s: progress(s).get("refused") == 1, "the refusal to be recorded")
    assert state_of(status(host, wf)) == "waiting_for_decision"  # a refusal does not settle anything
    assert decide(host, wf, "bob", "reject", comment="not this week").status == 202
    output = finished(host, wf)

    assert output["outcome"] == "rejected" and output["decided_by"] == "bob" and output["comment"] == "not this week"
    [entry] = output["refused"]
    assert entry["approver"] == "mallory" and entry["at"].startswith(time.strftime("%Y-", time.gmtime()))
    assert messages(outbox) == []  # nothing was published


def test_an_approval_that_times_out_escalates(host: FunchostProcess, outbox: Path) -> None:
    wf = start(
        host,
        "publish",
        {"content": CONTENT, "approvers": ["alice"], "timeout_s": 1, "reminder_s": 0.3, "escalate_to": "carol"},
    )
    output = finished(host, wf)

    assert output == {
        "content": CONTENT,
        "outcome": "escalated",
        "timed_out": True,
        "reminders_sent": 1,
        "refused": [],
        "message_id": f"{wf}:escalation",
    }
    sent = by_id(outbox)
    assert {key: m["to"] for key, m in sent.items()} == {f"{wf}:reminder": "alice", f"{wf}:escalation": "carol"}
    assert "none of alice decided on publishing within 1 s" in sent[f"{wf}:escalation"]["text"]
    assert state_of(status(host, wf)) == "escalated"
    late = decide(host, wf, "alice", "approve")
    assert late.status == 409


def test_an_approval_that_times_out_without_escalation_is_rejected(host: FunchostProcess, outbox: Path) -> None:
    wf = start(host, "publish", {"content": CONTENT, "approvers": ["alice"], "timeout_s": 1})
    output = finished(host, wf)
    assert output == {
        "content": CONTENT,
        "outcome": "rejected",
        "comment": "no decision within 1 s",
        "timed_out": True,
        "reminders_sent": 0,
        "refused": [],
    }
    assert messages(outbox) == []


def test_workflow_controls_answer_errors_in_the_error_shape(host: FunchostProcess) -> None:
    bad = host.post(f"{WORKFLOWS}/publish", {"content": CONTENT, "approvers": [], "timeout_s": 5})
    assert bad.status == 400 and bad.json()["error"]["code"] == "invalid_field"
    late_reminder = host.post(
        f"{WORKFLOWS}/publish", {"content": CONTENT, "approvers": ["a"], "timeout_s": 5, "reminder_s": 6}
    )
    assert late_reminder.status == 400 and "reminder_s" in late_reminder.json()["error"]["message"]
    assert host.post(f"{WORKFLOWS}/watch", {"query": "x", "interval_s": 0.01, "expires_s": 1}).status == 400
    assert host.post(f"{WORKFLOWS}/digest", {"topic": "x"}).json()["error"]["code"] == "missing_field"
    missing = decide(host, "wf-publish-nope", "alice", "approve")
    assert missing.status == 404 and missing.json()["error"]["code"] == "workflow_not_found"
    assert host.post(f"{WORKFLOWS}/wf-digest-nope/stop").status == 404

    wf = start(host, "publish", {"content": CONTENT, "approvers": ["alice"], "timeout_s": 60, "instance_id": "pub-1"})
    assert wf == "pub-1"
    again = host.post(
        f"{WORKFLOWS}/publish", {"content": CONTENT, "approvers": ["alice"], "timeout_s": 60, "instance_id": "pub-1"}
    )
    assert again.status == 409 and again.json()["error"]["code"] == "workflow_exists"
    not_stoppable = host.post(f"{WORKFLOWS}/{wf}/stop")
    assert not_stoppable.status == 409 and not_stoppable.json()["error"]["code"] == "not_stoppable"
    malformed = host.post(f"{WORKFLOWS}/{wf}/decision", {"approver": "alice", "decision": "maybe"})
    assert malformed.status == 400


@pytest.mark.crash
@pytest.mark.usefixtures("restartable_store")
def test_a_kill_during_the_approval_wait_loses_nothing_and_publishes_once(
    start_host: StartHost, host: FunchostProcess, env: dict[str, str], outbox: Path
) -> None:
    wf = start(host, "publish", {"content": CONTENT, "approvers": ["alice", "bob"], "timeout_s": 60, "reminder_s": 0.2})
    assert decide(host, wf, "mallory", "approve").status == 403
    wait_until(
        host,
        wf,
        lambda s: progress(s).get("refused") == 1 and progress(s).get("reminders_sent") == 1,
        "the refusal and the reminder",
    )

    host.kill()
    restarted = start_host(REPO_ROOT, env=env)
    wait_until(restarted, wf, lambda s: state_of(s) == "waiting_for_decision", "the wait after the restart")
    assert decide(restarted, wf, "bob", "approve").status == 202
    output = finished(restarted, wf)

    assert output["outcome"] == "published" and output["decided_by"] == "bob"
    assert output["reminders_sent"] == 1 and [r["approver"] for r in output["refused"]] == ["mallory"]
    assert sorted(m["id"] for m in messages(outbox)) == sorted([f"{wf}:reminder", f"{wf}:publish"])


# --- watch --------------------------------------------------------------------------------------


def test_a_watch_that_finds_nothing_expires_after_bounded_executions(host: FunchostProcess) -> None:
    wf = start(host, "watch", {"query": "canary release", "interval_s": 0.1, "expires_s": 3})
    output = finished(host, wf)

    assert output["query"] == "canary release" and output["found"] is False and output["expired"] is True
    assert "match" not in output
    # More checks than one execution holds: the watch continued as new and kept counting.
    assert output["checks"] > CHECKS_PER_EXECUTION
    assert state_of(status(host, wf)) == "expired"


def test_a_watch_finds_a_document_added_while_it_runs(host: FunchostProcess, knowledge: Path) -> None:
    wf = start(host, "watch", {"query": "canary release", "interval_s": 0.1, "expires_s": 30})
    wait_until(host, wf, lambda s: (progress(s).get("checks") or 0) >= 2, "two checks without a match")
    write_doc(
        knowledge,
        "canary-releases",
        "Canary releases",
        "A canary release ships to a few users first and widens when the metrics stay green.",
    )
    output = finished(host, wf)

    assert output["found"] is True and output["expired"] is False and output["checks"] >= 3
    match = output["match"]
    assert (match["id"], match["title"]) == ("canary-releases", "Canary releases")
    assert "canary release ships" in match["snippet"] and match["score"] > 0


# --- digest -------------------------------------------------------------------------------------


def test_a_digest_stopped_after_two_cycles_posted_both_digests(
    host: FunchostProcess, knowledge: Path, outbox: Path
) -> None:
    write_doc(
        knowledge,
        "canary-releases",
        "Canary releases",
        "A canary release ships to a few users first. It widens when the metrics stay green.",
    )
    wf = start(host, "digest", {"topic": "canary", "interval_s": 1.5, "tenant": "digest-tenant"})
    wait_until(host, wf, lambda s: progress(s).get("cycles") == 1, "the first cycle")
    [first] = messages(outbox)
    assert first["id"] == f"{wf}:digest:1" and first["to"] == "digest"
    assert "Digest #1 on canary" in first["text"] and "- Canary releases [canary-releases]" in first["text"]

    write_doc(
        knowledge,
        "canary-metrics",
        "Canary metrics",
        "A canary is judged on error rate and latency. A canary that regresses is rolled back.",
    )
    wait_until(host, wf, lambda s: progress(s).get("cycles") == 2, "the second cycle")
    stop = host.post(f"{WORKFLOWS}/{wf}/stop", {"reason": "enough"})
    assert stop.status == 202 and stop.json()["id"] == wf
    output = finished(host, wf)

    assert output == {
        "topic": "canary",
        "cycles": 2,
        "digests": [f"{wf}:digest:1", f"{wf}:digest:2"],
        "reported": ["canary-releases", "canary-metrics"],
    }
    second = by_id(outbox)[f"{wf}:digest:2"]
    assert second["id"] == f"{wf}:digest:2" and "- Canary metrics [canary-metrics]" in second["text"]
    assert "canary-releases" not in second["text"]  # reported once, in the first digest
    assert len(messages(outbox)) == 2
    view = host.get(f"{WORKFLOWS}/{wf}").json()
    assert (view["kind"], view["status"], view["state"], view["output"]) == ("digest", "completed", "stopped", output)
    assert [(c["run_id"], c["role"], c["status"]) for c in view["children"]] == [
        (f"{wf}:summary:1", "summary", "completed"),
        (f"{wf}:summary:2", "summary", "completed"),
    ]
    tokens = 0
    for child, digest in zip(view["children"], (first, second), strict=True):
        run = host.get(child["links"]["status"]).json()
        assert run["status"] == "completed" and run["output"] in digest["text"], run
        tokens += run["usage"]["total_tokens"]
    usage = host.get("/api/usage/tenant:digest-tenant")
    assert usage.status == 200 and usage.json() == {"scope": "tenant:digest-tenant", "tokens": tokens, "runs": 2}
    assert host.post(f"{WORKFLOWS}/{wf}/stop").status == 409
