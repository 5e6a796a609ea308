"""pytest fixtures that start funchost on an app folder, once per task hub store.

Every test that uses ``start_host`` runs twice, ``[sqlite]`` and ``[azure]`` in its id: on a SQLite file
of its own, and on a task hub of its own (``--hub t`` + 10 hex digits) in one Azurite that the run starts
on free ports and stops (SIGTERM) at its end. The Azure half carries the marker ``azurite``, so
``-m "not azurite"`` runs the SQLite half alone. Where Azurite cannot run (no node, or not installed) its
tests are skipped with the reason; under ``CI=true`` they fail instead, so CI never passes without having
tested the Azure store.

A test pins one store with ``@pytest.mark.parametrize("store_kind", [...])`` ("memory" is accepted
there). A conftest that overrides the ``funchost_apps`` fixture lets tests name app folders under it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from funchost.testing.azurite import Azurite, unavailable_reason
from funchost.testing.process import FunchostProcess

StartHost = Callable[..., FunchostProcess]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "azurite: runs on the Azure Storage store against Azurite "
                                       "(deselect with -m \"not azurite\")")


def ci_requires_azurite() -> bool:
    """Under CI every store is tested: a machine that cannot run Azurite fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the calling test with the reason Azurite cannot run; under CI=true fail it instead."""
    if ci_requires_azurite():
        pytest.fail(f"CI=true and the Azure-store tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"Azure-store tests skipped: {reason}")


def start_or_skip(server: Azurite) -> Azurite:
    """Start `server`; where Azurite cannot run here, skip the calling test with the reason (fail under CI)."""
    reason = unavailable_reason(server.azurite_bin)
    if reason:
        skip_or_fail(reason)
    return server.start()


@pytest.fixture(params=["sqlite", pytest.param("azure", marks=pytest.mark.azurite)])
def store_kind(request: pytest.FixtureRequest) -> str:
    """The task-hub backend under test; every test that starts a host runs once per store."""
    return str(request.param)


@pytest.fixture
def restartable_store(store_kind: str) -> None:
    """For crash tests: a host killed with SIGKILL restarts on the same task hub, which only a store that
    outlives the process (a SQLite file, Azure Storage) can offer."""
    if store_kind == "memory":
        pytest.skip("a restart after kill -9 only makes sense on a store that outlives the process")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the whole run, started by the first test that needs it and stopped (SIGTERM) at the end."""
    folder = tmp_path_factory.mktemp("azurite")
    server = start_or_skip(Azurite(location=folder / "data", log_path=folder / "azurite.log"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def funchost_apps() -> Path | None:
    """The folder that app names given to ``start_host`` are looked up in; override it in a conftest."""
    return None


def hub_name_for_test() -> str:
    """A task hub name no other test uses: Azure Storage tables and queues are named after it."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def start_host(request: pytest.FixtureRequest, tmp_path: Path, store_kind: str,
               funchost_apps: Path | None) -> Iterator[StartHost]:
    """Start funchost on an app folder (a path, or a name under ``funchost_apps``); stopped at test end.

    Calling it again in the same test restarts a host on the same task hub (the same SQLite file, or the
    same Azure task hub name in the same Azurite), which is how crash tests resume after a SIGKILL.
    """
    server: Azurite | None = request.getfixturevalue("azurite") if store_kind == "azure" else None
    hub = hub_name_for_test()
    started: list[FunchostProcess] = []

    def start(app: str | Path, *, store: str | None = None, extra_args: list[str] | None = None,
              env: dict[str, str] | None = None, timeout: float = 30.0) -> FunchostProcess:
        if Path(app).is_absolute():
            app_dir = Path(app)
        elif funchost_apps is not None:
            app_dir = funchost_apps / str(app)
        else:
            raise ValueError(f"start_host({app!r}): give an absolute path, or override the funchost_apps fixture")
        if store is None:
            store = f"sqlite:{tmp_path / 'taskhub.sqlite'}" if store_kind == "sqlite" else store_kind
        args = list(extra_args or [])
        host_env = dict(env or {})
        if store == "azure":
            assert server is not None, "an explicit azure store needs store_kind 'azure'"
            args += ["--hub", hub]
            host_env.setdefault("AzureWebJobsStorage", server.connection_string)
        host = FunchostProcess(app_dir=app_dir, store=store, extra_args=args, env=host_env,
                               log_path=tmp_path / f"funchost-{len(started)}.log")
        started.append(host)
        return host.start(timeout)

    yield start
    for host in started:
        host.stop()
