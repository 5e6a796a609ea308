"""Routes of multi-turn sessions: send a message, read the conversation, delete the session.

- ``POST /api/sessions/{session_id}/messages`` ``{"agent", "message", "mode"?: "queue"|"steer"}``, optional
  ``?wait=SECONDS`` (0 < SECONDS <= 60). The message becomes a new turn, run after the turns before it
  (``queue``, the default), or, with ``steer`` while a turn of the session is running, joins that run
  as steering input. Answers 202 ``{"run_id", "session_id", "mode", "links"}``; with ``?wait`` it answers
  200 with the run's JSON (as ``GET /api/runs/{id}``) when the run ends in time.
- ``GET /api/sessions/{session_id}``: the conversation, its turns, usage, summary of dropped turns, the
  active run, the queued run ids and ``status`` (``active`` | ``idle`` | ``expired``).
- ``DELETE /api/sessions/{session_id}``: terminates the session's loop and its running turn, deletes
  its state; 202.

A session id is 1 to 100 characters of letters, digits, ``_ . : -``. Unknown session or agent: 404;
a message for another agent than the session's: 409; malformed input: 400. The session loop's settings
come from the app settings ``SESSION_IDLE_TIMEOUT_S`` (default 3600) and ``SESSION_TOKEN_BUDGET``
(optional), read here and passed to the loop when it starts, because orchestrators read no environment.
"""

# No `from __future__ import annotations` here: the Functions worker reads the annotations of the
# functions below when it indexes the app, so they must be real objects, not strings.

import asyncio
import contextlib
import logging
import math
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

import shared_names as names
from agents.catalogue import get_agent
from agents.errors import UnknownAgentError
from orchestrators.run_contract import event_data
from orchestrators.session_loop import (
    DEFAULT_IDLE_TIMEOUT_S,
    SessionLoopInput,
    SessionMessage,
    session_instance_id,
)
from starters._http import BadRequestError, bad_request, error_response
from starters._validation import (
    IDENTIFIER,
    IDENTIFIER_RULE,
    json_object,
    optional_choice,
    query_seconds,
    reject_unknown,
    required_text,
)
from starters.run_views import TERMINAL_RUNTIME_STATUSES
from starters.runs_api import api_base, fetch_run_status, json_response, links_for, run_response

logger = logging.getLogger(__name__)

bp = df.Blueprint()

IDLE_TIMEOUT_SETTING = "SESSION_IDLE_TIMEOUT_S"
TOKEN_BUDGET_SETTING = "SESSION_TOKEN_BUDGET"
MAX_MESSAGE_CHARS = 32_000
MAX_AGENT_CHARS = 100
MAX_WAIT_SECONDS = 60.0
WAIT_POLL_S = 0.1
# How long DELETE waits for the loop to stop before it terminates the loop's run and deletes the state.
STOP_WAIT_S = 5.0
MODES = ("queue", "steer")

_ALIVE = frozenset(
    {
        OrchestrationRuntimeStatus.Running,
        OrchestrationRuntimeStatus.Pending,
        OrchestrationRuntimeStatus.ContinuedAsNew,
        OrchestrationRuntimeStatus.Suspended,
    }
)


def _session_id(req: func.HttpRequest) -> str:
    session_id = req.route_params.get("session_id") or ""
    if not IDENTIFIER.match(session_id):
        raise BadRequestError("invalid_session_id", f"The session id must be {IDENTIFIER_RULE}.")
    return session_id


# --- settings -------------------------------------------------------------------------------------


def idle_timeout_s() -> float:
    """``SESSION_IDLE_TIMEOUT_S`` in seconds (a positive number), else the default."""
    raw = os.environ.get(IDLE_TIMEOUT_SETTING)
    if raw is None or not raw.strip():
        return DEFAULT_IDLE_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        logger.warning(
            "%s=%r is not a positive number of seconds; using %g", IDLE_TIMEOUT_SETTING, raw, DEFAULT_IDLE_TIMEOUT_S
        )
        return DEFAULT_IDLE_TIMEOUT_S
    return value


def token_budget() -> int | None:
    """``SESSION_TOKEN_BUDGET`` (a positive integer), else None: no session budget."""
    raw = os.environ.get(TOKEN_BUDGET_SETTING)
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        logger.warning("%s=%r is not a positive integer; sessions have no token budget", TOKEN_BUDGET_SETTING, raw)
        return None
    return value


# --- reading a session ----------------------------------------------------------------------------


@dataclass
class SessionSnapshot:
    """What the store says about a session: the entity's state and its loop's status."""

    session_id: str
    state: dict | None
    loop_status: OrchestrationRuntimeStatus | None
    loop_custom: dict

    @property
    def loop_alive(self) -> bool:
        return self.loop_status in _ALIVE

    @property
    def exists(self) -> bool:
        return self.state is not None or self.loop_alive

    @property
    def expired(self) -> bool:
        return bool(self.state and self.state.get("expired"))

    @property
    def active_run(self) -> str | None:
        return self.loop_custom.get("active_run") if self.loop_alive else None

    @property
    def queued(self) -> list:
        return list(self.loop_custom.get("queued") or []) if self.loop_alive else []

    @property
    def agent(self) -> str | None:
        """The session's agent; None when a message may choose it (no session yet, or it expired)."""
        if self.state and not self.expired and self.state.get("agent"):
            return str(self.state["agent"])
        if self.loop_alive and self.loop_custom.get("agent"):
            return str(self.loop_custom["agent"])
        return None

    def status(self) -> str:
        if self.active_run or self.queued:
            return "active"
        if self.expired:
            return "expired"
        return "idle"

    def view(self) -> dict:
        """The JSON of ``GET /api/sessions/{id}``."""
        state = self.state if self.state and not self.expired else {}
        turns = [{k: v for k, v in t.items() if k != "message_count"} for t in state.get("turns") or []]
        tomb = self.state or {}
        return {
            "session_id": self.session_id,
            "agent": self.agent or tomb.get("agent"),
            "status": self.status(),
            "messages": state.get("messages") or [],
            "turns": turns,
            "usage": tomb.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "summary": state.get("summary"),
            "dropped_turns": int(state.get("dropped_turns") or 0),
            "turn_count": int(tomb.get("turn_count") or 0),
            "active_run": self.active_run,
            "queued": self.queued,
            "created_at": tomb.get("created_at"),
            "updated_at": tomb.get("updated_at"),
            "expired_at": tomb.get("expired_at"),
        }


async def read_session(client: df.DurableOrchestrationClient, session_id: str) -> SessionSnapshot:
    entity = await client.read_entity_state(df.EntityId(names.SESSION_ENTITY, session_id))
    state = event_data(entity.entity_state) if entity.entity_exists else None
    instance_id = session_instance_id(session_id)
    loop = await client.get_status(instance_id)
    loop_status = loop.runtime_status if loop else None
    custom = event_data(loop.custom_status) if loop else {}
    if loop_status in _ALIVE and not custom:
        # Started but not yet run: its first message (and so the session's agent) is only in its input.
        with_input = await client.get_status(instance_id, show_input=True)
        start = event_data(with_input.input_) if with_input else {}
        custom = {
            "session_id": session_id,
            "agent": start.get("agent"),
            "active_run": None,
            "queued": [m.get("run_id") for m in start.get("queue") or [] if isinstance(m, dict)],
        }
    return SessionSnapshot(session_id, state or None, loop_status, custom)


async def _runtime_status(client: df.DurableOrchestrationClient, instance_id: str) -> Any | None:
    status = await client.get_status(instance_id)
    return status.runtime_status if status else None


# --- sending a message ----------------------------------------------------------------------------


async def _enqueue(client: df.DurableOrchestrationClient, snapshot: SessionSnapshot, message: SessionMessage) -> None:
    """Hand ``message`` to the session's loop, starting the loop when none runs."""
    instance_id = session_instance_id(snapshot.session_id)
    if snapshot.loop_alive:
        try:
            await client.raise_event(instance_id, names.SESSION_MESSAGE_EVENT, message.to_dict())
            return
        except Exception:  # the SDK raises a bare Exception; here: the loop completed just now
            logger.info(
                "session loop %s ended before message %s arrived; starting it again", instance_id, message.run_id
            )
    start = SessionLoopInput(
        session_id=snapshot.session_id,
        agent=message.agent,
        queue=[message.to_dict()],
        idle_timeout_s=idle_timeout_s(),
        token_budget=token_budget(),
    )
    try:
        await client.start_new(names.SESSION_LOOP, instance_id, start.to_dict())
        logger.info("started session loop %s with run %s", instance_id, message.run_id)
    except Exception:  # refused because another request started the loop concurrently
        logger.info(
            "session loop %s was started concurrently; message %s goes to it as an event", instance_id, message.run_id
        )
        await client.raise_event(instance_id, names.SESSION_MESSAGE_EVENT, message.to_dict())


async def _steer(client: df.DurableOrchestrationClient, snapshot: SessionSnapshot, text: str) -> str | None:
    """Steer the session's running turn with ``text``; its run id, or None when no turn is running."""
    run_id = snapshot.active_run
    if not run_id:
        return None
    if await _runtime_status(client, run_id) not in (
        OrchestrationRuntimeStatus.Running,
        OrchestrationRuntimeStatus.Pending,
    ):
        return None
    try:
        await client.raise_event(run_id, names.STEER_EVENT, {"input": text})
    except Exception:  # the run ended between the check and the event: the message becomes a turn
        return None
    return run_id


async def _wait_for_turn(client: df.DurableOrchestrationClient, run_id: str, seconds: float) -> dict | None:
    """The run's Durable status once it is terminal, or None when it is not within ``seconds``.

    A queued turn's run does not exist until the loop starts it, so "not found" means "not yet" here.
    """
    deadline = time.monotonic() + seconds
    while True:
        status = await fetch_run_status(client, run_id)
        if status is not None and status["runtimeStatus"] in TERMINAL_RUNTIME_STATUSES:
            return status
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        await asyncio.sleep(min(WAIT_POLL_S, remaining))


@bp.route(route="sessions/{session_id}/messages", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def post_session_message(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Send a message to a session: a new turn (queued after the others) or steering of the running turn."""
    try:
        session_id = _session_id(req)
        data = json_object(req.get_body())
        reject_unknown(data, ("agent", "message", "mode"))
        agent = required_text(data, "agent", max_chars=MAX_AGENT_CHARS)
        text = required_text(data, "message", max_chars=MAX_MESSAGE_CHARS)
        mode = optional_choice(data, "mode", MODES) or "queue"
        wait = query_seconds(req.params.get("wait"), "wait", high=MAX_WAIT_SECONDS)
    except BadRequestError as err:
        return bad_request(err)
    try:
        get_agent(agent)
    except UnknownAgentError:
        return error_response(404, "agent_not_found", f"There is no agent named {agent!r}.")

    snapshot = await read_session(client, session_id)
    if snapshot.agent and snapshot.agent != agent:
        return error_response(
            409,
            "agent_mismatch",
            f"Session {session_id!r} talks to agent {snapshot.agent!r}, "
            f"not {agent!r}; use another session id for another agent.",
        )
    run_id = await _steer(client, snapshot, text) if mode == "steer" else None
    if run_id is not None:
        answered_mode = "steer"
    else:
        answered_mode = "queue"
        run_id = uuid.uuid4().hex
        await _enqueue(client, snapshot, SessionMessage(run_id=run_id, agent=agent, message=text))

    if wait is not None:
        finished = await _wait_for_turn(client, run_id, wait)
        if finished is not None:
            return run_response(req, finished, 200)
    links = {**links_for(req, run_id), "session": f"{api_base(req)}/sessions/{session_id}"}
    return json_response(
        202,
        {"run_id": run_id, "session_id": session_id, "mode": answered_mode, "links": links},
        {"Location": links["status"]},
    )


# --- reading and deleting -------------------------------------------------------------------------


async def _existing_session(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> SessionSnapshot | func.HttpResponse:
    """The session the route names, or the answer to give instead (a malformed id, or no such session)."""
    try:
        session_id = _session_id(req)
    except BadRequestError as err:
        return bad_request(err)
    snapshot = await read_session(client, session_id)
    if not snapshot.exists:
        return error_response(404, "session_not_found", f"There is no session {session_id!r}.")
    return snapshot


@bp.route(route="sessions/{session_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_session(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The session's conversation, turns, usage and status."""
    found = await _existing_session(req, client)
    return found if isinstance(found, func.HttpResponse) else json_response(200, found.view())


async def _stop_loop(client: df.DurableOrchestrationClient, session_id: str) -> SessionSnapshot:
    """Terminate the session's loop and wait (briefly) until it stopped; the snapshot after it."""
    instance_id = session_instance_id(session_id)
    with contextlib.suppress(Exception):  # already gone: nothing to stop
        await client.terminate(instance_id, "session deleted")
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline:
        if await _runtime_status(client, instance_id) not in _ALIVE:
            break
        await asyncio.sleep(WAIT_POLL_S)
    return await read_session(client, session_id)


@bp.route(route="sessions/{session_id}", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
async def delete_session(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Terminate the session's loop and running turn, then delete its state."""
    snapshot = await _existing_session(req, client)
    if isinstance(snapshot, func.HttpResponse):
        return snapshot
    session_id = snapshot.session_id
    runs = {snapshot.active_run} if snapshot.active_run else set()
    if snapshot.loop_alive:
        # The loop goes first: a run terminated while its loop lives would let the loop start the next turn.
        snapshot = await _stop_loop(client, session_id)
        if snapshot.loop_custom.get("active_run"):  # its last turn, which may have begun after the first read
            runs.add(str(snapshot.loop_custom["active_run"]))
    runs.update(t["run_id"] for t in (snapshot.state or {}).get("turns") or [] if t.get("status") == "running")
    terminated = []
    for run_id in sorted(runs):
        if await _runtime_status(client, run_id) in _ALIVE:
            try:
                await client.terminate(run_id, "session deleted")
                terminated.append(run_id)
            except Exception:  # it ended meanwhile
                pass
    await client.signal_entity(df.EntityId(names.SESSION_ENTITY, session_id), "delete")
    logger.info("deleted session %s (terminated runs: %s)", session_id, ", ".join(terminated) or "none")
    return json_response(202, {"session_id": session_id, "deleted": True, "terminated_runs": terminated})
