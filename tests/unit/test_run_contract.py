"""Pure pieces of the agent run: retry delays, step-failure markers, event data, run request round trips."""

from __future__ import annotations

import json

import pytest

from orchestrators.retry_policy import PRESETS, RetryPolicy, policy_named
from orchestrators.run_contract import RunRequest, event_data, failure_text, parse_failure


def test_exponential_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay_s=1.0, backoff_coefficient=2.0, max_delay_s=10.0, jitter=0.0)
    assert [policy.delay_s(n, "k") for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_jitter_is_deterministic_and_bounded() -> None:
    policy = RetryPolicy(initial_delay_s=10.0, backoff_coefficient=1.0, jitter=0.25)
    delays = [policy.delay_s(1, f"run-{i}") for i in range(200)]
    assert all(7.5 <= d <= 12.5 for d in delays)
    assert len(set(delays)) > 100  # spread, not one value
    assert policy.delay_s(1, "run-7") == policy.delay_s(1, "run-7")  # a replay computes the same delay


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(initial_delay_s=1.0, jitter=0.0)
    assert policy.delay_s(1, "k", retry_after_s=30.0) == 30.0
    assert policy.delay_s(1, "k", retry_after_s=0.1) == 1.0


def test_presets() -> None:
    assert policy_named(None) is PRESETS["exponential_backoff"]
    assert policy_named("no_retry").max_attempts == 1
    assert policy_named("fixed_delay").delay_s(3, "k") == policy_named("fixed_delay").delay_s(1, "k")
    linear = policy_named("linear_backoff")
    assert linear.delay_s(3, "k") > linear.delay_s(1, "k")
    with pytest.raises(ValueError, match="unknown retry preset 'bogus'"):
        policy_named("bogus")


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"max_attempts": 11}, {"jitter": 1.0},
                                    {"max_delay_s": 7200.0}])
def test_policy_bounds(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_failure_marker_survives_the_hosts_wording() -> None:
    text = failure_text("rate limited (429)", retryable=True, retry_after_s=2.5)
    # How the host words an activity failure that reaches the orchestrator.
    host_text = f"Activity function 'call_model' failed:  StepError: {text} \n StepError: {text}"
    failure = parse_failure(host_text)
    assert failure.retryable is True
    assert failure.retry_after_s == 2.5
    assert failure.message == "rate limited (429)"


def test_permanent_failure_and_unmarked_crash() -> None:
    assert parse_failure(failure_text("bad request (400)", retryable=False)).retryable is False
    crash = parse_failure("Activity function 'run_tool' failed:  ConnectionResetError: peer reset")
    assert crash.retryable is True
    assert crash.message == "peer reset"


def test_event_data_accepts_dicts_and_json_text() -> None:
    assert event_data({"input": "x"}) == {"input": "x"}
    assert event_data(json.dumps({"input": "x"})) == {"input": "x"}
    assert event_data("not json") == {}
    assert event_data(None) == {}


def test_run_request_round_trip_ignores_unknown_fields() -> None:
    request = RunRequest(agent="assistant", input="hi", tags={"team": "ops"}, max_turns=3)
    data = request.to_dict()
    assert RunRequest.from_dict({**data, "added_later": 1}) == request
