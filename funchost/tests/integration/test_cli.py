"""`python -m funchost start`: settings, the function listing, signals, start-up failures, stores.

Hosts that must start go through the `start_host` fixture; hosts that must refuse to start are run
to completion here with their stdout and stderr captured apart.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from funchost.testing.process import FunchostProcess, free_port
from funchost.testing.pytest_plugin import StartHost
from funchost.worker_checks import PEP585_ALIASES_ARE_TYPES
from tests.paths import TEST_APPS

BROKEN_IMPORT_TEXT = "required setting BROKEN_IMPORT_SETTING is missing"  # raised by tests/apps/broken_import
MAX_FAILURE_LINES = 40


def run_funchost(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run `python -m funchost start ARGS...` to its exit; a host that keeps running fails the test."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "funchost", "start", *args]
    try:
        return subprocess.run(
            command, cwd=str(TEST_APPS), env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as expired:  # subprocess.run has killed it by now
        pytest.fail(f"funchost {' '.join(args)} was still running after {timeout}s; output: {expired.output!r}")


def assert_short_failure(result: subprocess.CompletedProcess[str]) -> str:
    """A refused start: exit code 1, a short message on stderr, no traceback wall. Returns stderr."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, f"exit code {result.returncode}; output:\n{output}"
    assert result.stderr.strip(), f"nothing on stderr; stdout:\n{result.stdout}"
    assert len(output.strip().splitlines()) < MAX_FAILURE_LINES, output
    assert "Traceback (most recent call last)" not in output, output
    return result.stderr


def wait_for_log(host: FunchostProcess, predicate: Callable[[str], object], timeout: float = 5.0) -> str:
    """The host's captured output once `predicate` holds (or at the deadline, for the assertion to show)."""
    deadline = time.monotonic() + timeout
    log = host.log()
    while not predicate(log) and time.monotonic() < deadline:
        time.sleep(0.05)
        log = host.log()
    return log


def url_line(name: str, port: int, route: str) -> re.Pattern[str]:
    """A listing line naming the function and its URL, as `func start` prints it."""
    url = rf"http://(?:127\.0\.0\.1|localhost):{port}/{re.escape(route)}"
    return re.compile(rf"^.*\b{re.escape(name)}\b.*{url}(?:\s|$)", re.MULTILINE)


def kind_line(name: str, kind: str) -> re.Pattern[str]:
    """A listing line naming a non-HTTP function and its trigger kind."""
    return re.compile(rf"^.*\b{re.escape(name)}\b.*\b{kind}\b", re.MULTILINE)


# --- local.settings.json --------------------------------------------------------------------------


def test_local_settings_values_are_loaded_and_the_environment_wins(start_host: StartHost) -> None:
    host = start_host("http_routes", env={"HTTP_ROUTES_OVERRIDDEN": "value-from-environment"})

    names = "HTTP_ROUTES_FROM_SETTINGS,HTTP_ROUTES_OVERRIDDEN,FUNCTIONS_WORKER_RUNTIME,HTTP_ROUTES_NEVER_SET"
    res = host.get(f"/api/env?names={names}")

    assert res.status == 200, res.text
    assert res.json() == {
        "HTTP_ROUTES_FROM_SETTINGS": "value-from-local-settings",
        "HTTP_ROUTES_OVERRIDDEN": "value-from-environment",
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "HTTP_ROUTES_NEVER_SET": None,
    }


# --- the function listing -------------------------------------------------------------------------


def test_listing_names_http_functions_with_their_urls(start_host: StartHost) -> None:
    host = start_host("http_routes")
    expected = {
        "echo": "api/echo/{name}",
        "optional_param": "api/optional/{name?}",
        "item_by_int": "api/items/{id:int}",
        "plain_hello": "api/plain_hello",
        "renamed_fn": "api/renamed_fn",
        "start_orchestration": "api/orchestrators/{name}",
    }
    patterns = [url_line(name, host.port, route) for name, route in expected.items()]

    log = wait_for_log(host, lambda text: all(p.search(text) for p in patterns))

    missing = [name for name, p in zip(expected, patterns, strict=True) if not p.search(log)]
    assert not missing, f"no listing line with the URL for {missing}:\n{log}"
    assert kind_line("fetch_urls", "orchestrationTrigger").search(log), log


@pytest.mark.parametrize(
    ("app", "expected", "http_route"),
    [
        (
            "entities",
            [
                ("counter_entity", "entityTrigger"),
                ("journal_entity", "entityTrigger"),
                ("add_then_get", "orchestrationTrigger"),
            ],
            ("signal_counter", "api/counters/{key}/add"),
        ),
        (
            "crashy",
            [("mark_and_wait", "activityTrigger"), ("wait_on_timer", "orchestrationTrigger")],
            ("start_orchestration", "api/orchestrators/{name}/{instance_id}"),
        ),
    ],
)
def test_listing_names_the_trigger_kind_of_non_http_functions(
    start_host: StartHost, app: str, expected: list[tuple[str, str]], http_route: tuple[str, str]
) -> None:
    host = start_host(app)
    patterns = [kind_line(name, kind) for name, kind in expected]

    log = wait_for_log(host, lambda text: all(p.search(text) for p in patterns))

    missing = [f"{name}: {kind}" for (name, kind), p in zip(expected, patterns, strict=True) if not p.search(log)]
    assert not missing, f"no listing line for {missing}:\n{log}"
    # HTTP functions of the same app are listed with their URL, not a trigger kind.
    assert url_line(http_route[0], host.port, http_route[1]).search(log), log


# --- stopping ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_host_with_exit_code_0(start_host: StartHost, signum: signal.Signals) -> None:
    host = start_host("http_routes")
    assert host.get("/api/get_only").status == 200
    assert host.process is not None

    host.process.send_signal(signum)
    try:
        code = host.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"funchost still running 15s after {signum.name}:\n{host.log()}")

    assert code == 0, host.log()
    with pytest.raises(OSError):
        host.get("/admin/host/status", timeout=1.0)


# --- refusing to start ------------------------------------------------------------------------------


def test_app_that_fails_to_import_gets_a_short_clear_message() -> None:
    result = run_funchost(str(TEST_APPS / "broken_import"), "--port", str(free_port()), "--store", "memory")

    stderr = assert_short_failure(result)
    assert "function_app.py" in stderr
    assert BROKEN_IMPORT_TEXT in stderr
    assert "RuntimeError" in stderr


def test_app_that_registers_nothing_is_refused() -> None:
    result = run_funchost(str(TEST_APPS / "empty_app"), "--port", str(free_port()), "--store", "memory")

    stderr = assert_short_failure(result)
    assert re.search(r"\bno functions?\b|\b0 functions\b|registers? no(thing| function)", stderr, re.IGNORECASE), stderr


@pytest.mark.skipif(PEP585_ALIASES_ARE_TYPES, reason="the worker loads PEP 585 annotations before Python 3.11")
def test_app_with_a_function_the_worker_refuses_is_refused_with_the_workers_message() -> None:
    result = run_funchost(str(TEST_APPS / "refused_annotation"), "--port", str(free_port()), "--store", "memory")

    stderr = assert_short_failure(result)
    assert "Worker failed to index functions" in stderr
    assert (
        "FunctionLoadError: cannot load the count_words function: binding lines has invalid non-type annotation "
        "list[str]"
    ) in stderr
    # The function the worker would load is not listed, nor served: the whole app is refused.
    assert not re.search(r"\bping\b", result.stdout + stderr), result.stdout + stderr
    assert "Functions:" not in result.stdout


def test_missing_app_folder_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-app"

    result = run_funchost(str(missing), "--port", str(free_port()), "--store", "memory")

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "no-such-app" in result.stderr, output
    assert len(output.strip().splitlines()) < MAX_FAILURE_LINES, output
    assert "Traceback (most recent call last)" not in output, output


@pytest.fixture
def sqlite_file_lock(store_kind: str) -> None:
    """Set up before `start_host`, so the Azure case is skipped without needing Azurite."""
    if store_kind != "sqlite":
        pytest.skip("SQLite only: the refusal comes from the lock a host holds on its SQLite task hub file")


@pytest.mark.usefixtures("sqlite_file_lock")
def test_second_host_on_the_same_sqlite_task_hub_is_refused(start_host: StartHost) -> None:
    first = start_host("entities")

    second = run_funchost(str(TEST_APPS / "entities"), "--port", str(free_port()), "--store", first.store)

    output = second.stdout + second.stderr
    assert second.returncode != 0, output
    assert re.search(r"already|in use|locked|another", second.stderr, re.IGNORECASE), output
    assert len(output.strip().splitlines()) < MAX_FAILURE_LINES, output
    # The first host still runs and its task hub still works.
    assert first.process is not None and first.process.poll() is None
    assert first.get("/admin/host/status").json()["state"] == "Running"
    signalled = first.post("/runtime/webhooks/durabletask/entities/counter/after-refusal?op=add", 5)
    assert signalled.status == 202, signalled.text
    started = first.post("/api/orchestrators/add_then_get", {"key": "after-refusal", "amounts": [1]})
    assert started.status == 202, started.text
    status = first.wait_for_status(started.json()["id"])
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == 6


# --- stores -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["memory"])  # this test is about the memory store; it runs once
def test_memory_store_runs_orchestrations_and_entities(start_host: StartHost) -> None:
    host = start_host("entities", store="memory")

    started = host.post("/api/orchestrators/add_then_get", {"key": "mem", "amounts": [2, 3]})
    assert started.status == 202, started.text
    status = host.wait_for_status(started.json()["id"])

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == 5
    state = host.get("/runtime/webhooks/durabletask/entities/counter/mem")
    assert state.status == 200, state.text
    assert state.json() == 5


# --- storageProvider.type ---------------------------------------------------------------------------


def app_with_storage_provider(tmp_path: Path, provider_type: str) -> Path:
    app_dir = tmp_path / "app"
    shutil.copytree(TEST_APPS / "entities", app_dir, ignore=shutil.ignore_patterns(".funchost", "__pycache__"))
    host_json = json.loads((app_dir / "host.json").read_text())
    host_json["extensions"]["durableTask"]["storageProvider"] = {"type": provider_type}
    (app_dir / "host.json").write_text(json.dumps(host_json))
    return app_dir


@pytest.mark.parametrize("store_kind", ["sqlite"])
@pytest.mark.parametrize(("provider_type", "described"), [("azureManaged", "the Durable Task Scheduler"),
                                                          ("mssql", "Microsoft SQL Server"),
                                                          ("netherite", "Netherite")])
def test_a_storage_provider_funchost_does_not_implement_gets_one_line_naming_the_store_it_uses(
        start_host: StartHost, tmp_path: Path, provider_type: str, described: str) -> None:
    host = start_host(app_with_storage_provider(tmp_path, provider_type))

    log = wait_for_log(host, lambda text: "storageProvider.type" in text)

    lines = [line for line in log.splitlines() if "storageProvider.type" in line]
    assert len(lines) == 1, log
    assert f"'{provider_type}' ({described})" in lines[0]
    assert f"keeps the task hub in {tmp_path / 'taskhub.sqlite'} instead" in lines[0]
    assert host.get("/admin/host/status").status == 200


def test_an_unknown_storage_provider_type_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    result = run_funchost(str(app_with_storage_provider(tmp_path, "cosmos")), "--port", str(free_port()),
                          "--store", "memory")

    stderr = assert_short_failure(result)
    assert "storageProvider.type 'cosmos' is not a storage provider of Durable Functions" in stderr
    assert "AzureStorage, azureManaged, mssql, Netherite" in stderr


@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_azure_storage_as_the_provider_type_says_nothing(start_host: StartHost, tmp_path: Path) -> None:
    host = start_host(app_with_storage_provider(tmp_path, "AzureStorage"))

    wait_for_log(host, lambda text: "serving" in text)
    assert "storageProvider.type" not in host.log()
