"""The chat-completions mapping both real clients share: our request → `chat.completions.create`, the
completion → our response, and the SDK's exceptions → `ModelCallError` with `retryable` set.

The `openai` client is always built with `max_retries=0`: the run orchestration's retry policy is the
only retry layer, so a 400 is never retried and a 429 is retried on the orchestration's schedule (which
honours `retry_after`), with every attempt visible in the run's history.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import typing
import weakref
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from agents._tokens import count_message_tokens, count_tokens
from agents.errors import ModelCallError
from agents.messages import ChatMessage, ModelRequest, ModelResponse, ToolCall, Usage

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 429})
MAX_ERROR_CHARS = 300


def is_retryable_status(status: int) -> bool:
    """408, 409, 429 and every 5xx can succeed later; other statuses (400, 401, 403, 404, 422...) cannot."""
    return status in RETRYABLE_STATUS or 500 <= status <= 599


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` (milliseconds) or `Retry-After` (seconds or an HTTP date).

    Returns None when neither header is present or parseable; never a negative number.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    milliseconds = lowered.get("retry-after-ms")
    if milliseconds:
        try:
            return max(float(milliseconds) / 1000.0, 0.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - (now or datetime.now(timezone.utc))).total_seconds(), 0.0)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return _short(error["message"])
        if isinstance(error, str):
            return _short(error)
    return _short(exc.message)


def classify(exc: openai.OpenAIError, provider: str) -> ModelCallError:
    """The `ModelCallError` for an exception of the `openai` SDK."""
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return ModelCallError(
            f"{provider} model call failed with HTTP {status}: {_status_message(exc)}",
            retryable=is_retryable_status(status),
            status_code=status,
            retry_after=retry_after_seconds(exc.response.headers),
        )
    if isinstance(exc, openai.APITimeoutError):
        return ModelCallError(f"{provider} model call timed out", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {_short(str(cause))}" if cause else ""
        return ModelCallError(f"{provider} model call could not connect{detail}", retryable=True)
    return ModelCallError(f"{provider} model call failed: {_short(str(exc))}", retryable=False)


def to_provider_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """Our messages in the chat-completions wire format (tool call arguments as JSON text)."""
    wire: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "tool":
            wire.append(
                {
                    "role": "tool",
                    "tool_call_id": message.get("tool_call_id", ""),
                    "content": message.get("content") or "",
                }
            )
        elif role == "assistant":
            item: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
            calls = message.get("tool_calls") or []
            if calls:
                item["tool_calls"] = [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {
                            "name": call["name"],
                            "arguments": call.get("raw_arguments") or json.dumps(call["arguments"], ensure_ascii=False),
                        },
                    }
                    for call in calls
                ]
            wire.append(item)
        else:
            item = {"role": role, "content": message.get("content") or ""}
            if message.get("name"):
                item["name"] = message["name"]
            wire.append(item)
    return wire


def _tool_call(raw: Any) -> ToolCall:
    function = getattr(raw, "function", None)
    name = str(getattr(function, "name", "") or getattr(raw, "name", "") or "")
    text = getattr(function, "arguments", None) if function is not None else getattr(raw, "input", None)
    call: ToolCall = {"id": str(getattr(raw, "id", "") or ""), "name": name, "arguments": {}}
    if text is None or (isinstance(text, str) and not text.strip()):
        return call
    try:
        parsed = json.loads(text) if isinstance(text, str) else text
    except ValueError as exc:
        call["raw_arguments"] = str(text)
        call["parse_error"] = f"invalid JSON: {exc}"
        return call
    if isinstance(parsed, dict):
        call["arguments"] = parsed
    else:
        call["raw_arguments"] = str(text)
        call["parse_error"] = f"expected a JSON object, got {type(parsed).__name__}"
    return call


def from_completion(completion: ChatCompletion, request: ModelRequest, provider: str) -> ModelResponse:
    """Our response from a chat completion; usage is estimated when the provider reports none."""
    if not completion.choices:
        raise ModelCallError(f"{provider} answered with no choices", retryable=False)
    choice = completion.choices[0]
    content = choice.message.content
    if content is None and getattr(choice.message, "refusal", None):
        content = choice.message.refusal
    calls = [_tool_call(raw) for raw in choice.message.tool_calls or []]
    message: ChatMessage = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    if completion.usage is not None:
        usage: Usage = {
            "prompt_tokens": int(completion.usage.prompt_tokens or 0),
            "completion_tokens": int(completion.usage.completion_tokens or 0),
            "total_tokens": int(completion.usage.total_tokens or 0),
        }
    else:
        prompt = count_message_tokens(request.messages, request.tools)
        completion_tokens = count_tokens(content) + sum(count_tokens(json.dumps(c["arguments"])) for c in calls)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        }
    return ModelResponse(
        message=message,
        usage=usage,
        finish_reason=str(choice.finish_reason or ("tool_calls" if calls else "stop")),
        model=completion.model or (request.model or ""),
    )


_Create = Callable[..., Awaitable[ChatCompletion]]


class ChatCompletionsClient:
    """A `ModelClient` over `openai.AsyncOpenAI` (or `AsyncAzureOpenAI`) clients made by `_make_client`.

    An SDK client belongs to the event loop it first ran on (its connection pool does), and fails on any
    other loop. A host may run activities on more than one loop (one per thread, or a new loop per call),
    while the app keeps one model client per process; so this class keeps one SDK client per running
    event loop, made on first use there and forgotten once that loop is closed (call `aclose` on a loop
    before closing it, or its idle connections are left to the garbage collector).

    Args:
        default_model: Model (or Azure deployment) used when a request names none.
        provider: Name used in error messages ("openai", "azure_openai").
    """

    def __init__(self, *, default_model: str, provider: str) -> None:
        self.default_model = default_model
        self.provider = provider
        self._clients: dict[int, tuple[weakref.ref[asyncio.AbstractEventLoop], openai.AsyncOpenAI]] = {}
        self._lock = threading.Lock()

    def _make_client(self) -> openai.AsyncOpenAI:
        """A new SDK client, built with `max_retries=0`, for the running event loop."""
        raise NotImplementedError

    def _client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.get(id(loop))
            if entry is not None and entry[0]() is loop:
                return entry[1]
            for key, (ref, _) in list(self._clients.items()):
                other = ref()
                if other is None or other.is_closed():
                    del self._clients[key]
            client = self._make_client()
            self._clients[id(loop)] = (weakref.ref(loop), client)
            return client

    async def complete(self, request: ModelRequest) -> ModelResponse:
        model = request.model or self.default_model
        arguments: dict[str, Any] = {"model": model, "messages": to_provider_messages(request.messages)}
        if request.tools:
            arguments["tools"] = request.tools
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        if request.max_tokens is not None:
            arguments["max_tokens"] = request.max_tokens
        # The SDK's overloads (streaming or not) do not type a call built from a dict; this is the one
        # place that call is made, and `stream` is never passed, so the result is a ChatCompletion.
        create = typing.cast(_Create, self._client().chat.completions.create)
        logger.debug("%s: chat completion with model %s, %d messages", self.provider, model, len(request.messages))
        try:
            completion = await create(**arguments)
        except openai.OpenAIError as exc:
            raise classify(exc, self.provider) from exc
        except Exception as exc:
            other = self._classify_other(exc)
            if other is None:
                raise
            raise other from exc
        return from_completion(completion, request, self.provider)

    def _classify_other(self, exc: Exception) -> ModelCallError | None:
        """A `ModelCallError` for an exception from outside the `openai` SDK (credentials), or None."""
        return None

    async def aclose(self) -> None:
        """Close the SDK client of the running event loop (clients of closed loops are simply dropped)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.pop(id(loop), None)
        if entry is not None and entry[0]() is loop:
            await entry[1].close()
