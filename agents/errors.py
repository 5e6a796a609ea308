"""The errors of the agents package: one root, `AgentsError`, with a branch per domain.

Errors carry structured attributes (a status code, whether a retry can help, a tool name) so that the
layer above decides from data, not from message text: the run orchestration retries a `ModelCallError`
only when `retryable` is true, and a `ToolError` goes back to the model as a tool result instead of
failing the run.
"""

from __future__ import annotations


class AgentsError(Exception):
    """Root of every error raised on purpose by the agents package."""


class SettingsError(AgentsError):
    """An app setting (environment variable) is missing or malformed; `setting` names it."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class ModelConfigError(SettingsError):
    """A model provider setting is missing or malformed."""


class OutboxConfigError(SettingsError):
    """An outbox setting (OUTBOX_CONNECTION, OUTBOX_QUEUE, OUTBOX_DIR) is malformed."""


class ModelCallError(AgentsError):
    """A call to a model failed.

    Attributes:
        retryable: True when the same request may succeed later (408, 409, 429, 5xx, timeouts, connection
            errors); False when retrying cannot help (400, 401, 403, 404, 422 and other 4xx).
        status_code: The HTTP status of the provider's answer, None when there was no answer.
        retry_after: Seconds the provider asked us to wait before retrying (`Retry-After`,
            `retry-after-ms`), None when it did not say.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only attributes survive pickling (process pools, some test runners) this way.
        return (_rebuild_model_call_error, (self.message, self.retryable, self.status_code, self.retry_after))

    def __repr__(self) -> str:
        return (
            f"ModelCallError({self.message!r}, retryable={self.retryable}, status_code={self.status_code}, "
            f"retry_after={self.retry_after})"
        )


def _rebuild_model_call_error(
    message: str, retryable: bool, status_code: int | None, retry_after: float | None
) -> ModelCallError:
    return ModelCallError(message, retryable=retryable, status_code=status_code, retry_after=retry_after)


class ToolError(AgentsError):
    """A tool call cannot be carried out as asked; the message is written for the model to act on.

    Tools raise it for refusals that belong to the conversation (a calculator expression it will not
    evaluate, an unknown time zone). Any other exception from a tool is an infrastructure fault and
    propagates, so the orchestration's retry policy can deal with it.
    """


class ToolArgumentError(ToolError):
    """The model called a tool with arguments that do not match the tool's schema."""


class ToolNotFoundError(ToolError):
    """The model (or an agent definition) named a tool the registry does not have."""


class UnknownAgentError(AgentsError):
    """No agent of that name is in the catalogue; `name` is the name asked for."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        listing = f"; known agents: {', '.join(known)}" if known else ""
        super().__init__(f"unknown agent {name!r}{listing}")
        self.name = name
