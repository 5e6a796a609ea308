"""The ``context`` argument the worker passes to a function that declares one."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import azure.functions as func
from azure.functions._abc import RetryContext, TraceContext

from funchost.worker import invocation_id_local


class _TraceContext(TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """One invocation's ``func.Context``: a fresh invocation id per call, as in the worker, whose contexts all
    share one ``thread_local_storage`` (the thread running an invocation sets its ``invocation_id``)."""

    def __init__(self, function_name: str, function_directory: str = "") -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local_storage = invocation_id_local

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> threading.local:  # type: ignore[override]  # the ABC mis-annotates it
        return self._thread_local_storage

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> RetryContext:
        return _RetryContext()
