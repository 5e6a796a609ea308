"""A local HTTP server that speaks OpenAI's chat-completions protocol, for testing the real model clients.

It serves `POST /v1/chat/completions` (OpenAI and compatible servers) and
`POST /openai/deployments/{deployment}/chat/completions?api-version=...` (Azure OpenAI) on 127.0.0.1 and a
free port, in a background thread, so a test can drive it from any event loop or process:

    with ChatCompletionsServer() as server:
        server.script(rate_limited(retry_after="2"), text_response("hello"))
        ... point a client at server.openai_base_url or server.azure_endpoint ...
        assert len(server.requests) == 2

Each request takes the next scripted response (status, JSON body, headers, optional delay). With the
script empty, the server answers like a model: it hands the request to the offline model and returns its
answer in the protocol's format (tool calls, usage and all), so an app pointed at this server runs real
agent loops over HTTP. `fallback="error"` makes an empty script a 500 instead.

Run it alone with `python -m tests.support.chat_completions_server --port 8089` (offline answers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from agents.messages import ChatMessage, ModelRequest, ToolCall
from agents.models.offline import OfflineModel


@dataclass(frozen=True)
class ScriptedResponse:
    """One answer of the server: HTTP status, JSON body, extra headers, and a delay before answering."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    @property
    def deployment(self) -> str | None:
        """The Azure deployment of the path, None for the OpenAI path."""
        parts = self.path.strip("/").split("/")
        return parts[2] if len(parts) >= 4 and parts[:2] == ["openai", "deployments"] else None


def completion_body(
    *,
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    usage: Mapping[str, Any] | None = None,
    model: str = "test-model",
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A chat completion JSON body. `tool_calls` items: `{"id", "name", "arguments"}` (arguments: dict or text)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": call["arguments"]
                    if isinstance(call["arguments"], str)
                    else json.dumps(call["arguments"]),
                },
            }
            for call in tool_calls
        ]
    body: dict[str, Any] = {
        "id": f"chatcmpl-{int(time.time() * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
    }
    if usage is not None:
        body["usage"] = {
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "completion_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get(
                "total_tokens", usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
            ),
        }
    return body


def text_response(text: str, *, usage: Mapping[str, int] | None = None, model: str = "test-model") -> ScriptedResponse:
    """A 200 with a plain assistant answer."""
    return ScriptedResponse(
        body=completion_body(content=text, usage=usage or {"prompt_tokens": 10, "completion_tokens": 5}, model=model)
    )


def tool_call_response(
    name: str,
    arguments: Mapping[str, Any] | str,
    *,
    call_id: str = "call_1",
    usage: Mapping[str, int] | None = None,
    model: str = "test-model",
) -> ScriptedResponse:
    """A 200 whose assistant message asks for one tool call."""
    args: Any = arguments if isinstance(arguments, str) else dict(arguments)
    return ScriptedResponse(
        body=completion_body(
            tool_calls=[{"id": call_id, "name": name, "arguments": args}],
            usage=usage or {"prompt_tokens": 20, "completion_tokens": 7},
            model=model,
        )
    )


def error_response(
    status: int, message: str, *, code: str | None = None, headers: Mapping[str, str] | None = None
) -> ScriptedResponse:
    """An error answer with the body shape OpenAI uses: `{"error": {"message", "type", "code"}}`."""
    kind = "rate_limit_error" if status == 429 else ("server_error" if status >= 500 else "invalid_request_error")
    return ScriptedResponse(
        status=status,
        body={"error": {"message": message, "type": kind, "param": None, "code": code}},
        headers=dict(headers or {}),
    )


def rate_limited(*, retry_after: str | None = None, retry_after_ms: str | None = None) -> ScriptedResponse:
    """A 429 with the given `Retry-After` / `retry-after-ms` headers."""
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return error_response(429, "Rate limit reached; try again later.", code="rate_limit_exceeded", headers=headers)


class ChatCompletionsServer:
    """The server; see the module docstring.

    Args:
        fallback: What an empty script answers: "offline" (the offline model) or "error" (a 500).
        api_key: When set, requests must carry it (`Authorization: Bearer` or Azure's `api-key`), else 401.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
    """

    def __init__(
        self,
        *,
        fallback: Literal["offline", "error"] = "offline",
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.fallback = fallback
        self.api_key = api_key
        self.host = host
        self.port = port
        self._script: deque[ScriptedResponse] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._offline = OfflineModel()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # --- control ----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The base URL for an OpenAI-compatible client (…/v1)."""
        return f"{self.url}/v1"

    @property
    def azure_endpoint(self) -> str:
        """The endpoint for an Azure OpenAI client."""
        return self.url

    def script(self, *responses: ScriptedResponse) -> None:
        """Queue responses, answered in order, one per request."""
        with self._lock:
            self._script.extend(responses)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def pending_script(self) -> int:
        with self._lock:
            return len(self._script)

    def start(self, timeout: float = 10.0) -> ChatCompletionsServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # reported to start(), which raises it
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.close()

        self._thread = threading.Thread(target=serve, name="chat-completions-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the chat-completions server did not start in time")
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> ChatCompletionsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _open(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/chat/completions", self._openai)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure)
        # Handlers still sleeping on a scripted delay are cut short at shutdown rather than awaited.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        address = self._runner.addresses[0]
        self.port = int(address[1])

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- protocol ---------------------------------------------------------------------------------------

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        authorised = self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}"
        return await self._answer(request, authorised)

    async def _azure(self, request: web.Request) -> web.StreamResponse:
        if "api-version" not in request.query:
            await self._record(request)
            return _error_json(404, "Resource not found: the api-version query parameter is missing.")
        authorised = self.api_key is None or self.api_key in (
            request.headers.get("api-key"),
            (request.headers.get("Authorization") or "").removeprefix("Bearer "),
        )
        return await self._answer(request, authorised)

    async def _record(self, request: web.Request) -> Any:
        try:
            body: Any = await request.json()
        except ValueError:
            body = await request.text()
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k: v for k, v in request.headers.items()},
            body=body,
        )
        with self._lock:
            self._requests.append(recorded)
        return body

    async def _answer(self, request: web.Request, authorised: bool) -> web.StreamResponse:
        body = await self._record(request)
        if not authorised:
            return _error_json(401, "Incorrect API key provided.")
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is None:
            if self.fallback == "error":
                return _error_json(500, "The test server has no scripted response left.")
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                return _error_json(400, "The request body must be a JSON object with 'messages'.")
            return web.json_response(self._offline_answer(body))
        if scripted.delay_s:
            await asyncio.sleep(scripted.delay_s)
        if scripted.body is None:
            return web.Response(status=scripted.status, headers=dict(scripted.headers))
        return web.json_response(scripted.body, status=scripted.status, headers=dict(scripted.headers))

    def _offline_answer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        request = ModelRequest(
            messages=[_from_wire(m) for m in body["messages"]],
            tools=list(body.get("tools") or []),
            model=body.get("model"),
            temperature=body.get("temperature"),
            max_tokens=body.get("max_tokens"),
        )
        response = self._offline.respond(request)
        calls = response.message.get("tool_calls") or []
        return completion_body(
            content=response.message.get("content"),
            tool_calls=[{"id": c["id"], "name": c["name"], "arguments": c["arguments"]} for c in calls] or None,
            usage=response.usage,
            model=str(body.get("model") or "offline"),
            finish_reason=response.finish_reason,
        )


def _from_wire(message: Mapping[str, Any]) -> ChatMessage:
    role = message.get("role", "user")
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    result: ChatMessage = {
        "role": role if role in ("system", "user", "assistant", "tool") else "user",
        "content": content,
    }
    if message.get("tool_call_id"):
        result["tool_call_id"] = str(message["tool_call_id"])
    calls: list[ToolCall] = []
    for raw in message.get("tool_calls") or []:
        function = raw.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = {}
        calls.append(
            {
                "id": str(raw.get("id", "")),
                "name": str(function.get("name", "")),
                "arguments": arguments if isinstance(arguments, dict) else {},
            }
        )
    if calls:
        result["tool_calls"] = calls
    return result


def _error_json(status: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error", "code": None}}, status=status
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="A local chat-completions server answering with the offline model.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    server = ChatCompletionsServer(host=args.host, port=args.port, api_key=args.api_key).start()
    print(f"chat-completions server on {server.openai_base_url} (Azure endpoint {server.azure_endpoint})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
