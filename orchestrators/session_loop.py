"""The ``session_loop`` orchestration: runs the turns of one session one at a time, in arrival order.

One instance per session, instance id ``session-{session_id}`` (``session_instance_id``). Messages
arrive as the external event ``session_message`` ``{"run_id", "agent", "message"}`` or in the
``queue`` of the first input. Each turn:

1. ``begin_turn`` on the ``session`` entity gives the conversation so far and the session's usage;
2. the turn runs as sub-orchestration ``agent_run`` with instance id = the turn's run id, so the turn
   is an ordinary run (``/api/runs/{id}``, its events, approvals, steering, cancel all apply);
3. ``end_turn`` stores what the run added. A run that fails (or is terminated) is recorded as a failed
   turn and the session goes on with the next message.

A message that arrives while a turn runs is queued in the loop's state (custom status
``{"session_id", "agent", "active_run", "queued": [run_id]}``): every wait of the loop also waits for
``session_message``, so each arrival is taken at once and none waits unseen in the SDK's buffer.

Idle expiry: with nothing queued the loop waits for the next message or ``idle_timeout_s``; on expiry
it turns the session entity into a tombstone (``expire``) and completes. Every ``TURNS_PER_EXECUTION``
turns it continues as new, carrying the queue and its settings, so replay cost stays bounded.

Deterministic: time comes from ``context.current_utc_datetime``; no I/O, no environment reads (the
starter passes the settings in the first input).
"""

# No `from __future__ import annotations`: the Functions worker reads these functions' annotations.

import dataclasses
import logging
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

import shared_names as names
from agents.messages import zero_usage
from orchestrators.run_contract import RunRequest, event_data

logger = logging.getLogger(__name__)

bp = df.Blueprint()

DEFAULT_IDLE_TIMEOUT_S = 3600.0
TURNS_PER_EXECUTION = 5
INSTANCE_PREFIX = "session-"


def session_instance_id(session_id: str) -> str:
    """The instance id of a session's loop."""
    return f"{INSTANCE_PREFIX}{session_id}"


@dataclass
class SessionMessage:
    """One message for the session: it becomes the turn whose run id is ``run_id``."""

    run_id: str
    agent: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "SessionMessage | None":
        """The message in ``data`` (a dict or its JSON text); None when it is not a valid message."""
        data = event_data(data)
        run_id, agent, message = data.get("run_id"), data.get("agent"), data.get("message")
        if not (isinstance(run_id, str) and run_id and isinstance(agent, str) and isinstance(message, str)):
            return None
        return cls(run_id=run_id, agent=agent, message=message)


@dataclass
class SessionLoopInput:
    """The input of the loop: the first message(s) from the starter, or the state carried by continue-as-new."""

    session_id: str
    agent: str | None = None
    queue: list[dict[str, Any]] = field(default_factory=list)
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    token_budget: int | None = None
    turns_done: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "SessionLoopInput":
        data = event_data(data)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class SessionLoopError(Exception):
    """The session's own state could not be read or written (the entity failed an operation)."""


_HOST_PREFIX = re.compile(r"^Orchestrator function '[^']*' failed:\s*")


def failure_message(error: Any) -> str:
    """The user-facing text of a failed run as the parent sees it: no host prefix, no details tail."""
    text = str(error).split(" \n", 1)[0].strip()
    return _HOST_PREFIX.sub("", text).strip() or "the run failed"


def _cancel(timer: Any) -> None:
    if not timer.is_completed:
        timer.cancel()


class SessionLoop:
    """One execution of a session's loop. Its methods are generators yielding durable tasks."""

    def __init__(self, context: Any, start: SessionLoopInput) -> None:
        self.ctx = context
        self.session_id = start.session_id
        self.settings = start
        self.agent: str | None = start.agent
        self.queue: list[SessionMessage] = [m for m in map(SessionMessage.from_dict, start.queue) if m is not None]
        self.turns_done = start.turns_done
        self.active_run: str | None = None
        self.entity = df.EntityId(names.SESSION_ENTITY, self.session_id)
        self.message_task = context.wait_for_external_event(names.SESSION_MESSAGE_EVENT)

    # --- messages and status ----------------------------------------------------------------------

    def take_message(self) -> None:
        """Queue the message that completed ``message_task`` and wait for the next one."""
        message = SessionMessage.from_dict(self.message_task.result)
        self.message_task = self.ctx.wait_for_external_event(names.SESSION_MESSAGE_EVENT)
        if message is None:
            if not self.ctx.is_replaying:
                logger.warning(
                    "session %s: ignored a malformed %s event", self.ctx.instance_id, names.SESSION_MESSAGE_EVENT
                )
            return
        if message.run_id == self.active_run or any(m.run_id == message.run_id for m in self.queue):
            return  # the same message raised twice
        self.queue.append(message)
        self.agent = self.agent or message.agent

    def publish(self) -> None:
        self.ctx.set_custom_status(
            {
                "session_id": self.session_id,
                "agent": self.agent,
                "active_run": self.active_run,
                "queued": [m.run_id for m in self.queue],
            }
        )

    def wait(self, task: Any) -> Generator[Any, Any, Any]:
        """Wait for ``task``, queueing every message that arrives meanwhile; returns the finished task."""
        while True:
            winner = yield self.ctx.task_any([task, self.message_task])
            if winner is self.message_task:
                self.take_message()
                self.publish()
            if task.is_completed:
                return task

    def call_session(self, operation: str, data: dict[str, Any] | None = None) -> Generator[Any, Any, Any]:
        task = yield from self.wait(self.ctx.call_entity(self.entity, operation, data))
        if task.state is TaskState.FAILED:
            raise SessionLoopError(f"session entity operation {operation!r} failed: {task.result}")
        return task.result

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> Generator[Any, Any, Any]:
        turns_here = 0
        while True:
            if turns_here >= TURNS_PER_EXECUTION:
                return self.continue_as_new()
            if not self.queue:
                expired = yield from self.idle()
                if expired:
                    return {"session_id": self.session_id, "status": "expired", "turns": self.turns_done}
                continue
            yield from self.run_turn(self.queue.pop(0))
            turns_here += 1

    def idle(self) -> Generator[Any, Any, bool]:
        """Wait for a message or the idle timeout; True when the session expired."""
        self.publish()
        deadline = self.ctx.current_utc_datetime + timedelta(seconds=float(self.settings.idle_timeout_s))
        timer = self.ctx.create_timer(deadline)
        winner = yield self.ctx.task_any([self.message_task, timer])
        if winner is self.message_task:
            _cancel(timer)
            self.take_message()
            return False
        yield from self.call_session("expire")
        if self.queue:  # a message arrived while the session expired: it starts the conversation anew
            return False
        self.publish()
        if not self.ctx.is_replaying:
            logger.info(
                "session loop %s: the session expired after %g s idle",
                self.ctx.instance_id,
                float(self.settings.idle_timeout_s),
            )
        return True

    def run_turn(self, message: SessionMessage) -> Generator[Any, Any, None]:
        self.active_run = message.run_id
        self.agent = self.agent or message.agent
        self.publish()
        begun = yield from self.call_session(
            "begin_turn", {"run_id": message.run_id, "agent": message.agent, "input": message.message}
        )
        begun = event_data(begun)
        request = RunRequest(
            agent=message.agent,
            input=message.message,
            session_id=self.session_id,
            history=list(begun.get("history") or []),
            session_usage=begun.get("usage"),
            session_token_budget=self.settings.token_budget,
        )
        run = yield from self.wait(self.ctx.call_sub_orchestrator(names.AGENT_RUN, request.to_dict(), message.run_id))
        if run.state is TaskState.FAILED:
            error = failure_message(run.result)
            status = "terminated" if "was terminated" in error else "failed"
            ended: dict[str, Any] = {
                "status": status,
                "output": None,
                "messages": [],
                "usage": zero_usage(),
                "error": error,
            }
        else:
            result = event_data(run.result)
            ended = {
                "status": result.get("status") or "completed",
                "output": result.get("output"),
                "messages": result.get("messages") or [],
                "usage": result.get("usage") or zero_usage(),
                "error": result.get("error"),
            }
        yield from self.call_session(
            "end_turn", {"run_id": message.run_id, "agent": message.agent, "input": message.message, **ended}
        )
        self.turns_done += 1
        self.active_run = None
        self.publish()
        if not self.ctx.is_replaying:
            logger.info("session loop %s: turn %s ended %s", self.ctx.instance_id, message.run_id, ended["status"])

    def continue_as_new(self) -> None:
        carried = dataclasses.replace(
            self.settings, agent=self.agent, queue=[m.to_dict() for m in self.queue], turns_done=self.turns_done
        )
        self.publish()
        self.ctx.continue_as_new(carried.to_dict())


def run_session(context: Any) -> Generator[Any, Any, Any]:
    start = SessionLoopInput.from_dict(context.get_input() or {})
    return (yield from SessionLoop(context, start).run())


@bp.function_name(names.SESSION_LOOP)
@bp.orchestration_trigger(context_name="context")
def session_loop(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Orchestrator function registered as ``session_loop``."""
    return (yield from run_session(context))
