"""The task-hub storage contract the engine runs on, and the records it stores.

A store keeps four things: instances (one row each, the status a client reads), their history
(the events replayed into the orchestrator), messages addressed to an instance or an entity
(history events still to be delivered, some only visible from a given time: durable timers),
and activity work items. Everything the engine decides in one step is handed to
``Store.commit`` as one ``Checkpoint`` and must be applied all or nothing: that is what makes
a crash at any moment lose nothing that was acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Json = dict[str, Any]
MessageId = Any  # opaque to the engine: a row id (SQLite), a queue message handle (Azure Storage)

RUNNING = "Running"
PENDING = "Pending"
COMPLETED = "Completed"
FAILED = "Failed"
TERMINATED = "Terminated"
SUSPENDED = "Suspended"
CONTINUED_AS_NEW = "ContinuedAsNew"
CANCELED = "Canceled"

TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, TERMINATED, CANCELED})
ALL_STATUSES = (RUNNING, PENDING, COMPLETED, FAILED, TERMINATED, SUSPENDED, CONTINUED_AS_NEW, CANCELED)


@dataclass
class InstanceRecord:
    """One orchestration instance: what a status query shows plus the engine's bookkeeping."""

    instance_id: str
    name: str
    execution_id: str
    status: str
    input: str | None  # JSON text
    created_time: float
    last_updated_time: float
    output: str | None = None  # JSON text
    custom_status: str | None = None  # JSON text
    completed_time: float | None = None
    parent: Json | None = None  # {"instance_id", "execution_id", "task_id", "name"}
    engine: Json = field(default_factory=dict)  # task-id bookkeeping, see durable.replay

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass
class Message:
    """A history event (or entity operation) on its way to ``instance_id``.

    ``execution_id`` pins it to one execution: results of work started by an execution that has
    since continued-as-new or been restarted are dropped instead of confusing the new one.
    ``visible_at`` (epoch seconds) delays delivery: that is how durable timers survive restarts.
    """

    instance_id: str
    event: Json
    execution_id: str | None = None
    visible_at: float = 0.0
    id: MessageId | None = None  # the store's handle, set when the store delivers the message
    dequeue_count: int = 0  # deliveries so far (a delivery is not an attempt: see ``attempts``)
    # Attempts at processing it that started and did not finish (``Store.record_attempts``): what the poison
    # limit counts. ``redelivered``: it may have been attempted before, by this host or a previous one, so an
    # attempt is recorded before user code runs for it; a first delivery needs no record (see the README).
    attempts: int = 0
    redelivered: bool = False


@dataclass
class ActivityTask:
    """A scheduled activity: kept until its result is committed, so a crash re-runs it."""

    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None
    id: MessageId | None = None
    dequeue_count: int = 0
    attempts: int = 0  # as ``Message.attempts``
    redelivered: bool = False  # as ``Message.redelivered``


@dataclass
class EntityRecord:
    entity_id: str  # "@name@key"
    state: str | None  # JSON text
    last_modified: float
    recent: list[str] = field(default_factory=list)  # ids of the last operations it ran


@dataclass
class Checkpoint:
    """Everything one engine step changes, applied atomically by ``Store.commit``."""

    instance: InstanceRecord | None = None
    replace_history: bool = False  # a new execution (start, restart, continue-as-new)
    replace_live: bool = False  # that new execution may replace a run still live (overridableExistingInstanceStates)
    new_history: list[Json] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    activities: list[ActivityTask] = field(default_factory=list)
    new_instances: list[InstanceRecord] = field(default_factory=list)  # sub-orchestrations created Pending
    consumed: list[MessageId] = field(default_factory=list)  # messages delivered by this step
    completed_activity: MessageId | None = None  # activity work item finished by this step
    entity: EntityRecord | None = None
    delete_entity: str | None = None


@dataclass(frozen=True)
class InstanceQuery:
    created_from: float | None = None
    created_to: float | None = None
    statuses: tuple[str, ...] = ()
    prefix: str | None = None
    top: int = 100
    continuation: str | None = None


class WorkListener(Protocol):
    """What a store tells the engine: work became ready. Called on the event loop's thread."""

    def instance_ready(self, instance_id: str) -> None:
        """Messages for ``instance_id`` (an orchestration or an entity "@name@key") can be fetched."""

    def activity_ready(self, task: ActivityTask) -> None:
        """``task`` is to run; its result is committed with ``Checkpoint.completed_activity = task.id``."""


class Store(Protocol):
    """A task hub. The store owns delivery: after ``open`` and after every ``commit`` it announces the
    work that is ready (at once, or when a timer message becomes visible) through the listener, and it
    announces again what was in flight when the previous host stopped."""

    location: str

    async def open(self, listener: WorkListener) -> None: ...

    async def close(self) -> None: ...

    # reads
    async def load_instance(self, instance_id: str) -> InstanceRecord | None: ...

    async def load_history(self, instance_id: str) -> list[Json]: ...

    async def visible_messages(self, instance_id: str, now: float, limit: int | None = None) -> list[Message]:
        """The instance's messages visible at ``now``, oldest first, each with its ``id`` handle."""
        ...

    async def load_entity(self, entity_id: str) -> EntityRecord | None: ...

    async def list_entities(
        self, name: str | None, top: int, continuation: str | None
    ) -> tuple[list[EntityRecord], str | None]: ...

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRecord], str | None]: ...

    # writes
    async def commit(self, checkpoint: Checkpoint) -> None:
        """Apply ``checkpoint`` so that a crash at any point loses nothing (duplicates are allowed)."""
        ...

    async def purge(self, instance_ids: list[str]) -> int: ...

    async def abandon(self, message_ids: list[MessageId]) -> None:
        """Hand back messages whose processing failed; they are delivered again (``redelivered``). Their
        attempts are the engine's to record (``record_attempts``), not the store's."""
        ...

    async def record_attempts(self, items: Sequence[Message | ActivityTask]) -> list[int]:
        """Persist that one more attempt at each delivered message or work item started (or failed in this
        process): its ``attempts`` grows by one, in the item and in the task hub, until the message is consumed
        or the work item completed. Returns the new counts; from now on the items are ``redelivered``."""
        ...
