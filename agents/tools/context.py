"""What a tool gets besides its arguments: the call's identity and the services it may use.

Services are injected rather than reached for (no module-level clients, no `datetime.now()` in tools),
so a test hands a tool a fixed clock and a temporary outbox, and a registry built only for schemas and
validation (as the run orchestration needs) does no I/O at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.knowledge import KnowledgeBase
    from agents.tools.outbox import Outbox

Clock = Callable[[], datetime]
"""Returns the current time as an aware datetime."""


def utc_now() -> datetime:
    """The system clock, in UTC."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ToolServices:
    """The services tools may use; a tool whose service is absent refuses with a `ToolError`.

    Attributes:
        clock: The time source of `get_time` and of message timestamps.
        outbox: Where `send_message` delivers.
        knowledge: What `search_knowledge` searches.
    """

    clock: Clock = utc_now
    outbox: Outbox | None = None
    knowledge: KnowledgeBase | None = None


@dataclass(frozen=True)
class ToolContext:
    """Passed to a tool that declares a `context: ToolContext` parameter.

    Attributes:
        call_id: The model's id of this tool call.
        idempotency_key: Unique per side effect: a key that already acted must not act again. The run
            orchestration passes one made of the run's instance id and the call id (a model's call ids
            are only unique within one conversation); it defaults to the call id.
        services: Clock, outbox and knowledge base.
    """

    call_id: str
    idempotency_key: str
    services: ToolServices = field(default_factory=ToolServices)

    def now(self) -> datetime:
        """The current time from the injected clock."""
        return self.services.clock()
