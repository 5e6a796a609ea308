"""Agent runs search the knowledge base as it is now: a document added while the host runs is found."""

from __future__ import annotations

from pathlib import Path

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost

from tests.paths import REPO_ROOT

QUESTION = "What does the knowledge base say about zebra crossings?"


def run_output(host: FunchostProcess, text: str) -> str:
    res = host.post("/api/agents/researcher/runs?wait=15", {"input": text})
    assert res.status == 200, res.text
    run = res.json()
    assert run["status"] == "completed", run
    return str(run["output"])


def test_a_document_added_while_the_host_runs_is_found(start_host: StartHost, tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "timers.md").write_text("# Durable timers\n\nA durable timer survives restarts of the host.\n")
    host = start_host(REPO_ROOT, env={"KNOWLEDGE_DIR": str(knowledge), "OUTBOX_DIR": str(tmp_path / "outbox")})

    before = run_output(host, QUESTION)
    assert "Zebra crossings" not in before

    (knowledge / "zebra.md").write_text(
        "# Zebra crossings\n\nA zebra crossing gives pedestrians the right of way over cars.\n")
    after = run_output(host, QUESTION)
    assert "Zebra crossings" in after
