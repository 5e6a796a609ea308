"""Orchestration versioning through funchost: defaultVersion, start and sub-orchestration versions,
`context.version`, and versionMatchStrategy / versionFailureStrategy.

Drives tests/apps/versioning (host.json defaultVersion 1.0) over real HTTP: instances start through
the app's starter (the SDK's `start_new`, with and without `version=`) or the public API
(`POST orchestrators/{name}?version=`). Each orchestrator returns `context.version`, so an output is
the version the SDK read from the instance's ExecutionStarted event. Tests that need other settings run
a copy of the app with another host.json.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from tests.integration._durable_helpers import DURABLE, finished, history, rows
from tests.paths import TEST_APPS

APP = "versioning"
# DurableTask.Core's FailureDetails for a version failure, and the status output made of them.
MISMATCH_TYPE = "VersionMismatch"
MISMATCH_MESSAGE = "Orchestration version did not comply with Worker Versioning"
MISMATCH_OUTPUT = f"{MISMATCH_TYPE}: {MISMATCH_MESSAGE}"
UNSET = object()


def app_copy(tmp_path: Path, label: str, **durable: Any) -> Path:
    """A copy of the versioning app whose host.json durableTask takes `durable` (UNSET removes a key)."""
    app_dir = tmp_path / f"versioning_{label}"
    shutil.copytree(TEST_APPS / APP, app_dir, ignore=shutil.ignore_patterns(".funchost", "__pycache__"))
    host_json = json.loads((app_dir / "host.json").read_text())
    section = host_json["extensions"]["durableTask"]
    for key, value in durable.items():
        if value is UNSET:
            section.pop(key, None)
        else:
            section[key] = value
    (app_dir / "host.json").write_text(json.dumps(host_json))
    return app_dir


def start_sdk(host: FunchostProcess, orchestrator: str, payload: Any = None, version: str | None = None) -> str:
    """Start through the app's starter: `start_new(name, None, payload[, version=version])`."""
    query = "" if version is None else f"?version={quote(version)}"
    res = host.post(f"/api/start/{orchestrator}{query}", payload)
    assert res.status == 202, f"start of {orchestrator} answered {res.status}: {res.text}"
    return str(res.json()["id"])


def start_public(host: FunchostProcess, orchestrator: str, query: str = "") -> str:
    res = host.post(f"{DURABLE}/orchestrators/{orchestrator}{query}")
    assert res.status == 202, res.text
    return str(res.json()["id"])


def completed_output(host: FunchostProcess, instance_id: str) -> Any:
    status = finished(host, instance_id)
    assert status["runtimeStatus"] == "Completed", status
    return status["output"]


def wait_for_log(host: FunchostProcess, fragment: str, timeout: float = 15.0) -> str:
    """The host log once it contains `fragment` (the line funchost writes when it refuses an instance)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = host.log()
        if fragment in text:
            return text
        time.sleep(0.05)
    pytest.fail(f"the host log never said {fragment!r}; it ends with:\n{host.log()[-2000:]}")


def assert_left_pending(host: FunchostProcess, instance_id: str) -> str:
    """A rejected new instance: logged once, and still Pending with no history of its own."""
    log = wait_for_log(host, f"instance {instance_id}: not run")
    status = host.status(instance_id)
    assert status.status == 202, status.text
    assert status.json()["runtimeStatus"] == "Pending", status.text
    assert status.json()["output"] is None
    line = next(line for line in log.splitlines() if f"instance {instance_id}: not run" in line)
    return line


# --- which version an instance gets -------------------------------------------------------------


def test_instance_started_without_a_version_gets_default_version(start_host: StartHost) -> None:
    host = start_host(APP)
    instance_id = start_sdk(host, "report_version")

    assert completed_output(host, instance_id) == "1.0"
    # The public status and history never show the version, as the extension's do not.
    status = host.status(instance_id, "?showHistory=true&showInput=true").json()
    assert "version" not in {key.lower() for key in status}, status
    (started,) = rows(status["historyEvents"], "ExecutionStarted")
    assert "Version" not in started, started


def test_sdk_start_new_version_overrides_default_version(start_host: StartHost) -> None:
    host = start_host(APP)
    older = start_sdk(host, "report_version", version="0.9")
    empty = start_sdk(host, "report_version", version="")  # start_new(version="") sends ?version=

    assert completed_output(host, older) == "0.9"
    assert completed_output(host, empty) == ""  # an empty version is kept, not replaced by defaultVersion


def test_public_api_start_takes_the_version_query(start_host: StartHost) -> None:
    host = start_host(APP)
    explicit = start_public(host, "report_version", "?version=0.5")
    default = start_public(host, "report_version")

    assert completed_output(host, explicit) == "0.5"
    assert completed_output(host, default) == "1.0"


def test_sub_orchestration_gets_its_explicit_version_or_default_version_not_its_parents(
        start_host: StartHost) -> None:
    host = start_host(APP)
    instance_id = start_sdk(host, "report_sub_versions", {"explicit": "0.7"}, version="0.8")

    assert completed_output(host, instance_id) == {"own": "0.8", "explicit": "0.7", "explicitWithRetry": "0.7",
                                                   "default": "1.0"}


def test_continue_as_new_keeps_the_instance_version(start_host: StartHost) -> None:
    host = start_host(APP)
    instance_id = start_sdk(host, "continue_then_report", 2, version="0.6")

    assert completed_output(host, instance_id) == "0.6"


def test_without_default_version_context_version_is_none(start_host: StartHost, tmp_path: Path) -> None:
    host = start_host(app_copy(tmp_path, "unversioned", defaultVersion=UNSET))
    unversioned = start_sdk(host, "report_version")
    versioned = start_sdk(host, "report_version", version="1.0")

    assert completed_output(host, unversioned) is None
    # CurrentOrOlder (the default strategy) against no defaultVersion: any defined version is newer.
    line = assert_left_pending(host, versioned)
    assert "'1.0' is newer than this host's defaultVersion None" in line


# --- versionMatchStrategy ------------------------------------------------------------------------


def test_match_strategy_none_runs_every_version(start_host: StartHost, tmp_path: Path) -> None:
    host = start_host(app_copy(tmp_path, "none", versionMatchStrategy="None"))
    newer = start_sdk(host, "report_version", version="9.0")
    older = start_sdk(host, "report_version", version="0.1")

    assert completed_output(host, newer) == "9.0"
    assert completed_output(host, older) == "0.1"


def test_current_or_older_runs_older_and_equal_and_rejects_newer_until_a_newer_host_runs_it(
        start_host: StartHost, tmp_path: Path) -> None:
    # The app's own host.json: defaultVersion 1.0 and the defaults CurrentOrOlder / Reject.
    host = start_host(APP)
    older = start_sdk(host, "report_version", version="0.9")
    equal = start_sdk(host, "report_version", version="1.0")
    same_by_components = start_sdk(host, "report_version", version="1.00")  # System.Version 1.0
    newer = start_sdk(host, "report_version", version="1.10")  # 1.10 > 1.9 > 1.0 by components

    assert completed_output(host, older) == "0.9"
    assert completed_output(host, equal) == "1.0"
    assert completed_output(host, same_by_components) == "1.00"
    line = assert_left_pending(host, newer)
    assert "'1.10' is newer than this host's defaultVersion '1.0' (versionMatchStrategy CurrentOrOlder)" in line
    assert "Reject leaves it Pending" in line

    # Reject leaves the instance's work in the task hub: the next host, of a newer version, runs it.
    host.stop()
    newer_host = start_host(app_copy(tmp_path, "v2", defaultVersion="2.0"))
    assert completed_output(newer_host, newer) == "1.10"


def test_strict_runs_only_the_same_version_string(start_host: StartHost, tmp_path: Path) -> None:
    host = start_host(app_copy(tmp_path, "strict", versionMatchStrategy="strict"))  # names are case-insensitive
    same = start_sdk(host, "report_version", version="1.0")
    older = start_sdk(host, "report_version", version="0.9")
    same_by_components = start_sdk(host, "report_version", version="1.00")  # equal as versions, not as text

    assert completed_output(host, same) == "1.0"
    for instance_id, version in ((older, "0.9"), (same_by_components, "1.00")):
        line = assert_left_pending(host, instance_id)
        assert f"'{version}' is not this host's defaultVersion '1.0' (versionMatchStrategy Strict)" in line


# --- versionFailureStrategy Fail -------------------------------------------------------------------


def test_fail_strategy_fails_a_mismatched_instance_and_its_parent_sees_it(
        start_host: StartHost, tmp_path: Path) -> None:
    host = start_host(app_copy(tmp_path, "fail", versionFailureStrategy="Fail"))
    newer = start_sdk(host, "report_version", version="2.0")
    accepted = start_sdk(host, "report_version", version="1.0")
    parent = start_sdk(host, "call_sub_at", "3.0")  # the parent (1.0) runs; its 3.0 child fails

    status = finished(host, newer)
    assert status["runtimeStatus"] == "Failed", status
    assert status["output"] == MISMATCH_OUTPUT
    events = history(host, newer, "?showHistory=true&showHistoryOutput=true")
    assert [row["EventType"] for row in events] == ["ExecutionStarted", "ExecutionCompleted"]
    (completed,) = rows(events, "ExecutionCompleted")
    assert completed["OrchestrationStatus"] == "Failed"
    assert completed["FailureDetails"]["ErrorType"] == MISMATCH_TYPE
    assert completed["FailureDetails"]["ErrorMessage"] == MISMATCH_MESSAGE
    assert completed["FailureDetails"]["IsNonRetriable"] is True

    assert completed_output(host, accepted) == "1.0"

    parent_status = finished(host, parent)
    assert parent_status["runtimeStatus"] == "Failed", parent_status
    assert MISMATCH_OUTPUT in parent_status["output"]
    (child_failed,) = rows(history(host, parent), "SubOrchestrationInstanceFailed")
    assert child_failed["Reason"] == MISMATCH_OUTPUT
