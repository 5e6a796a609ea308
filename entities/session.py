"""The ``session`` entity: the conversation of one multi-turn session, keyed by the session id.

The ``session_loop`` orchestration runs the session's turns one at a time and talks to this entity at
both ends of each turn:

- ``begin_turn`` ``{"run_id", "agent", "input"}`` records the turn as running and returns
  ``{"history": [ChatMessage], "usage": Usage}``: the conversation so far for the run to start from
  (led by a summary of dropped turns when there are any) and the session's usage before this turn;
- ``end_turn`` ``{"run_id", "status", "output", "messages", "usage", "error"?}`` appends the messages
  the run added and closes the turn;
- ``expire`` turns the session into a tombstone (see below); ``get`` returns the state; ``delete``
  removes it.

State: ``{"session_id", "agent", "messages", "turns": [{"run_id", "input", "status", "output", "usage",
"error", "message_count"}], "usage", "summary", "dropped_turns", "turn_count", "created_at",
"updated_at", "expired", "expired_at"}``. ``messages`` hold no system messages (each run adds the
agent's instructions itself).

Size bound: at most ``MAX_TURNS_KEPT`` finished turns and ``MAX_CHARS`` characters of messages are
kept. Past either bound the oldest turns leave ``messages`` and ``turns``; each leaves one line
``user: <first 100 chars> / assistant: <first 100 chars>`` in ``summary`` (itself bounded to
``MAX_SUMMARY_CHARS``, oldest lines first), and ``dropped_turns`` counts them. The summary is
deterministic, so a replayed or retried operation gives the same state, and costs no model call.

Expiry keeps a tombstone rather than deleting the state, so ``GET /api/sessions/{id}`` can say the
session expired instead of not knowing it: the conversation (messages, turns, summary) is cleared,
the session id, agent, usage, turn count and times stay. A message sent after expiry starts a new
conversation under the same id (``begin_turn`` on a tombstone starts from an empty state).

The state functions are pure (they take the time as an argument and never change their input), so
they are unit tested without a host; the entity function only routes operations to them.
"""

# No `from __future__ import annotations`: the Functions worker reads the entity function's annotations.

import copy
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import azure.durable_functions as df

import shared_names as names
from agents.messages import ChatMessage, Usage, add_usage, user_message, zero_usage

bp = df.Blueprint()

MAX_TURNS_KEPT = 20
MAX_CHARS = 40_000
MAX_SUMMARY_CHARS = 4_000
SNIPPET_CHARS = 100
SUMMARY_LEAD = "Summary of earlier turns:"

SessionState = dict[str, Any]


# --- pure state functions -------------------------------------------------------------------------


def new_state(session_id: str, agent: str, now: str) -> SessionState:
    """An empty session for ``agent``."""
    return {
        "session_id": session_id,
        "agent": agent,
        "messages": [],
        "turns": [],
        "usage": zero_usage(),
        "summary": None,
        "dropped_turns": 0,
        "turn_count": 0,
        "created_at": now,
        "updated_at": now,
        "expired": False,
        "expired_at": None,
    }


def _live(state: Mapping[str, Any] | None, session_id: str, agent: str, now: str) -> SessionState:
    """A copy of ``state`` to change, or a new session when there is none or it expired."""
    if not state or state.get("expired"):
        return new_state(session_id, agent, now)
    return copy.deepcopy(dict(state))


def history_of(state: Mapping[str, Any] | None) -> list[ChatMessage]:
    """The conversation a new turn starts from: the summary of dropped turns (if any), then the messages."""
    if not state or state.get("expired"):
        return []
    history: list[ChatMessage] = []
    if state.get("summary"):
        history.append(user_message(f"{SUMMARY_LEAD}\n{state['summary']}"))
    history.extend(copy.deepcopy(list(state.get("messages") or [])))
    return history


def begin_turn(
    state: Mapping[str, Any] | None, session_id: str, run_id: str, agent: str, text: str, now: str
) -> tuple[SessionState, dict[str, Any]]:
    """Record turn ``run_id`` as running; returns the new state and ``{"history", "usage"}`` for the run.

    Beginning a turn that is already recorded (a repeated operation) changes nothing.
    """
    new = _live(state, session_id, agent, now)
    if not any(t.get("run_id") == run_id for t in new["turns"]):
        new["turns"].append(
            {
                "run_id": run_id,
                "input": text,
                "status": "running",
                "output": None,
                "usage": zero_usage(),
                "error": None,
                "message_count": 0,
            }
        )
        new["updated_at"] = now
    return new, {"history": history_of(new), "usage": dict(new["usage"])}


def end_turn(
    state: Mapping[str, Any] | None, session_id: str, turn: Mapping[str, Any], now: str, agent: str = ""
) -> SessionState:
    """Close turn ``turn["run_id"]``: append its messages, add its usage, then apply the size bound.

    Args:
        state: The current state (None when the session has none, e.g. it was deleted meanwhile).
        session_id: The entity key.
        turn: ``{"run_id", "status", "output", "messages", "usage", "error"?}`` (``input`` when the turn was
            never begun).
        now: ISO time of the change.
        agent: The agent, used only when the session has no state.

    Ending a turn that is already closed (a repeated operation) changes nothing.
    """
    new = _live(state, session_id, agent, now)
    run_id = str(turn.get("run_id") or "")
    record = next((t for t in new["turns"] if t.get("run_id") == run_id), None)
    if record is not None and record.get("status") != "running":
        return new
    messages = [copy.deepcopy(m) for m in turn.get("messages") or [] if m.get("role") != "system"]
    usage = add_usage(zero_usage(), turn.get("usage") or {})
    if record is None:
        record = {"run_id": run_id, "input": turn.get("input") or _first_user_text(messages)}
        new["turns"].append(record)
    record.update(
        status=str(turn.get("status") or "failed"),
        output=turn.get("output"),
        usage=usage,
        error=turn.get("error"),
        message_count=len(messages),
    )
    new["messages"].extend(messages)
    new["usage"] = add_usage(new["usage"], usage)
    new["turn_count"] = int(new.get("turn_count") or 0) + 1
    new["updated_at"] = now
    return bound(new)


def _first_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    return next((str(m.get("content") or "") for m in messages if m.get("role") == "user"), "")


def messages_chars(messages: Sequence[Mapping[str, Any]]) -> int:
    """The size of ``messages`` as the bound counts it: their JSON text (content, tool calls, ids)."""
    return sum(len(json.dumps(m, ensure_ascii=False, sort_keys=True)) for m in messages)


def bound(
    state: Mapping[str, Any],
    *,
    max_turns: int = MAX_TURNS_KEPT,
    max_chars: int = MAX_CHARS,
    max_summary_chars: int = MAX_SUMMARY_CHARS,
) -> SessionState:
    """``state`` within the size bound: oldest finished turns dropped and summarised (module docstring)."""
    new = copy.deepcopy(dict(state))
    turns: list[dict[str, Any]] = new["turns"]
    messages: list[ChatMessage] = new["messages"]
    dropped: list[dict[str, Any]] = []
    while (
        turns
        and turns[0].get("status") != "running"
        and (len(turns) > max_turns or messages_chars(messages) > max_chars)
    ):
        oldest = turns.pop(0)
        del messages[: int(oldest.get("message_count") or 0)]
        dropped.append(oldest)
    if dropped:
        new["dropped_turns"] = int(new.get("dropped_turns") or 0) + len(dropped)
        new["summary"] = extend_summary(
            new.get("summary"), [summary_line(t) for t in dropped], new["dropped_turns"], max_summary_chars
        )
    return new


def _snippet(text: Any) -> str:
    flat = re.sub(r"\s+", " ", str(text or "")).strip()
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS] + "..."


def summary_line(turn: Mapping[str, Any]) -> str:
    """The summary of one dropped turn: ``user: <first 100 chars> / assistant: <first 100 chars>``."""
    output = turn.get("output")
    answer = _snippet(output) if output else f"(no answer: {turn.get('status') or 'unknown'})"
    return f"user: {_snippet(turn.get('input'))} / assistant: {answer}"


def extend_summary(summary: str | None, lines: Sequence[str], dropped_turns: int, max_chars: int) -> str:
    """``summary`` with ``lines`` added, its oldest lines left out beyond ``max_chars``.

    When lines are left out, a first line says how many dropped turns the summary no longer shows.
    """
    kept = [line for line in (summary or "").splitlines() if line.startswith("user: ")]
    kept.extend(lines)
    while len(kept) > 1 and len("\n".join(kept)) > max_chars:
        kept.pop(0)
    omitted = dropped_turns - len(kept)
    if omitted > 0:
        kept.insert(0, f"({omitted} earlier turns omitted)")
    return "\n".join(kept)


def expire(state: Mapping[str, Any] | None, now: str) -> SessionState | None:
    """The tombstone of an expired session (None when there is no session)."""
    if not state:
        return None
    if state.get("expired"):
        return copy.deepcopy(dict(state))
    tomb = copy.deepcopy(dict(state))
    tomb.update(messages=[], turns=[], summary=None, expired=True, expired_at=now, updated_at=now)
    return tomb


def session_usage(state: Mapping[str, Any] | None) -> Usage:
    """The session's usage: the sum of its runs' usage, dropped turns included."""
    if not state:
        return zero_usage()
    return add_usage(zero_usage(), state.get("usage") or {})


# --- the entity -----------------------------------------------------------------------------------


def _now() -> str:
    """The time of a change, as the run API writes times (ISO 8601, UTC, ``Z``)."""
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _operation_input(context: df.DurableEntityContext) -> dict[str, Any]:
    value = context.get_input()
    if isinstance(value, str):  # sent as JSON text by some clients
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    return value if isinstance(value, dict) else {}


@bp.entity_trigger(context_name="context", entity_name=names.SESSION_ENTITY)
def session(context: df.DurableEntityContext) -> None:
    """Entity function registered as ``session``: routes each operation to its state function."""
    state = context.get_state()
    operation = context.operation_name
    key = context.entity_key
    if operation == "begin_turn":
        data = _operation_input(context)
        new, result = begin_turn(
            state,
            key,
            str(data.get("run_id") or ""),
            str(data.get("agent") or ""),
            str(data.get("input") or ""),
            _now(),
        )
        context.set_state(new)
        context.set_result(result)
    elif operation == "end_turn":
        data = _operation_input(context)
        context.set_state(end_turn(state, key, data, _now(), agent=str(data.get("agent") or "")))
    elif operation == "expire":
        tomb = expire(state, _now())
        if tomb is not None:
            context.set_state(tomb)
    elif operation == "get":
        if state is not None:  # set_result would bring a session that does not exist into being
            context.set_result(state)
    elif operation == "delete":
        context.destruct_on_exit()
    else:
        raise ValueError(f"session has no operation {operation!r}")
