"""Where user code runs: the Python worker's execution model.

The Python worker (azure-functions-python-worker, ``dispatcher.py``) runs an ``async def`` function on
its own event loop, the one in the worker's main thread, and every other function in one thread pool
with ``run_in_executor``; the pool's size is the app setting ``PYTHON_THREADPOOL_THREAD_COUNT``, and on
Python 3.9+ without it ``ThreadPoolExecutor``'s default. Orchestrators and entities count as synchronous
functions there: the SDK has wrapped them into a plain ``handle(context)``.

funchost does the same, with one loop more: the loop that serves HTTP and talks to the task hub (the
host's loop, the part the .NET Functions host plays) never runs user code. A user function that blocks
uses up its own pool thread, or stalls the worker's loop as it would under the real worker, never the
host. A pool thread has no running event loop, so asyncio inside a synchronous function (``asyncio.run``,
``Runner.run_sync``) behaves as under the worker.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

THREADPOOL_SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"

# The worker keeps one module-level thread-local as every context's ``thread_local_storage`` and sets
# its ``invocation_id`` in the thread that runs the invocation, so code in the user's own threads can
# read which invocation it serves.
invocation_id_local = threading.local()


def threadpool_size(environ: dict[str, str] | os._Environ[str] = os.environ) -> int | None:
    """``PYTHON_THREADPOOL_THREAD_COUNT`` as the worker reads it: an integer of at least 1; anything else
    is logged and ignored, and no value means ThreadPoolExecutor's default (None)."""
    value = environ.get(THREADPOOL_SETTING)
    if value is None or value == "":
        return None
    try:
        count = int(value)
    except ValueError:
        logger.warning("%s must be an integer", THREADPOOL_SETTING)
        return None
    if count < 1:
        logger.warning("%s must be set to a value between 1 and sys.maxint. Reverting to default value for "
                       "max_workers", THREADPOOL_SETTING)
        return None
    return count


class Worker:
    """Runs the app's functions: synchronous ones in the pool, ``async def`` ones on the worker's loop.

    ``call`` is awaited from the host's loop; ``call_blocking`` is for host code already running in a
    pool thread (an orchestration episode) that reaches a user function.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, max_workers: int | None = None) -> None:
        self.loop = loop  # the worker's loop: async user functions run here, and nothing of the host
        self.pool = ThreadPoolExecutor(max_workers=max_workers)
        self._in_pool = 0  # calls handed to the pool and not finished (also those whose caller gave up)
        self._count_lock = threading.Lock()

    @property
    def max_workers(self) -> int:
        return self.pool._max_workers

    async def call(self, fn: Callable[..., Any], kwargs: dict[str, Any], invocation_id: str | None = None) -> Any:
        """Invoke a user function with these keyword arguments where the worker would; return its result."""
        if inspect.iscoroutinefunction(fn):
            return await self._on_worker_loop(self._async_invocation(fn, invocation_id, kwargs))
        return await self.run_in_pool(_sync_invocation, fn, invocation_id, kwargs)

    async def run_in_pool(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run ``fn(*args)`` in the pool: host work that calls user functions synchronously inside it."""
        with self._count_lock:
            self._in_pool += 1
        future = self.pool.submit(functools.partial(fn, *args))
        future.add_done_callback(self._finished_in_pool)
        return await asyncio.wrap_future(future)

    def _finished_in_pool(self, _: object) -> None:
        with self._count_lock:
            self._in_pool -= 1

    @property
    def calls_in_pool(self) -> int:
        """How many synchronous calls are running (or waiting for a thread) right now."""
        return self._in_pool

    def call_blocking(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """From a pool thread: call ``fn``; an ``async def`` one runs on the worker's loop while this thread
        waits for it."""
        if inspect.iscoroutinefunction(fn):
            return asyncio.run_coroutine_threadsafe(fn(*args), self.loop).result()
        return fn(*args)

    async def _on_worker_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    @staticmethod
    async def _async_invocation(fn: Callable[..., Any], invocation_id: str | None, kwargs: dict[str, Any]) -> Any:
        invocation_id_local.invocation_id = invocation_id
        return await fn(**kwargs)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def call_here(fn: Callable[..., Any], /, *args: Any) -> Any:
    """Call ``fn`` in the calling thread: how pure host code (and its unit tests) invokes a handler when no
    worker is involved."""
    return fn(*args)


def _sync_invocation(fn: Callable[..., Any], invocation_id: str | None, kwargs: dict[str, Any]) -> Any:
    invocation_id_local.invocation_id = invocation_id
    try:
        return fn(**kwargs)
    finally:
        invocation_id_local.invocation_id = None
