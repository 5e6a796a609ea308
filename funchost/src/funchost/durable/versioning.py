"""Orchestration versioning: which version an instance carries, and whether this host may run it.

An instance's version is the ``Version`` of its ExecutionStarted event, fixed when it is created:
the version its starter asked for, else host.json ``defaultVersion`` (which may be unset: then no
version). The SDK reads it back from that event as ``context.version``.

Before an episode runs, the instance's version is checked against ``defaultVersion`` with the
configured ``versionMatchStrategy``, and a mismatch is handled by ``versionFailureStrategy``. The
rules are those of DurableTask.Core, which the Durable extension runs Python orchestrations on
(``TaskOrchestrationDispatcher.OnProcessWorkItemAsync`` and ``VersioningSettings.CompareVersions`` in
Azure/durabletask; the extension hands it ``defaultVersion`` and both strategies in
``DurableTaskExtension.InitializeTaskHubWorker``). durabletask-dotnet's gRPC worker, which .NET isolated
apps use instead, compares the same way but words its errors differently; Python apps never see those.
Entities carry no version and are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from funchost.config import DurableSettings, VersionFailureStrategy, VersionMatchStrategy
from funchost.durable import history as h
from funchost.durable.history import EventType, OrchestrationStatusCode
from funchost.stores.base import Json

# DurableTask.Core fails a mismatched instance with these FailureDetails (ErrorType, ErrorMessage); the
# status output is their ToString(), "ErrorType: ErrorMessage" (AzureTableTrackingStore writes it to Output).
MISMATCH_ERROR_TYPE = "VersionMismatch"
MISMATCH_ERROR_MESSAGE = "Orchestration version did not comply with Worker Versioning"
MISMATCH_OUTPUT = f"{MISMATCH_ERROR_TYPE}: {MISMATCH_ERROR_MESSAGE}"

_INT32_MAX = 2**31 - 1
# One component of System.Version: int.TryParse with NumberStyles.Integer (blanks around, a sign), not negative.
_COMPONENT = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)[ \t\n\v\f\r]*")


def started_version(events: Iterable[Json]) -> str | None:
    """The ``Version`` of the first ExecutionStarted among ``events`` (None when there is none, or no version)."""
    for ev in events:
        if ev.get("EventType") == EventType.ExecutionStarted:
            version = ev.get("Version")
            return version if isinstance(version, str) else None
    return None


def has_start(events: Iterable[Json]) -> bool:
    return any(ev.get("EventType") == EventType.ExecutionStarted for ev in events)


def _dotnet_version(text: str) -> tuple[int, ...] | None:
    """``System.Version.TryParse``: 2 to 4 dot-separated non-negative int32 components, else None.

    Missing build/revision components count as -1, as ``Version.CompareTo`` sees them: "1.0" < "1.0.0".
    """
    parts = text.split(".")
    if not 2 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        match = _COMPONENT.fullmatch(part)
        if match is None:
            return None
        value = int(match.group(2))
        if (match.group(1) == "-" and value != 0) or value > _INT32_MAX:
            return None
        numbers.append(value)
    return tuple(numbers + [-1] * (4 - len(numbers)))


def _upper_invariant(text: str) -> str:
    """Per-character upper case, as .NET's OrdinalIgnoreCase compares (no "ß" -> "SS" expansion)."""
    return "".join(upper if len(upper := char.upper()) == 1 else char for char in text)


def _blank(version: str | None) -> bool:
    return version is None or version.strip() == ""


def compare_versions(source: str | None, other: str | None) -> int:
    """Negative, zero or positive as ``source`` is older than, equal to or newer than ``other``.

    Matches DurableTask.Core ``VersioningSettings.CompareVersions``: empty (or blank) versions are equal
    and older than any defined one; two System.Version strings compare by components; anything else
    compares as text, ordinally and ignoring case. So "1.10" > "1.9", but "10" < "9" (one component is
    not a System.Version).
    """
    if _blank(source) and _blank(other):
        return 0
    if _blank(source):
        return -1
    if _blank(other):
        return 1
    assert source is not None and other is not None
    parsed_source, parsed_other = _dotnet_version(source), _dotnet_version(other)
    if parsed_source is not None and parsed_other is not None:
        return (parsed_source > parsed_other) - (parsed_source < parsed_other)
    left, right = _upper_invariant(source), _upper_invariant(other)
    return (left > right) - (left < right)


@dataclass(frozen=True)
class VersionMismatch:
    """Why an instance's version does not match this host's, and what to do about it."""

    instance_version: str | None
    host_version: str | None
    strategy: VersionMatchStrategy
    fail: bool  # versionFailureStrategy Fail; otherwise Reject: leave the work where it is

    def describe(self) -> str:
        relation = "is newer than" if self.strategy is VersionMatchStrategy.CURRENT_OR_OLDER else "is not"
        return (f"its version {self.instance_version!r} {relation} this host's defaultVersion "
                f"{self.host_version!r} (versionMatchStrategy {self.strategy.value})")


def check_version(settings: DurableSettings, version: str | None) -> VersionMismatch | None:
    """None when this host may run an instance of ``version``, else the mismatch.

    Strict compares the two strings exactly (``!=`` in DurableTask.Core, so an unset defaultVersion matches
    only instances without a version); CurrentOrOlder refuses versions ``compare_versions`` finds newer.
    """
    strategy = settings.version_match_strategy
    if strategy is VersionMatchStrategy.STRICT:
        refused = version != settings.default_version
    elif strategy is VersionMatchStrategy.CURRENT_OR_OLDER:
        refused = compare_versions(version, settings.default_version) > 0
    else:
        refused = False
    if not refused:
        return None
    return VersionMismatch(version, settings.default_version, strategy,
                           fail=settings.version_failure_strategy is VersionFailureStrategy.FAIL)


def failure_details() -> Json:
    """The FailureDetails DurableTask.Core records on a version failure."""
    return {"ErrorType": MISMATCH_ERROR_TYPE, "ErrorMessage": MISMATCH_ERROR_MESSAGE, "StackTrace": None,
            "InnerFailure": None, "IsNonRetriable": True}


def failed_history(now: float, new_events: list[Json]) -> list[Json]:
    """The history a Fail adds: the step's OrchestratorStarted, the ExecutionStarted among ``new_events`` (an
    instance failed before it ever ran), then ExecutionCompleted (Failed, no result, the FailureDetails) as
    DurableTask.Core's failure action writes it. Other delivered events are dropped with the instance."""
    started = [ev for ev in new_events if ev.get("EventType") == EventType.ExecutionStarted][:1]
    completed = h.execution_completed(now, OrchestrationStatusCode.Failed, None)
    completed["FailureDetails"] = failure_details()
    return [h.orchestrator_started(now), *started, completed, h.orchestrator_completed(now)]
