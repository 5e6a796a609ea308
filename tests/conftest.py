"""Fixtures shared by every test: a funchost child process per test, on a fresh store and a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.funchost_process import TEST_APPS, FunchostProcess

StartHost = Callable[..., FunchostProcess]


@pytest.fixture(params=["sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """The task-hub backend under test; every integration test runs once per store."""
    return str(request.param)


@pytest.fixture
def start_host(tmp_path: Path, store_kind: str) -> Iterator[StartHost]:
    """Start funchost on an app folder (a name under tests/apps/ or a path); stopped at test end.

    Calling it again with the same `store` restarts a host on the same task hub, which is how
    crash tests resume after a SIGKILL.
    """
    started: list[FunchostProcess] = []

    def start(app: str | Path, *, store: str | None = None, extra_args: list[str] | None = None,
              env: dict[str, str] | None = None, timeout: float = 30.0) -> FunchostProcess:
        app_dir = Path(app) if Path(app).is_absolute() else TEST_APPS / str(app)
        if store is None:
            store = f"sqlite:{tmp_path / 'taskhub.sqlite'}" if store_kind == "sqlite" else store_kind
        host = FunchostProcess(app_dir=app_dir, store=store, extra_args=list(extra_args or []),
                               env=dict(env or {}), log_path=tmp_path / f"funchost-{len(started)}.log")
        started.append(host)
        return host.start(timeout)

    yield start
    for host in started:
        host.stop()
