"""Model requests and responses cross the activity boundary as JSON: exact round trips, tolerant decoding."""

from __future__ import annotations

import json

import pytest

from agents.messages import ModelRequest, ModelResponse, add_usage, zero_usage


def a_request() -> ModelRequest:
    return ModelRequest(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "what is 2+2?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "name": "calculator", "arguments": {"expression": "2+2"}}],
            },
            {"role": "tool", "content": '{"result": 4}', "tool_call_id": "c1", "name": "calculator"},
        ],
        tools=[{"type": "function", "function": {"name": "calculator", "description": "d", "parameters": {}}}],
        model="gpt-test",
        temperature=0.2,
        max_tokens=100,
    )


def test_request_round_trips_through_json_exactly() -> None:
    request = a_request()
    assert ModelRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request


def test_response_round_trips_through_json_exactly() -> None:
    response = ModelResponse(
        message={
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c9", "name": "get_time", "arguments": {}}],
        },
        usage={"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        finish_reason="tool_calls",
        model="m",
    )
    decoded = ModelResponse.from_dict(json.loads(json.dumps(response.to_dict())))
    assert decoded == response
    assert decoded.tool_calls == [{"id": "c9", "name": "get_time", "arguments": {}}]
    assert decoded.text == ""


def test_old_payloads_without_newer_fields_and_newer_payloads_with_unknown_fields_decode() -> None:
    old = {"messages": [{"role": "user", "content": "hi"}]}  # written before tools/model/... existed
    assert ModelRequest.from_dict(old) == ModelRequest(messages=[{"role": "user", "content": "hi"}])
    newer = {"message": {"role": "assistant", "content": "ok"}, "added_in_a_later_version": [1, 2]}
    response = ModelResponse.from_dict(newer)
    assert (response.text, response.finish_reason, response.usage) == ("ok", "stop", zero_usage())


def test_to_dict_does_not_alias_the_request() -> None:
    request = a_request()
    data = request.to_dict()
    data["messages"][2]["tool_calls"][0]["arguments"]["expression"] = "changed"
    assert request.messages[2]["tool_calls"][0]["arguments"] == {"expression": "2+2"}


def test_from_dict_refuses_what_is_not_an_object() -> None:
    with pytest.raises(TypeError, match="expects a JSON object"):
        ModelRequest.from_dict([1, 2])  # type: ignore[arg-type]


def test_add_usage_sums_and_fills_a_missing_total() -> None:
    total = add_usage(zero_usage(), {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
    total = add_usage(total, {"prompt_tokens": 1, "completion_tokens": 2})
    assert total == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def test_tool_names_of_a_request() -> None:
    assert a_request().tool_names() == ["calculator"]
