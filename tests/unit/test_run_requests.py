"""Validation of the run API's request bodies and query parameters (starters/agents_api.py, runs_api.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrators.run_contract import DEFAULT_APPROVAL_TIMEOUT_S, RunRequest
from starters import _validation as v
from starters._http import BadRequestError
from starters.agents_api import MAX_INPUT_CHARS, model_provider, parse_run_request
from starters.runs_api import parse_decisions, parse_reason, parse_steer


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_a_minimal_run_request() -> None:
    request, instance_id = parse_run_request("assistant", body({"input": "hi"}))

    assert request == RunRequest(agent="assistant", input="hi", approval_timeout_s=DEFAULT_APPROVAL_TIMEOUT_S)
    assert instance_id is None


def test_every_option_reaches_the_run_request() -> None:
    data = {"input": "hi", "session_id": "s-1", "instance_id": "run:1.a_b-c", "tags": {"team": "ops", "k/x": ""},
            "max_turns": 50, "approval_timeout_s": 1, "retry": "no_retry"}

    request, instance_id = parse_run_request("writer", body(data))

    assert instance_id == "run:1.a_b-c"
    assert (request.agent, request.session_id, request.tags) == ("writer", "s-1", {"team": "ops", "k/x": ""})
    assert (request.max_turns, request.approval_timeout_s, request.retry) == (50, 1.0, "no_retry")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"\xff", "invalid_json"),
        (body(["input"]), "invalid_json"),
        (body({}), "missing_field"),
        (body({"input": "  "}), "missing_field"),
        (body({"input": 3}), "invalid_field"),
        (body({"input": "x" * (MAX_INPUT_CHARS + 1)}), "invalid_field"),
        (body({"input": "hi", "mode": "x"}), "unknown_field"),
        (body({"input": "hi", "instance_id": ""}), "invalid_field"),
        (body({"input": "hi", "instance_id": "a/b"}), "invalid_field"),
        (body({"input": "hi", "instance_id": "x" * 101}), "invalid_field"),
        (body({"input": "hi", "session_id": 5}), "invalid_field"),
        (body({"input": "hi", "tags": ["a"]}), "invalid_field"),
        (body({"input": "hi", "tags": {"a": 1}}), "invalid_field"),
        (body({"input": "hi", "tags": {"a:b": "1"}}), "invalid_field"),
        (body({"input": "hi", "tags": {f"k{i}": "v" for i in range(21)}}), "invalid_field"),
        (body({"input": "hi", "max_turns": 0}), "invalid_field"),
        (body({"input": "hi", "max_turns": 51}), "invalid_field"),
        (body({"input": "hi", "max_turns": True}), "invalid_field"),
        (body({"input": "hi", "max_turns": 2.5}), "invalid_field"),
        (body({"input": "hi", "approval_timeout_s": 0.5}), "invalid_field"),
        (body({"input": "hi", "approval_timeout_s": 604801}), "invalid_field"),
        (body({"input": "hi", "approval_timeout_s": "60"}), "invalid_field"),
        (b'{"input": "hi", "approval_timeout_s": NaN}', "invalid_field"),
        (body({"input": "hi", "retry": "forever"}), "invalid_field"),
    ],
)
def test_bad_run_requests_are_refused(raw: bytes, code: str) -> None:
    with pytest.raises(BadRequestError) as err:
        parse_run_request("assistant", raw)
    assert err.value.code == code


def test_approval_bodies() -> None:
    assert parse_decisions(body({"decisions": {"c1": "approve", "c2": "reject"}, "comment": "ok"})) == {
        "decisions": {"c1": "approve", "c2": "reject"}, "comment": "ok"}
    assert parse_decisions(body({"decisions": {"c1": "reject"}})) == {"decisions": {"c1": "reject"}}


@pytest.mark.parametrize(
    "value",
    [{}, {"decisions": {}}, {"decisions": ["c1"]}, {"decisions": {"c1": "yes"}}, {"decisions": {"c1": True}},
     {"decisions": {"c1": "approve"}, "comment": 3}, {"decisions": {"c1": "approve"}, "note": "x"}],
)
def test_bad_approval_bodies_are_refused(value: dict[str, Any]) -> None:
    with pytest.raises(BadRequestError):
        parse_decisions(body(value))


def test_steer_and_reason_bodies() -> None:
    assert parse_steer(body({"input": "also this"})) == {"input": "also this"}
    assert parse_reason(b"") == {} and parse_reason(b"  ") == {}
    assert parse_reason(body({})) == {} and parse_reason(body({"reason": "enough"})) == {"reason": "enough"}
    for bad in (body({}), body({"input": ""}), body({"input": 1}), b"[]"):
        with pytest.raises(BadRequestError):
            parse_steer(bad)
    for bad in (body({"reason": 1}), body(["x"]), b"nope", body({"why": "x"})):
        with pytest.raises(BadRequestError):
            parse_reason(bad)


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (None, {"high": 60}, None),
        (None, {"high": 55, "allow_zero": True, "default": 20.0}, 20.0),
        ("0.5", {"high": 60}, 0.5),
        ("60", {"high": 60}, 60.0),
        ("0", {"high": 55, "allow_zero": True}, 0.0),
    ],
)
def test_seconds_in_the_query(value: str | None, kwargs: dict[str, Any], expected: float | None) -> None:
    assert v.query_seconds(value, "wait", **kwargs) == expected


@pytest.mark.parametrize("value", ["0", "-1", "60.5", "nan", "inf", "soon", ""])
def test_bad_seconds_in_the_query_are_refused(value: str) -> None:
    with pytest.raises(BadRequestError) as err:
        v.query_seconds(value, "wait", high=60)
    assert err.value.code == "invalid_query"


def test_the_model_provider_is_named_as_the_factory_reads_it() -> None:
    assert model_provider({}) == "offline"
    assert model_provider({"AGENT_MODEL_PROVIDER": " Azure-OpenAI "}) == "azure_openai"
