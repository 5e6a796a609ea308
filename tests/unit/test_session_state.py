"""The session entity's state functions: turns, appended messages, usage sums, the size bound and expiry."""

from __future__ import annotations

from typing import Any

import pytest

from entities.session import (
    MAX_TURNS_KEPT,
    SUMMARY_LEAD,
    begin_turn,
    bound,
    end_turn,
    expire,
    extend_summary,
    history_of,
    messages_chars,
    new_state,
    session_usage,
    summary_line,
)
from orchestrators.session_loop import SessionLoopInput, SessionMessage, failure_message

NOW = "2024-05-01T10:00:00+00:00"
LATER = "2024-05-01T10:05:00+00:00"


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def run_messages(question: str, answer: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def turn(
    state: dict[str, Any] | None,
    run_id: str,
    question: str,
    answer: str,
    used: dict[str, int],
    status: str = "completed",
    now: str = NOW,
) -> dict[str, Any]:
    """One whole turn: begin, then end with the run's messages."""
    begun, _ = begin_turn(state, "s1", run_id, "assistant", question, now)
    return end_turn(
        begun,
        "s1",
        {
            "run_id": run_id,
            "status": status,
            "output": answer,
            "messages": run_messages(question, answer),
            "usage": used,
        },
        now,
    )


def test_begin_turn_on_a_new_session_creates_it_and_gives_an_empty_history() -> None:
    state, result = begin_turn(None, "s1", "r1", "assistant", "hello", NOW)

    assert result == {"history": [], "usage": usage(0, 0)}
    assert state["session_id"] == "s1" and state["agent"] == "assistant"
    assert state["turns"] == [
        {
            "run_id": "r1",
            "input": "hello",
            "status": "running",
            "output": None,
            "usage": usage(0, 0),
            "error": None,
            "message_count": 0,
        }
    ]
    assert state["created_at"] == NOW and state["messages"] == []


def test_end_turn_appends_the_runs_messages_and_closes_the_turn() -> None:
    state = turn(None, "r1", "my name is Ada", "Noted: your name is Ada.", usage(10, 5))

    assert state["messages"] == run_messages("my name is Ada", "Noted: your name is Ada.")
    assert state["turns"][0]["status"] == "completed"
    assert state["turns"][0]["output"] == "Noted: your name is Ada."
    assert state["turns"][0]["message_count"] == 2
    assert state["turn_count"] == 1

    _, second = begin_turn(state, "s1", "r2", "assistant", "what is my name?", LATER)
    assert second["history"] == run_messages("my name is Ada", "Noted: your name is Ada.")
    assert second["usage"] == usage(10, 5)


def test_usage_is_the_sum_of_the_runs() -> None:
    state = turn(None, "r1", "q1", "a1", usage(10, 5))
    state = turn(state, "r2", "q2", "a2", usage(7, 3))
    state = turn(state, "r3", "q3", "a3", {"prompt_tokens": 1, "completion_tokens": 1})  # total left out

    assert session_usage(state) == usage(18, 9)
    assert [t["usage"]["total_tokens"] for t in state["turns"]] == [15, 10, 2]


def test_a_failed_turn_is_recorded_without_messages() -> None:
    state = turn(None, "r1", "q1", "a1", usage(1, 1))
    begun, _ = begin_turn(state, "s1", "r2", "assistant", "q2", LATER)
    ended = end_turn(
        begun,
        "s1",
        {
            "run_id": "r2",
            "status": "failed",
            "output": None,
            "messages": [],
            "usage": usage(0, 0),
            "error": "model call at turn 1 failed: boom",
        },
        LATER,
    )

    assert ended["messages"] == run_messages("q1", "a1")
    assert ended["turns"][1] == {
        "run_id": "r2",
        "input": "q2",
        "status": "failed",
        "output": None,
        "usage": usage(0, 0),
        "error": "model call at turn 1 failed: boom",
        "message_count": 0,
    }
    assert ended["updated_at"] == LATER


def test_repeated_operations_change_nothing() -> None:
    begun, _ = begin_turn(None, "s1", "r1", "assistant", "q1", NOW)
    again, _ = begin_turn(begun, "s1", "r1", "assistant", "q1", NOW)
    assert again == begun

    done = end_turn(
        begun,
        "s1",
        {
            "run_id": "r1",
            "status": "completed",
            "output": "a1",
            "messages": run_messages("q1", "a1"),
            "usage": usage(2, 2),
        },
        NOW,
    )
    twice = end_turn(
        done,
        "s1",
        {
            "run_id": "r1",
            "status": "completed",
            "output": "a1",
            "messages": run_messages("q1", "a1"),
            "usage": usage(2, 2),
        },
        NOW,
    )
    assert twice == done
    assert session_usage(twice) == usage(2, 2)


def test_state_functions_do_not_change_their_input() -> None:
    state = turn(None, "r1", "q1", "a1", usage(1, 1))
    snapshot = repr(state)
    begin_turn(state, "s1", "r2", "assistant", "q2", LATER)
    end_turn(
        state, "s1", {"run_id": "r9", "status": "completed", "output": "x", "messages": [], "usage": usage(1, 1)}, LATER
    )
    bound(state, max_turns=0)
    expire(state, LATER)
    assert repr(state) == snapshot


def test_system_messages_are_not_kept() -> None:
    begun, _ = begin_turn(None, "s1", "r1", "assistant", "q", NOW)
    ended = end_turn(
        begun,
        "s1",
        {
            "run_id": "r1",
            "status": "completed",
            "output": "a",
            "usage": usage(1, 1),
            "messages": [{"role": "system", "content": "be brief"}, *run_messages("q", "a")],
        },
        NOW,
    )
    assert [m["role"] for m in ended["messages"]] == ["user", "assistant"]


def test_tool_messages_of_a_turn_are_kept_in_order() -> None:
    call = {"id": "c1", "name": "calculator", "arguments": {"expression": "2+2"}}
    messages = [
        {"role": "user", "content": "2+2"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": '{"result": 4}', "tool_call_id": "c1", "name": "calculator"},
        {"role": "assistant", "content": "2+2 = 4"},
    ]
    begun, _ = begin_turn(None, "s1", "r1", "assistant", "2+2", NOW)
    ended = end_turn(
        begun,
        "s1",
        {"run_id": "r1", "status": "completed", "output": "2+2 = 4", "messages": messages, "usage": usage(3, 3)},
        NOW,
    )
    assert ended["messages"] == messages
    assert ended["turns"][0]["message_count"] == 4


def test_more_turns_than_the_bound_drops_the_oldest_and_summarises_them() -> None:
    state: dict[str, Any] | None = None
    for i in range(MAX_TURNS_KEPT + 3):
        state = turn(state, f"r{i}", f"question {i}", f"answer {i}", usage(1, 1))
    assert state is not None

    assert len(state["turns"]) == MAX_TURNS_KEPT
    assert state["turns"][0]["run_id"] == "r3"
    assert state["dropped_turns"] == 3
    assert state["turn_count"] == MAX_TURNS_KEPT + 3
    assert state["messages"][0] == {"role": "user", "content": "question 3"}
    assert len(state["messages"]) == 2 * MAX_TURNS_KEPT
    assert state["summary"] == (
        "user: question 0 / assistant: answer 0\n"
        "user: question 1 / assistant: answer 1\n"
        "user: question 2 / assistant: answer 2"
    )
    assert session_usage(state) == usage(MAX_TURNS_KEPT + 3, MAX_TURNS_KEPT + 3)  # dropped turns still count


def test_the_history_of_a_bounded_session_starts_with_the_summary_as_a_user_message() -> None:
    state: dict[str, Any] | None = None
    for i in range(MAX_TURNS_KEPT + 1):
        state = turn(state, f"r{i}", f"question {i}", f"answer {i}", usage(1, 1))

    history = history_of(state)
    assert history[0] == {"role": "user", "content": f"{SUMMARY_LEAD}\nuser: question 0 / assistant: answer 0"}
    assert history[1:] == state["messages"]  # type: ignore[index]
    assert not any(m["role"] == "system" for m in history)


def test_too_many_characters_drops_the_oldest_turns() -> None:
    big = "x" * 600
    state = new_state("s1", "assistant", NOW)
    for i in range(5):
        state = turn(state, f"r{i}", f"q{i} {big}", f"a{i}", usage(1, 1))
    limit = messages_chars(state["messages"]) - 1  # one character too many

    bounded = bound(state, max_chars=limit)

    assert bounded["dropped_turns"] == 1
    assert [t["run_id"] for t in bounded["turns"]] == ["r1", "r2", "r3", "r4"]
    assert messages_chars(bounded["messages"]) <= limit
    assert bounded["summary"] == f"user: q0 {'x' * 97}... / assistant: a0"


def test_the_bound_never_drops_a_running_turn() -> None:
    state, _ = begin_turn(None, "s1", "r1", "assistant", "q", NOW)
    bounded = bound(state, max_turns=0, max_chars=0)
    assert bounded["turns"] == state["turns"] and bounded["dropped_turns"] == 0


def test_summary_lines_are_short_single_lines() -> None:
    line = summary_line({"input": "a\nmultiline   question " + "y" * 200, "output": "short", "status": "completed"})
    assert "\n" not in line
    assert line.startswith("user: a multiline question yyy")
    assert line.endswith("... / assistant: short")
    assert len(line) == len("user: ") + 103 + len(" / assistant: short")
    failed = summary_line({"input": "q", "output": None, "status": "failed"})
    assert failed == "user: q / assistant: (no answer: failed)"


def test_the_summary_is_bounded_and_says_how_many_turns_it_no_longer_shows() -> None:
    lines = [f"user: q{i} / assistant: a{i}" for i in range(10)]
    summary = extend_summary(None, lines, dropped_turns=10, max_chars=100)

    shown = summary.splitlines()
    assert shown[-1] == "user: q9 / assistant: a9"
    assert shown[0] == f"({10 - (len(shown) - 1)} earlier turns omitted)"
    assert len("\n".join(shown[1:])) <= 100

    more = extend_summary(summary, ["user: q10 / assistant: a10"], dropped_turns=11, max_chars=100)
    assert more.splitlines()[-1] == "user: q10 / assistant: a10"
    assert more.splitlines()[0] == f"({11 - (len(more.splitlines()) - 1)} earlier turns omitted)"


def test_expire_keeps_a_tombstone_without_the_conversation() -> None:
    state = turn(None, "r1", "my name is Ada", "Noted.", usage(4, 2))
    tomb = expire(state, LATER)

    assert tomb is not None
    assert tomb["expired"] is True and tomb["expired_at"] == LATER
    assert tomb["messages"] == [] and tomb["turns"] == [] and tomb["summary"] is None
    assert tomb["session_id"] == "s1" and tomb["agent"] == "assistant"
    assert tomb["usage"] == usage(4, 2) and tomb["turn_count"] == 1
    assert history_of(tomb) == []
    assert expire(None, LATER) is None


def test_a_message_after_expiry_starts_a_new_conversation() -> None:
    tomb = expire(turn(None, "r1", "my name is Ada", "Noted.", usage(4, 2)), LATER)
    state, result = begin_turn(tomb, "s1", "r2", "writer", "hello", LATER)

    assert result == {"history": [], "usage": usage(0, 0)}
    assert state["expired"] is False and state["agent"] == "writer" and state["created_at"] == LATER
    assert [t["run_id"] for t in state["turns"]] == ["r2"]


@pytest.mark.parametrize(
    "data",
    [
        {"run_id": "r1", "agent": "assistant", "message": "hi"},
        '{"run_id": "r1", "agent": "assistant", "message": "hi"}',  # as the SDK client's raise_event sends it
    ],
)
def test_session_messages_are_read_from_a_dict_or_its_json_text(data: Any) -> None:
    assert SessionMessage.from_dict(data) == SessionMessage(run_id="r1", agent="assistant", message="hi")


@pytest.mark.parametrize(
    "data",
    [
        None,
        "not json",
        {"run_id": "", "agent": "a", "message": "m"},
        {"run_id": "r", "agent": "a"},
        {"run_id": 3, "agent": "a", "message": "m"},
    ],
)
def test_malformed_session_messages_are_refused(data: Any) -> None:
    assert SessionMessage.from_dict(data) is None


def test_the_loop_input_round_trips_and_ignores_unknown_keys() -> None:
    start = SessionLoopInput(
        session_id="s1",
        agent="assistant",
        queue=[{"run_id": "r1", "agent": "assistant", "message": "hi"}],
        idle_timeout_s=2.5,
        token_budget=1000,
        turns_done=7,
    )
    assert SessionLoopInput.from_dict({**start.to_dict(), "later_field": 1}) == start


def test_failure_message_strips_the_hosts_wording() -> None:
    text = "Orchestrator function 'agent_run' failed: model call at turn 2 failed after 4 attempts: 429 \n None"
    assert failure_message(Exception(text)) == "model call at turn 2 failed after 4 attempts: 429"
    assert failure_message("The sub-orchestration was terminated: stop") == "The sub-orchestration was terminated: stop"
