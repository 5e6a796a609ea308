"""The host's own thread and event loop: HTTP, the Durable engine and the task hub run there.

The main thread belongs to the worker's side (see funchost.worker), as in the Python worker, whose
loop runs in its main thread; the host (the .NET Functions host's part) is a separate loop here, so
user code that blocks the worker's loop does not stop HTTP or the task hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any

Serve = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class HostThread:
    """Runs ``serve(stop)`` on a new loop in a thread of its own until it returns or raises."""

    def __init__(self, serve: Serve) -> None:
        self._serve = serve
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False

    async def run(self) -> None:
        """Start the thread and wait, without blocking the calling loop, until ``serve`` ends; its
        exception, if it raised one, is raised here."""
        caller = asyncio.get_running_loop()
        done: asyncio.Future[None] = caller.create_future()

        def finish(error: BaseException | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        def target() -> None:
            try:
                asyncio.run(self._main())
            except BaseException as exc:  # handed to the caller's loop, which raises it
                caller.call_soon_threadsafe(finish, exc)
            else:
                caller.call_soon_threadsafe(finish, None)

        thread = threading.Thread(target=target, name="funchost-host", daemon=True)
        thread.start()
        try:
            await done
        finally:
            self.request_stop()
            await asyncio.to_thread(thread.join)

    async def _main(self) -> None:
        stop = asyncio.Event()
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._stop = stop
            if self._stop_requested:
                stop.set()
        await self._serve(stop)

    def request_stop(self) -> None:
        """Ask ``serve`` to stop (thread-safe; before the host's loop exists, it stops as soon as it starts)."""
        with self._lock:
            self._stop_requested = True
            loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the host's loop has closed already: nothing to stop
                loop.call_soon_threadsafe(stop.set)
