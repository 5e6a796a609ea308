"""The run API's views (starters/run_views.py): Durable status → run JSON, listing, events → SSE text."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from starters._http import BadRequestError
from starters.run_views import (
    RunFilter,
    decode_continuation,
    events_after,
    failure_message,
    is_agent_run,
    iso_time,
    page_runs,
    parse_cursor,
    parse_run_filter,
    run_events,
    run_links,
    run_view,
    sse_text,
)

USAGE = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
PENDING_CALL = {"call_id": "call_1", "tool": "send_message", "arguments": {"to": "ops", "text": "hi"}}


def progress(**changes: Any) -> dict[str, Any]:
    base = {"agent": "assistant", "session_id": "s1", "tags": {"team": "ops"}, "state": "running", "turns": 1,
            "usage": USAGE, "pending_approvals": [], "step": "model", "event_count": 3}
    return {**base, **changes}


def status(runtime: str, **changes: Any) -> dict[str, Any]:
    base = {"name": "agent_run", "instanceId": "r1", "runtimeStatus": runtime,
            "input": {"agent": "assistant", "input": "hello", "session_id": "s1", "tags": {"team": "ops"}},
            "customStatus": progress(), "output": None,
            "createdTime": "2026-01-01T10:00:00.000000Z", "lastUpdatedTime": "2026-01-01T10:00:05.000000Z"}
    return {**base, **changes}


def event(event_id: int, kind: str = "model_call_started", **data: Any) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "at": "2026-01-01T10:00:00+00:00", "data": data}


# --- run JSON -------------------------------------------------------------------------------------


def test_a_pending_run_is_described_from_its_input() -> None:
    view = run_view(status("Pending", customStatus=None))

    assert view == {
        "id": "r1", "agent": "assistant", "session_id": "s1", "status": "pending", "turns": 0, "output": None,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, "pending_approvals": [],
        "tags": {"team": "ops"}, "created_at": "2026-01-01T10:00:00.000000Z",
        "updated_at": "2026-01-01T10:00:05.000000Z", "error": None,
    }


def test_a_running_run_shows_its_progress() -> None:
    view = run_view(status("Running", customStatus=progress(turns=2)))

    assert (view["status"], view["turns"], view["usage"], view["tags"]) == ("running", 2, USAGE, {"team": "ops"})
    assert view["pending_approvals"] == [] and view["output"] is None and view["error"] is None


@pytest.mark.parametrize("runtime", ["Running", "Suspended", "ContinuedAsNew"])
def test_a_run_awaiting_approval_lists_the_calls(runtime: str) -> None:
    custom = progress(state="awaiting_approval", pending_approvals=[PENDING_CALL])

    view = run_view(status(runtime, customStatus=custom))

    assert view["status"] == "awaiting_approval"
    assert view["pending_approvals"] == [PENDING_CALL]


def test_custom_status_given_as_json_text_is_read_too() -> None:
    custom = json.dumps(progress(state="awaiting_approval", pending_approvals=[PENDING_CALL]))

    assert run_view(status("Running", customStatus=custom))["pending_approvals"] == [PENDING_CALL]


@pytest.mark.parametrize("outcome", ["completed", "cancelled", "budget_exceeded"])
def test_a_completed_orchestration_takes_its_status_from_the_output(outcome: str) -> None:
    output = {"status": outcome, "output": "done", "turns": 3, "usage": USAGE, "messages": [], "error": None}
    # A finished run's custom status may still say what it was doing last; the output decides.
    custom = progress(state="awaiting_approval", pending_approvals=[PENDING_CALL], turns=1)

    view = run_view(status("Completed", output=output, customStatus=custom))

    assert (view["status"], view["output"], view["turns"], view["usage"]) == (outcome, "done", 3, USAGE)
    assert view["pending_approvals"] == [] and view["error"] is None


def test_a_failed_run_has_the_error_without_the_host_prefix() -> None:
    output = "Orchestrator function 'agent_run' failed: model call at turn 2 failed after 4 attempts: rate limited"

    view = run_view(status("Failed", output=output))

    assert view["status"] == "failed"
    assert view["error"] == "model call at turn 2 failed after 4 attempts: rate limited"
    assert view["output"] is None


def test_a_terminated_run_says_why() -> None:
    custom = progress(state="awaiting_approval", pending_approvals=[PENDING_CALL])

    view = run_view(status("Terminated", output="stop it", customStatus=custom))

    assert (view["status"], view["error"], view["pending_approvals"]) == ("terminated", "terminated: stop it", [])
    assert run_view(status("Terminated", output=None))["error"] == "terminated"


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("Orchestrator function 'agent_run' failed: AgentRunError: tool call failed", "tool call failed"),
        ("  plain text  ", "plain text"),
        (None, "the run failed"),
        ({"message": "boom"}, "boom"),
    ],
)
def test_failure_messages(output: Any, message: str) -> None:
    assert failure_message(output) == message


def test_only_agent_run_instances_are_runs() -> None:
    assert is_agent_run(status("Running"))
    assert not is_agent_run(status("Running", name="document_digest"))
    assert not is_agent_run({"name": None, "instanceId": None})


def test_iso_time_is_utc_with_z() -> None:
    local = datetime(2026, 1, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))

    assert iso_time(local) == "2026-01-01T10:00:00.000005Z"
    assert iso_time(datetime(2026, 1, 1)) == "2026-01-01T00:00:00.000000Z"
    assert iso_time(None) is None


def test_links_are_absolute_quoted_and_carry_the_query() -> None:
    links = run_links("http://h:7071/api", "a/b c", "code=k%2B1")

    assert links == {
        "status": "http://h:7071/api/runs/a%2Fb%20c?code=k%2B1",
        "events": "http://h:7071/api/runs/a%2Fb%20c/events?code=k%2B1",
        "approvals": "http://h:7071/api/runs/a%2Fb%20c/approvals?code=k%2B1",
        "steer": "http://h:7071/api/runs/a%2Fb%20c/steer?code=k%2B1",
        "cancel": "http://h:7071/api/runs/a%2Fb%20c/cancel?code=k%2B1",
        "terminate": "http://h:7071/api/runs/a%2Fb%20c/terminate?code=k%2B1",
    }
    assert run_links("http://h/api", "r1")["events"] == "http://h/api/runs/r1/events"


# --- listing --------------------------------------------------------------------------------------


def test_filters_parse_and_combine() -> None:
    run_filter = parse_run_filter({"agent": "assistant", "session_id": "s1", "status": "completed, failed",
                                   "tag": "team:ops:east"})

    assert run_filter == RunFilter("assistant", "s1", frozenset({"completed", "failed"}), ("team", "ops:east"))
    assert run_filter.runtime_statuses() == ["Completed", "Failed"]
    run = {"agent": "assistant", "session_id": "s1", "status": "failed", "tags": {"team": "ops:east"}}
    assert run_filter.matches(run)
    for key, other in [("agent", "writer"), ("session_id", "s2"), ("status", "running"), ("tags", {"team": "x"})]:
        assert not run_filter.matches({**run, key: other}), key
    assert parse_run_filter({}) == RunFilter()
    assert RunFilter().matches({}) and RunFilter().runtime_statuses() == []
    assert parse_run_filter({"status": "awaiting_approval"}).runtime_statuses() == [
        "ContinuedAsNew", "Running", "Suspended"]


@pytest.mark.parametrize("params", [{"status": "done"}, {"status": ","}, {"status": "Completed"}, {"tag": "team"},
                                    {"tag": ":ops"}])
def test_bad_filters_are_refused(params: dict[str, str]) -> None:
    with pytest.raises(BadRequestError) as err:
        parse_run_filter(params)
    assert err.value.code == "invalid_query"


def listed(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "created_at": f"2026-01-01T10:00:{i:02d}.000000Z"} for i in range(n)]


def test_pages_are_newest_first_and_chain_to_the_end() -> None:
    runs = listed(5)

    first, token = page_runs(runs, top=2, continuation=None)
    second, token2 = page_runs(runs, top=2, continuation=token)
    third, token3 = page_runs(runs, top=2, continuation=token2)

    assert [r["id"] for r in first + second + third] == ["r4", "r3", "r2", "r1", "r0"]
    assert token and token2 and token3 is None
    assert page_runs(runs, top=5, continuation=None)[1] is None


def test_a_run_started_between_pages_neither_repeats_nor_hides_one() -> None:
    runs = listed(4)
    first, token = page_runs(runs, top=2, continuation=None)
    newer = {"id": "r9", "created_at": "2026-01-01T11:00:00.000000Z"}

    second, _ = page_runs([newer, *runs], top=2, continuation=token)

    assert [r["id"] for r in first + second] == ["r3", "r2", "r1", "r0"]


def test_runs_created_at_the_same_time_are_ordered_by_id() -> None:
    same = [{"id": i, "created_at": "2026-01-01T10:00:00Z"} for i in ("a", "c", "b")]

    first, token = page_runs(same, top=1, continuation=None)
    rest, _ = page_runs(same, top=5, continuation=token)

    assert [r["id"] for r in first + rest] == ["c", "b", "a"]


@pytest.mark.parametrize("token", ["garbage!", "e30", "WzFd", ""])
def test_foreign_continuation_tokens_are_refused(token: str) -> None:
    with pytest.raises(BadRequestError):
        decode_continuation(token)


# --- events ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "after", "cursor"),
    [(None, None, 0), ("7", None, 7), (None, "3", 3), ("7", "3", 7), (" ", "3", 3), ("0", "9", 0)],
)
def test_the_cursor_prefers_last_event_id(header: str | None, after: str | None, cursor: int) -> None:
    assert parse_cursor(header, after) == cursor


@pytest.mark.parametrize(("header", "after"), [("x", None), ("-1", None), (None, "1.5"), (None, "-2")])
def test_bad_cursors_are_refused(header: str | None, after: str | None) -> None:
    with pytest.raises(BadRequestError) as err:
        parse_cursor(header, after)
    assert err.value.code == "invalid_cursor"


def test_a_live_run_is_never_complete() -> None:
    log = {"events": [event(1, "run_started"), event(2)]}

    events, complete = run_events(log, status("Running"))

    assert [e["id"] for e in events] == [1, 2] and not complete
    assert run_events(None, status("Pending", customStatus=None)) == ([], False)


def test_a_finished_run_is_complete_once_its_log_holds_every_event() -> None:
    custom = progress(event_count=3)
    finished = status("Completed", customStatus=custom, output={"status": "completed", "output": "x"})
    log = [event(1, "run_started"), event(2), event(3, "run_finished", status="completed", output="x")]

    assert run_events({"events": log[:2]}, finished) == (log[:2], False)  # the last append is on its way
    assert run_events({"events": log}, finished) == (log, True)


def test_a_terminated_run_ends_with_a_synthesized_event() -> None:
    terminated = status("Terminated", output="stop it", customStatus=progress(event_count=2))

    events, complete = run_events({"events": [event(1, "run_started"), event(2)]}, terminated)

    assert complete
    assert events[-1] == {"id": 3, "type": "run_terminated", "at": "2026-01-01T10:00:05.000000Z",
                          "data": {"reason": "stop it"}}


def test_a_run_that_failed_before_its_first_step_gets_a_failure_event() -> None:
    failed = status("Failed", customStatus=None, output="Orchestrator function 'agent_run' failed: unknown agent")

    events, complete = run_events(None, failed)

    assert complete
    assert [(e["id"], e["type"], e["data"]) for e in events] == [(1, "run_failed", {"error": "unknown agent"})]


def test_a_gap_in_the_log_stops_the_events_there() -> None:
    events, _ = run_events({"events": [event(1), event(2), event(4)]}, status("Running"))

    assert [e["id"] for e in events] == [1, 2]


def test_events_after_a_cursor() -> None:
    events = [event(1), event(2), event(3)]

    assert [e["id"] for e in events_after(events, 1)] == [2, 3]
    assert events_after(events, 3) == []


def parse_sse(text: str) -> list[dict[str, str]]:
    messages = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line)
        if fields:
            messages.append(fields)
    return messages


def test_sse_text_has_a_retry_line_and_one_message_per_event() -> None:
    events = [event(1, "run_started", input="multi\nline"), event(2, "steered", input="é")]

    text = sse_text(events)

    assert text.startswith("retry: 1000\n\n") and text.endswith("\n\n")
    messages = parse_sse(text)
    assert messages[0] == {"retry": "1000"}
    assert [(m["id"], m["event"]) for m in messages[1:]] == [("1", "run_started"), ("2", "steered")]
    assert [json.loads(m["data"]) for m in messages[1:]] == events
    assert sse_text([]) == "retry: 1000\n\n"
