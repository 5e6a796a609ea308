"""Runs one activity the way the Python worker does: the ``azure.functions`` converters in and out.

The function runs through the worker (sync ones in its thread pool, async ones on its loop); how many
run at once is the engine's ``maxConcurrentActivityFunctions``. The built-in HTTP activity behind
``context.call_http`` is the host's own and runs through aiohttp on the host's loop.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any

import aiohttp
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from funchost.app_loader import FunctionIndex
from funchost.durable import history as h
from funchost.durable.replay import HTTP_ACTIVITY
from funchost.invocation import InvocationContext
from funchost.stores.base import ActivityTask, Json
from funchost.worker import Worker

logger = logging.getLogger(__name__)


class ActivityRunner:
    def __init__(self, functions: FunctionIndex, worker: Worker) -> None:
        self.functions = functions
        self.worker = worker
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def run(self, task: ActivityTask) -> Json:
        """Run ``task`` and return the TaskCompleted or TaskFailed event for its orchestration."""
        started = time.time()
        try:
            if task.name == HTTP_ACTIVITY:
                result_text: str | None = json.dumps(await self._call_http(json.loads(task.input or "{}")))
            else:
                result_text = await self._call_function(task)
        except Exception as exc:
            activity = self.functions.activity(task.name)
            name = activity.durable_name if activity else task.name
            logger.error("activity %s (instance %s, task %s) failed after %.0f ms",
                         name, task.instance_id, task.task_id, (time.time() - started) * 1000,
                         exc_info=exc)
            reason = f"Activity function '{name}' failed:  {type(exc).__name__}: {exc}"
            details = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return h.task_failed(time.time(), task.task_id, reason, details)
        return h.task_completed(time.time(), task.task_id, result_text)

    async def _call_function(self, task: ActivityTask) -> str | None:
        activity = self.functions.activity(task.name)
        if activity is None:
            raise LookupError(f"The activity function '{task.name}' doesn't exist, is disabled, "
                              "or is not an activity function.")
        datum = meta.Datum(type="string", value=task.input if task.input is not None else "null")
        argument = ActivityTriggerConverter.decode(datum, trigger_metadata={})
        kwargs: dict[str, Any] = {activity.input_param: argument}
        context = InvocationContext(activity.name)
        if activity.wants_context:
            kwargs["context"] = context
        result = await self.worker.call(activity.user_fn, kwargs, context.invocation_id)
        encoded = ActivityTriggerConverter.encode(result, expected_type=None)
        return None if encoded.value is None else str(encoded.value)

    async def _call_http(self, request: Json) -> Json:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=100))
        headers = {k: v if isinstance(v, str) else ",".join(v) for k, v in (request.get("headers") or {}).items()}
        if request.get("tokenSource"):
            raise ValueError("call_http with a token_source needs a managed identity, which funchost does not have")
        async with self._http.request(str(request.get("method", "GET")), str(request["uri"]),
                                      data=request.get("content"), headers=headers) as response:
            content = await response.text()
            return {"statusCode": response.status, "headers": dict(response.headers.items()), "content": content}
