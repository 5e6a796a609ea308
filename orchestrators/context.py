"""The part of the Durable orchestration context that this app's orchestrators use, as a Protocol.

`azure.durable_functions` ships no type information, so orchestrator logic is written against this
narrow, typed interface instead. The SDK's DurableOrchestrationContext satisfies it at run time,
and unit tests drive the same generators with a small fake that implements it.
"""

from __future__ import annotations

from typing import Any, Protocol


class OrchestrationContext(Protocol):
    """What an orchestrator may ask of its context: input, activity calls, custom status, identity."""

    @property
    def instance_id(self) -> str: ...

    @property
    def is_replaying(self) -> bool: ...

    def get_input(self, expected_type: type | None = None) -> Any: ...

    def call_activity(self, name: str, input_: Any = None, expected_type: type | None = None) -> Any:
        """Schedule activity `name`; yielding the returned task gives its result (or raises its error)."""
        ...

    def set_custom_status(self, status: Any) -> None: ...
