"""Reads an app folder's host.json and local.settings.json into the settings the host runs with.

Only the settings that change how the app behaves locally are read (protocol spec section 7);
everything else in host.json is left to the real host.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from funchost.errors import ConfigError

DEFAULT_HUB_NAME = "TestHubName"


class VersionMatchStrategy(str, Enum):
    """``versionMatchStrategy``: which instance versions this host runs (DurableTask.Core's enum and values)."""

    NONE = "None"
    STRICT = "Strict"
    CURRENT_OR_OLDER = "CurrentOrOlder"


class VersionFailureStrategy(str, Enum):
    """``versionFailureStrategy``: what happens to an instance whose version this host does not run."""

    REJECT = "Reject"
    FAIL = "Fail"


class OverridableStates(str, Enum):
    """``overridableExistingInstanceStates``: which existing instances a start of the same id replaces (the
    Durable extension's ``OverridableStates``, declared in its order; its default is ``NonRunningStates``)."""

    ANY_STATE = "AnyState"
    NON_RUNNING_STATES = "NonRunningStates"


StrategyT = TypeVar("StrategyT", VersionMatchStrategy, VersionFailureStrategy, OverridableStates)


@dataclass(frozen=True)
class DurableSettings:
    """``extensions.durableTask`` of host.json."""

    hub_name: str = DEFAULT_HUB_NAME
    max_concurrent_activities: int = 10
    max_concurrent_orchestrations: int = 10
    max_concurrent_entities: int = 10
    max_entity_batch_size: int = 50
    partition_count: int = 4
    max_dequeue_count: int = 5
    # How long a host holds a queue message it received (Azure Storage store); a crashed host's messages
    # come back after it. DurableTask.AzureStorage defaults to 5 minutes; locally a quick recovery is worth more.
    visibility_timeout_s: int = 10
    # storageProvider.type as host.json spells it: the backend the Durable extension would use (see
    # STORAGE_PROVIDER_TYPES).
    storage_provider_type: str = "AzureStorage"
    # Orchestration versioning; the defaults are DurableTaskOptions' (no version, CurrentOrOlder, Reject).
    default_version: str | None = None
    version_match_strategy: VersionMatchStrategy = VersionMatchStrategy.CURRENT_OR_OLDER
    version_failure_strategy: VersionFailureStrategy = VersionFailureStrategy.REJECT
    # Which existing instance a start of its id replaces; DurableTaskOptions' default keeps a live one.
    overridable_existing_instance_states: OverridableStates = OverridableStates.NON_RUNNING_STATES


# The Durable extension's storage providers by their storageProvider.type (compared case-insensitively, as
# the extension picks a provider factory by name), and what each is, for the start-up line that says
# funchost keeps the task hub in its own store instead.
STORAGE_PROVIDER_TYPES = {
    "azurestorage": ("AzureStorage", "Azure Storage"),
    "azuremanaged": ("azureManaged", "the Durable Task Scheduler"),
    "mssql": ("mssql", "Microsoft SQL Server"),
    "netherite": ("Netherite", "Netherite"),
}


def _storage_provider_type(provider: dict[str, Any]) -> str:
    value = provider.get("type", "AzureStorage")
    known = STORAGE_PROVIDER_TYPES.get(str(value).lower()) if isinstance(value, str) else None
    if known is None:
        names = ", ".join(name for name, _ in STORAGE_PROVIDER_TYPES.values())
        raise ConfigError(f"host.json: extensions.durableTask.storageProvider.type {value!r} is not a storage "
                          f"provider of Durable Functions ({names})")
    return str(value)  # as host.json spells it, for the messages that quote it


@dataclass(frozen=True)
class HostConfig:
    """What host.json says, with the defaults the Functions host applies."""

    route_prefix: str = "api"
    durable: DurableSettings = DurableSettings()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise ConfigError(f"Cannot read {path.name}: {err.strerror}") from err
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path.name} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from err
    if not isinstance(value, dict):
        raise ConfigError(f"{path.name} must hold a JSON object")
    return value


def _positive_int(section: dict[str, Any], key: str, default: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"host.json: extensions.durableTask.{key} must be a positive integer, not {value!r}")
    return value


def _timespan_seconds(section: dict[str, Any], key: str, default: int) -> int:
    """A host.json timespan ("00:00:30", or "1.00:00:00" with days) as whole seconds, at least 1."""
    value = section.get(key)
    if value is None:
        return default
    match = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})", str(value).strip())
    if match is None:
        raise ConfigError(f"host.json: extensions.durableTask.storageProvider.{key} must be a timespan "
                          f"like 00:00:30, not {value!r}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total < 1:
        raise ConfigError(f"host.json: extensions.durableTask.storageProvider.{key} must be at least 1 second")
    return total


def _default_version(section: dict[str, Any]) -> str | None:
    """``defaultVersion``: a string, kept as written; null or absent means no version (as the docs say)."""
    value = section.get("defaultVersion")
    if value is None or isinstance(value, str):
        return value
    # The Functions host would turn 1.0 into the text "1": a number is refused rather than changed.
    raise ConfigError(f"host.json: extensions.durableTask.defaultVersion must be a string, like \"1.0\", "
                      f"not {json.dumps(value)}")


def _strategy(section: dict[str, Any], key: str, kind: type[StrategyT], default: StrategyT) -> StrategyT:
    """An enum setting, read the way the Functions host binds host.json to the extension's options
    (Enum.Parse with ignoreCase): the name in any case with blanks around it ignored, or the enum's number
    (members are declared in DurableTask.Core's numeric order)."""
    value = section.get(key)
    if value is None:
        return default
    members = list(kind)
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        text = str(value).strip()
        for member in members:
            if text.lower() == member.value.lower():
                return member
        if re.fullmatch(r"[+-]?[0-9]+", text) and 0 <= int(text) < len(members):
            return members[int(text)]
    raise ConfigError(f"host.json: extensions.durableTask.{key} must be one of "
                      f"{', '.join(member.value for member in members)}, not {json.dumps(value)}")


def load_host_config(app_dir: Path, hub_name: str | None = None) -> HostConfig:
    """Parse ``app_dir/host.json``; a missing file means all defaults, as in the real host.

    ``hub_name`` (``--hub``) replaces host.json's ``hubName``, which is then not read at all: a
    ``%SETTING%`` reference to a setting that is not set is no error then."""
    path = app_dir / "host.json"
    if not path.exists():
        return HostConfig()
    raw = _read_json(path)
    extensions = raw.get("extensions") or {}
    if not isinstance(extensions, dict):
        raise ConfigError("host.json: 'extensions' must be an object")
    http = extensions.get("http") or {}
    prefix = http.get("routePrefix", "api") if isinstance(http, dict) else "api"
    if not isinstance(prefix, str):
        raise ConfigError("host.json: extensions.http.routePrefix must be a string")
    durable_raw = extensions.get("durableTask") or {}
    if not isinstance(durable_raw, dict):
        raise ConfigError("host.json: extensions.durableTask must be an object")
    provider = durable_raw.get("storageProvider") or {}
    if not isinstance(provider, dict):
        provider = {}
    hub = hub_name if hub_name is not None else durable_raw.get("hubName", DEFAULT_HUB_NAME)
    if not isinstance(hub, str) or not hub.strip():
        raise ConfigError("host.json: extensions.durableTask.hubName must be a non-empty string")
    if hub_name is None and len(hub) > 2 and hub.startswith("%") and hub.endswith("%"):
        # The real host resolves %SETTING% references from app settings.
        resolved = os.environ.get(hub[1:-1], "")
        if not resolved:
            raise ConfigError(f"host.json: hubName refers to app setting {hub[1:-1]!r}, which is not set")
        hub = resolved
    durable = DurableSettings(
        hub_name=hub,
        max_concurrent_activities=_positive_int(durable_raw, "maxConcurrentActivityFunctions", 10),
        max_concurrent_orchestrations=_positive_int(durable_raw, "maxConcurrentOrchestratorFunctions", 10),
        max_concurrent_entities=_positive_int(durable_raw, "maxConcurrentEntityFunctions", 10),
        max_entity_batch_size=_positive_int(durable_raw, "maxEntityOperationBatchSize", 50),
        partition_count=_positive_int(provider, "partitionCount", 4),
        max_dequeue_count=_positive_int(provider, "maxDequeueCount", 5),
        visibility_timeout_s=_timespan_seconds(provider, "controlQueueVisibilityTimeout", 10),
        storage_provider_type=_storage_provider_type(provider),
        default_version=_default_version(durable_raw),
        version_match_strategy=_strategy(durable_raw, "versionMatchStrategy", VersionMatchStrategy,
                                         VersionMatchStrategy.CURRENT_OR_OLDER),
        version_failure_strategy=_strategy(durable_raw, "versionFailureStrategy", VersionFailureStrategy,
                                           VersionFailureStrategy.REJECT),
        overridable_existing_instance_states=_strategy(durable_raw, "overridableExistingInstanceStates",
                                                       OverridableStates, OverridableStates.NON_RUNNING_STATES),
    )
    return HostConfig(route_prefix=prefix.strip("/"), durable=durable)


def load_local_settings(app_dir: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Copy local.settings.json ``Values`` into the environment; variables already set win.

    Returns the values that were applied, for logging.
    """
    env = os.environ if environ is None else environ
    path = app_dir / "local.settings.json"
    if not path.exists():
        return {}
    raw = _read_json(path)
    values = raw.get("Values") or {}
    if not isinstance(values, dict):
        raise ConfigError("local.settings.json: 'Values' must be an object")
    applied: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        if not isinstance(value, (str, int, float, bool)):
            raise ConfigError(f"local.settings.json: Values.{key} must be a string")
        if key not in env:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            env[key] = text
            applied[key] = text
    return applied
