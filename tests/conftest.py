"""Fixtures shared by every test: a funchost child process per test, on a fresh task hub and a free port.

Every test that starts a host runs once per store (`store_kind`): on a SQLite file of its own, and on the
Azure Storage store against one Azurite shared by the whole run, in a task hub of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.azurite import Azurite, start_or_skip
from tests.support.funchost_process import TEST_APPS, FunchostProcess

StartHost = Callable[..., FunchostProcess]


@pytest.fixture(params=["sqlite", pytest.param("azure", marks=pytest.mark.azurite)])
def store_kind(request: pytest.FixtureRequest) -> str:
    """The task-hub backend under test; every integration test runs once per store.

    A test pins one store with ``@pytest.mark.parametrize("store_kind", [...])``; "memory" is accepted there.
    """
    return str(request.param)


@pytest.fixture
def restartable_store(store_kind: str) -> None:
    """For crash tests: a host killed with SIGKILL restarts on the same task hub, which only a store that
    outlives the process (a SQLite file, Azure Storage) can offer."""
    if store_kind == "memory":
        pytest.skip("a restart after kill -9 only makes sense on a store that outlives the process")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the whole run, started by the first test that needs it and stopped (SIGTERM) at the end.

    Where Azurite cannot run (no node, or `npm ci` not run), its tests are skipped with the reason;
    under CI=true they fail instead, so CI never passes without having tested the Azure store.
    """
    folder = tmp_path_factory.mktemp("azurite")
    server = start_or_skip(Azurite(location=folder / "data", log_path=folder / "azurite.log"))
    try:
        yield server
    finally:
        server.stop()


def hub_name_for_test() -> str:
    """A task hub name no other test uses: Azure Storage tables and queues are named after it."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def start_host(request: pytest.FixtureRequest, tmp_path: Path, store_kind: str) -> Iterator[StartHost]:
    """Start funchost on an app folder (a name under tests/apps/ or a path); stopped at test end.

    Calling it again in the same test restarts a host on the same task hub (the same SQLite file, or the
    same Azure task hub name in the same Azurite), which is how crash tests resume after a SIGKILL.
    """
    server: Azurite | None = request.getfixturevalue("azurite") if store_kind == "azure" else None
    hub = hub_name_for_test()
    started: list[FunchostProcess] = []

    def start(app: str | Path, *, store: str | None = None, extra_args: list[str] | None = None,
              env: dict[str, str] | None = None, timeout: float = 30.0) -> FunchostProcess:
        app_dir = Path(app) if Path(app).is_absolute() else TEST_APPS / str(app)
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
