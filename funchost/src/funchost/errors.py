"""The one error hierarchy of funchost: every failure the host reports to a user is a FunchostError."""

from __future__ import annotations


class FunchostError(Exception):
    """Root of every error funchost raises on purpose."""


class ConfigError(FunchostError):
    """host.json or local.settings.json is unreadable or holds a value funchost cannot use."""


class AppLoadError(FunchostError):
    """function_app.py could not be imported, its functions cannot be built or loaded, or none can be served."""


class FunctionRefusedError(AppLoadError):
    """The Python worker would refuse to load some of the app's functions, which on Azure fails the whole app."""

    def __init__(self, message: str, function_names: tuple[str, ...]) -> None:
        super().__init__(message)
        self.function_names = function_names


class StorageSettingsError(ConfigError):
    """The storage connection setting (``AzureWebJobsStorage`` by default) is missing or malformed.

    The message names the setting and what is wrong with it, and never contains a key or a signature.
    """

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(problem)
        self.setting = setting
        self.problem = problem


class StoreError(FunchostError):
    """The task hub cannot be opened or used."""


class ForeignTaskHubError(StoreError):
    """The task hub's storage holds data that another kind of host wrote; funchost leaves it alone."""

    def __init__(self, hub_name: str, location: str, detail: str) -> None:
        super().__init__(
            f"Task hub '{hub_name}' in {location} was written by another host ({detail}): funchost does not "
            "read or change it. Use another hub name (--hub NAME, or extensions.durableTask.hubName in "
            "host.json), or another storage account."
        )
        self.hub_name = hub_name
        self.location = location


class CheckpointConflictError(StoreError):
    """An instance's history changed under this host since it read it (a second writer): nothing was written."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(
            f"The history of instance '{instance_id}' was changed by another writer since this host read it; "
            "the checkpoint was not written and the step will run again from the stored history."
        )
        self.instance_id = instance_id


class StorageUnavailableError(StoreError):
    """The storage service did not answer (or kept failing) for longer than the host waits."""


class TaskHubLockedError(StoreError):
    """Another host already runs on this task hub; two would corrupt it."""

    def __init__(self, location: str, owner: str | None = None, other: str = "a different --store") -> None:
        held_by = f" ({owner})" if owner else ""
        super().__init__(
            f"Another funchost process{held_by} is already running on the task hub at {location}. "
            f"Stop it first, or start this one with {other}."
        )
        self.location = location
        self.owner = owner


class ManagementError(FunchostError):
    """A request to the durable management API that cannot be honoured; maps to an error response.

    ``summary`` is the response's ``Message`` where the extension words it apart from the exception's
    (``ExceptionMessage``, which is ``message``).
    """

    def __init__(self, status: int, message: str, summary: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.summary = summary
