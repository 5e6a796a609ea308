"""Version comparison and the match strategies, as DurableTask.Core's VersioningSettings and dispatcher apply them."""

from __future__ import annotations

import pytest

from funchost.config import DurableSettings, VersionFailureStrategy, VersionMatchStrategy
from funchost.durable.versioning import check_version, compare_versions, started_version


@pytest.mark.parametrize("source, other, expected", [
    (None, None, 0), ("", None, 0), (" ", "", 0),  # empty or blank versions are equal
    (None, "1.0", -1), ("", "0.0", -1), ("1.0", None, 1),  # and older than any defined one
    ("1.10", "1.9", 1), ("1.0", "1.00", 0), ("2.0.1", "2.0.1.0", -1),  # System.Version: by components
    ("1.0", "1.0.0", -1), (" 1 . 2 ", "1.2", 0), ("1.+2", "1.2", 0),
    ("10", "9", -1),  # one component is not a System.Version: compared as text
    ("1.-1", "1.0", -1), ("v2", "V2", 0), ("beta", "Alpha", 1),  # as text, ignoring case
    ("2025-01-02", "2025-01-10", -1), ("1.0", "v1.0", -1),
])
def test_compare_versions(source: str | None, other: str | None, expected: int) -> None:
    assert compare_versions(source, other) == expected
    assert compare_versions(other, source) == -expected


@pytest.mark.parametrize("strategy, host, instance, refused", [
    (VersionMatchStrategy.NONE, "1.0", "9.0", False),
    (VersionMatchStrategy.CURRENT_OR_OLDER, "1.0", "1.0", False),
    (VersionMatchStrategy.CURRENT_OR_OLDER, "1.0", None, False),
    (VersionMatchStrategy.CURRENT_OR_OLDER, "1.0", "1.0.1", True),
    (VersionMatchStrategy.CURRENT_OR_OLDER, None, "1.0", True),
    (VersionMatchStrategy.STRICT, "1.0", "1.0", False),
    (VersionMatchStrategy.STRICT, "1.0", "1.00", True),  # exact text, as DurableTask.Core's `!=`
    (VersionMatchStrategy.STRICT, "1.0", "1.0 ", True),
    (VersionMatchStrategy.STRICT, None, None, False),
    (VersionMatchStrategy.STRICT, None, "", True),
])
def test_check_version(strategy: VersionMatchStrategy, host: str | None, instance: str | None,
                       refused: bool) -> None:
    settings = DurableSettings(default_version=host, version_match_strategy=strategy,
                               version_failure_strategy=VersionFailureStrategy.FAIL)
    mismatch = check_version(settings, instance)
    assert (mismatch is not None) == refused
    if mismatch is not None:
        assert mismatch.fail and mismatch.instance_version == instance and mismatch.host_version == host


def test_started_version_reads_the_first_execution_started() -> None:
    events = [{"EventType": 12}, {"EventType": 0, "Version": "2.1"}, {"EventType": 0, "Version": "9"}]
    assert started_version(events) == "2.1"
    assert started_version([{"EventType": 0, "Version": None}]) is None
    assert started_version([{"EventType": 12}]) is None
