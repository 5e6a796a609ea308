"""What crosses the boundaries of an agent run: its input, output, progress, events and step failures.

Every shape here is plain JSON on the wire (orchestration input/output, custom status, activity
payloads, entity operations), built and read by the dataclasses below so that a field with a
default can be added without breaking instances that are already running.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

from agents.messages import ChatMessage, Usage, zero_usage

RUN_STATES = ("pending", "running", "awaiting_approval", "completed", "failed", "cancelled", "terminated",
              "budget_exceeded")
TERMINAL_RUN_STATES = frozenset({"completed", "failed", "cancelled", "terminated", "budget_exceeded"})
DEFAULT_APPROVAL_TIMEOUT_S = 3600.0


@dataclass
class RunRequest:
    """The input of one agent run (the ``agent_run`` orchestration)."""

    agent: str
    input: str
    session_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    max_turns: int | None = None
    history: list[ChatMessage] = field(default_factory=list)
    approval_timeout_s: float = DEFAULT_APPROVAL_TIMEOUT_S
    retry: str | None = None
    session_usage: Usage | None = None
    session_token_budget: int | None = None
    carried: dict[str, Any] | None = None  # the run's state across continue-as-new

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRequest:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RunResult:
    """The output of a run that ended on its own terms (a failed run raises instead)."""

    status: str  # completed | cancelled | budget_exceeded
    output: str | None
    turns: int
    usage: Usage
    messages: list[ChatMessage] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PendingApproval:
    call_id: str
    tool: str
    arguments: dict[str, Any]


@dataclass
class RunProgress:
    """The run's custom status: what a client sees while it runs."""

    agent: str
    session_id: str | None
    tags: dict[str, str]
    state: str = "running"  # running | awaiting_approval
    turns: int = 0
    usage: Usage = field(default_factory=zero_usage)
    pending_approvals: list[PendingApproval] = field(default_factory=list)
    step: str = "model"  # model | tools | approval | retry_wait
    event_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def event_data(value: Any) -> dict[str, Any]:
    """An external event's data as a dict.

    Raised through the SDK's client the data arrives as JSON text (the client encodes it once more
    than the extension decodes); raised through the HTTP API it arrives decoded. Both mean the same.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


# --- step failures ------------------------------------------------------------------------------
# An activity that fails reaches the orchestrator only as text ("Activity function 'x' failed: ...",
# worded by the host). The activity therefore writes whether a retry can help into its message in a
# marker both hosts pass through unchanged.

_MARKER = re.compile(r"\[\[(retryable|permanent)(?: retry_after=([0-9.]+))?\]\]")


def failure_text(message: str, *, retryable: bool, retry_after_s: float | None = None) -> str:
    """The message of an activity error, with the retry decision it carries."""
    after = f" retry_after={retry_after_s:g}" if retry_after_s is not None else ""
    return f"{message} [[{'retryable' if retryable else 'permanent'}{after}]]"


@dataclass(frozen=True)
class StepFailure:
    message: str
    retryable: bool
    retry_after_s: float | None = None


def parse_failure(text: str) -> StepFailure:
    """Read back what ``failure_text`` wrote; an error without a marker (a crash) is retryable."""
    found = _MARKER.search(text)
    message = _clean(text)
    if found is None:
        return StepFailure(message, retryable=True)
    after = float(found.group(2)) if found.group(2) else None
    return StepFailure(message, retryable=found.group(1) == "retryable", retry_after_s=after)


def _clean(text: str) -> str:
    """The user-facing part of a host's failure text: no marker, no host prefix, no details tail."""
    first = _MARKER.sub("", text).split(" \n", 1)[0].strip()
    first = re.sub(r"^Activity function '[^']*' failed:\s*", "", first)
    return re.sub(r"^\w+Error: ", "", first).strip()
