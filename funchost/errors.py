"""The one error hierarchy of funchost: every failure the host reports to a user is a FunchostError."""

from __future__ import annotations


class FunchostError(Exception):
    """Root of every error funchost raises on purpose."""


class ConfigError(FunchostError):
    """host.json or local.settings.json is unreadable or holds a value funchost cannot use."""


class AppLoadError(FunchostError):
    """function_app.py could not be imported, or it registers no function funchost can serve."""


class StoreError(FunchostError):
    """The task hub cannot be opened or used."""


class TaskHubLockedError(StoreError):
    """Another host already runs on this task hub; two would corrupt it."""

    def __init__(self, location: str) -> None:
        super().__init__(
            f"Another funchost process is already running on the task hub at {location}. "
            "Stop it first, or start this one with a different --store."
        )
        self.location = location


class ManagementError(FunchostError):
    """A request to the durable management API that cannot be honoured; maps to a 4xx response."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
