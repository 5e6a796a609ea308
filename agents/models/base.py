"""The model seam: one `ModelClient` protocol that every provider (and the offline model) implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from agents.messages import ModelRequest, ModelResponse


@runtime_checkable
class ModelClient(Protocol):
    """Completes a conversation.

    `complete` makes exactly one attempt: it never retries (the run orchestration's retry policy is the
    only retry layer) and raises `agents.errors.ModelCallError` with `retryable` set when it fails.
    """

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """One model call."""
        ...

    async def aclose(self) -> None:
        """Release connections; the client is not used afterwards."""
        ...
