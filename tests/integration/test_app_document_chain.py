"""The Function App at the repo root, served by funchost: the document digest chain over real HTTP.

The starter uses the SDK's own DurableOrchestrationClient, so these tests also pin what a client of
the app sees: the check-status payload, the status endpoint it points to, and `?wait=`.
"""

from __future__ import annotations

import time
from typing import Any

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost

from tests.paths import REPO_ROOT

DIGEST = "/api/documents/digest"
TERMINAL = ("Completed", "Failed", "Terminated")

SAMPLE_TEXT = (
    "Durable functions keep workflow state in storage. "
    "A workflow survives restarts because its state is stored. "
    "The weather was pleasant today. "
    "Storage makes workflow functions durable."
)
# Sentence scores 4.0, 2.67, 1.0, 3.33 (see tests/unit/test_document_chain.py); keywords by count, then order.
KEYWORDS = ["workflow", "durable", "functions", "state", "storage"]
DIGEST_OF_2 = {
    "summary": "Durable functions keep workflow state in storage. Storage makes workflow functions durable.",
    "sentence_count": 4,
    "keywords": KEYWORDS,
}
DIGEST_OF_3 = {
    "summary": "Durable functions keep workflow state in storage. "
    "A workflow survives restarts because its state is stored. "
    "Storage makes workflow functions durable.",
    "sentence_count": 4,
    "keywords": KEYWORDS,
}


def follow(host: FunchostProcess, status_url: str, timeout: float = 30.0) -> dict[str, Any]:
    """GET the check-status URL until the instance is terminal, as a client of the app would."""
    deadline = time.monotonic() + timeout
    while True:
        res = host.get(status_url)
        assert res.status in (200, 202), f"{res.status} {res.text}"
        status: dict[str, Any] = res.json()
        if status["runtimeStatus"] in TERMINAL:
            assert res.status == 200
            return status
        assert res.status == 202, f"a {status['runtimeStatus']} instance answered {res.status}"
        assert time.monotonic() < deadline, f"instance not terminal after {timeout}s: {status}"
        time.sleep(0.05)


def test_digest_runs_to_completion_behind_its_status_url(start_host: StartHost) -> None:
    host = start_host(REPO_ROOT)

    res = host.post(DIGEST, {"text": SAMPLE_TEXT, "max_sentences": 2})

    assert res.status == 202, res.text
    links = res.json()
    assert {"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri"} <= set(links)
    assert res.headers["Location"] == links["statusQueryGetUri"]
    status_url = links["statusQueryGetUri"]
    assert status_url.startswith(f"{host.base_url}/runtime/webhooks/durabletask/instances/{links['id']}")

    status = follow(host, status_url)

    assert status["runtimeStatus"] == "Completed", status
    assert (status["name"], status["instanceId"]) == ("document_digest", links["id"])
    assert status["input"] == {"text": SAMPLE_TEXT, "max_sentences": 2}
    assert status["customStatus"] == {"step": "done"}
    assert status["output"] == DIGEST_OF_2


def test_wait_answers_with_the_digest_when_it_finishes_in_time(start_host: StartHost) -> None:
    host = start_host(REPO_ROOT)

    res = host.post(f"{DIGEST}?wait=10", {"text": SAMPLE_TEXT})

    assert res.status == 200, res.text
    assert res.headers["Content-Type"].startswith("application/json")
    assert res.json() == DIGEST_OF_3


def test_bad_input_is_a_400_with_a_code_and_starts_nothing(start_host: StartHost) -> None:
    host = start_host(REPO_ROOT)
    cases: dict[str, tuple[str, bytes]] = {
        "not json": (DIGEST, b"{text: nope"),
        "json array": (DIGEST, b'["text"]'),
        "missing text": (DIGEST, b'{"max_sentences": 2}'),
        "blank text": (DIGEST, b'{"text": "   "}'),
        "text not a string": (DIGEST, b'{"text": 7}'),
        "text too long": (DIGEST, b'{"text": "' + b"a" * 100_001 + b'"}'),
        "max_sentences 0": (DIGEST, b'{"text": "Hi.", "max_sentences": 0}'),
        "max_sentences 21": (DIGEST, b'{"text": "Hi.", "max_sentences": 21}'),
        "max_sentences string": (DIGEST, b'{"text": "Hi.", "max_sentences": "2"}'),
        "wait 0": (f"{DIGEST}?wait=0", b'{"text": "Hi."}'),
        "wait 61": (f"{DIGEST}?wait=61", b'{"text": "Hi."}'),
        "wait not a number": (f"{DIGEST}?wait=soon", b'{"text": "Hi."}'),
    }

    answers = {}
    for case, (path, raw) in cases.items():
        res = host.post(path, raw=raw, headers={"Content-Type": "application/json"})
        answers[case] = (res.status, res.json()["error"]["code"] if res.status == 400 else res.text)

    assert answers == {
        "not json": (400, "invalid_json"),
        "json array": (400, "invalid_json"),
        "missing text": (400, "missing_text"),
        "blank text": (400, "missing_text"),
        "text not a string": (400, "invalid_text"),
        "text too long": (400, "text_too_long"),
        "max_sentences 0": (400, "invalid_max_sentences"),
        "max_sentences 21": (400, "invalid_max_sentences"),
        "max_sentences string": (400, "invalid_max_sentences"),
        "wait 0": (400, "invalid_wait"),
        "wait 61": (400, "invalid_wait"),
        "wait not a number": (400, "invalid_wait"),
    }
    listing = host.get("/runtime/webhooks/durabletask/instances")
    assert (listing.status, listing.json()) == (200, [])


def test_digest_route_takes_only_post(start_host: StartHost) -> None:
    host = start_host(REPO_ROOT)

    res = host.get(DIGEST)

    assert res.status == 405
    assert res.json()  # a JSON body, not an empty or plain-text answer
