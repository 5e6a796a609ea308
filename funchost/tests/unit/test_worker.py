"""funchost.worker: the thread-pool setting as the Python worker reads it, and where calls run."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from funchost.worker import Worker, invocation_id_local, threadpool_size


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), ("1", 1), ("16", 16)])
def test_the_thread_count_setting_is_a_positive_integer_or_the_executor_default(
        value: str | None, expected: int | None) -> None:
    environ = {} if value is None else {"PYTHON_THREADPOOL_THREAD_COUNT": value}

    assert threadpool_size(environ) == expected


@pytest.mark.parametrize(("value", "warning"), [
    ("many", "PYTHON_THREADPOOL_THREAD_COUNT must be an integer"),
    ("0", "PYTHON_THREADPOOL_THREAD_COUNT must be set to a value between 1 and sys.maxint"),
])
def test_a_bad_thread_count_is_logged_and_ignored(caplog: pytest.LogCaptureFixture, value: str,
                                                  warning: str) -> None:
    with caplog.at_level(logging.WARNING, logger="funchost.worker"):
        assert threadpool_size({"PYTHON_THREADPOOL_THREAD_COUNT": value}) is None
    assert warning in caplog.text


def where(**_: Any) -> tuple[str, bool, str | None]:
    try:
        asyncio.get_running_loop()
        running = True
    except RuntimeError:
        running = False
    return threading.current_thread().name, running, getattr(invocation_id_local, "invocation_id", None)


async def where_async(**_: Any) -> tuple[str, bool, str | None]:
    return where()


def test_sync_calls_run_in_the_pool_and_async_ones_on_the_workers_loop() -> None:
    async def scenario(worker: Worker) -> None:
        host_thread = threading.current_thread().name
        worker_loop_thread: dict[str, str] = {}

        def run_worker_loop() -> None:
            asyncio.set_event_loop(worker.loop)
            worker_loop_thread["name"] = threading.current_thread().name
            worker.loop.run_forever()

        thread = threading.Thread(target=run_worker_loop, name="worker-loop")
        thread.start()
        try:
            sync_thread, sync_running, sync_invocation = await worker.call(where, {"x": 1}, "inv-1")
            async_thread, async_running, async_invocation = await worker.call(where_async, {}, "inv-2")
            blocking = await worker.run_in_pool(worker.call_blocking, where_async)
        finally:
            worker.loop.call_soon_threadsafe(worker.loop.stop)
            await asyncio.to_thread(thread.join)
        assert sync_thread not in (host_thread, "worker-loop") and not sync_running and sync_invocation == "inv-1"
        assert async_thread == "worker-loop" and async_running and async_invocation == "inv-2"
        assert blocking[0] == "worker-loop"

    worker = Worker(asyncio.new_event_loop(), max_workers=2)
    try:
        asyncio.run(scenario(worker))
    finally:
        worker.shutdown()
        worker.loop.close()
    assert worker.max_workers == 2
