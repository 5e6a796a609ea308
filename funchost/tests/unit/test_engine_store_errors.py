"""The engine through task-hub errors: a store that fails once where it matters, around the real SQLite store.

What these show: an activity result the task hub failed to save is saved again in this process (not left until
the next start, and the activity is not run again); an activity worker that meets a store error before its
activity runs survives it (one worker: if it died, nothing would complete); events that may be delivered twice
carry an identity and are applied once.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from funchost.app_loader import load_app
from funchost.config import DurableSettings
from funchost.durable.engine import Engine
from funchost.durable.history import EventType
from funchost.errors import StoreError
from funchost.stores.base import COMPLETED, Checkpoint, InstanceRecord
from funchost.stores.sqlite import SqliteStore
from funchost.worker import Worker

APP = '''
import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
RUNS = []


@app.orchestration_trigger(context_name="context")
def double_it(context):
    result = yield context.call_activity("double", context.get_input())
    return result


@app.activity_trigger(input_name="n")
def double(n: int) -> int:
    RUNS.append(n)
    return 2 * n
'''


class FlakyStore(SqliteStore):
    """The SQLite task hub, failing the next ``fail_result_saves`` saves of an activity result and the next
    ``fail_loads`` instance reads, as a task hub that stops answering for a moment does."""

    fail_result_saves = 0
    fail_loads = 0

    async def commit(self, checkpoint: Checkpoint) -> None:
        if self.fail_result_saves and checkpoint.completed_activity is not None and checkpoint.messages:
            self.fail_result_saves -= 1
            raise StoreError("injected: the task hub did not take the result")
        await super().commit(checkpoint)

    async def load_instance(self, instance_id: str) -> InstanceRecord | None:
        if self.fail_loads:
            self.fail_loads -= 1
            raise StoreError("injected: the task hub did not answer")
        return await super().load_instance(instance_id)


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "function_app.py").write_text(APP)
    monkeypatch.setattr(sys, "path", list(sys.path))  # loading the app puts its folder first
    monkeypatch.delitem(sys.modules, "function_app", raising=False)
    return folder


def _runs() -> list[int]:
    return list(sys.modules["function_app"].RUNS)


async def _engine(app_dir: Path, store: SqliteStore, **settings: Any) -> Engine:
    engine = Engine(store, load_app(app_dir), DurableSettings(**settings), Worker(asyncio.get_running_loop(), 2))
    await engine.open()
    engine.start_workers()
    return engine


def test_a_result_the_task_hub_failed_to_save_is_saved_again_without_running_the_activity_again(
    app_dir: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store = FlakyStore(tmp_path / "hub.sqlite", "TestHubName")
        store.fail_result_saves = 2
        engine = await _engine(app_dir, store)
        try:
            await engine.start_new("double_it", "flaky-save", "21")
            done = await engine.wait_until_done("flaky-save", 20)
        finally:
            await engine.stop()
        assert done is not None and (done.status, done.output) == (COMPLETED, "42")
        assert store.fail_result_saves == 0
        assert _runs() == [21]

    asyncio.run(scenario())


def test_an_activity_worker_survives_a_store_error_before_its_activity_runs(app_dir: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        path = tmp_path / "hub.sqlite"
        # A first host with no activity workers leaves the work item scheduled, as a killed host would.
        first = await _engine(app_dir, SqliteStore(path, "TestHubName"), max_concurrent_activities=0)
        try:
            await first.start_new("double_it", "flaky-load", "5")
            for _ in range(200):
                loaded = await first.get("flaky-load")
                if loaded and any(e.get("EventType") == EventType.TaskScheduled for e in loaded[1]):
                    break
                await asyncio.sleep(0.02)
        finally:
            await first.stop()
        # The next host's only activity worker finds a work item left from before: checking whether its result
        # is in the history already reads the instance, and that read fails once.
        store = FlakyStore(path, "TestHubName")
        store.fail_loads = 1
        engine = await _engine(app_dir, store, max_concurrent_activities=1)
        try:
            for _ in range(500):  # no reads of ours until the activity ran: the failure is the worker's
                if _runs():
                    break
                await asyncio.sleep(0.02)
            assert store.fail_loads == 0
            done = await engine.wait_until_done("flaky-load", 20)
        finally:
            await engine.stop()
        assert done is not None and (done.status, done.output) == (COMPLETED, "10")
        assert _runs() == [5]

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", [EventType.ExecutionTerminated, EventType.ExecutionSuspended,
                                  EventType.ExecutionResumed, EventType.EventRaised])
def test_a_control_or_raised_event_delivered_again_is_a_duplicate(kind: EventType) -> None:
    applied = {"EventType": kind, "MessageId": "m-1"}
    assert Engine._is_duplicate({"EventType": kind, "MessageId": "m-1"}, [applied])
    assert not Engine._is_duplicate({"EventType": kind, "MessageId": "m-2"}, [applied])
