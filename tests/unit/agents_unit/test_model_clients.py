"""The OpenAI-compatible and Azure OpenAI clients against a local chat-completions server.

Each test checks what went over the wire (the server records every request) and what came back: tool calls
parsed, usage counted, errors classified, and never a retry inside the client.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, TypeVar

import pytest
from azure.core.credentials import AccessToken

from agents.errors import ModelCallError, ModelConfigError
from agents.messages import ChatMessage, ModelRequest, ModelResponse
from agents.models._chat_completions import retry_after_seconds
from agents.models.azure_openai import AzureOpenAIModel
from agents.models.base import ModelClient
from agents.models.factory import model_client_from_env
from agents.models.offline import OfflineModel
from agents.models.openai_compatible import OpenAICompatibleModel
from agents.tools.builtin import builtin_registry
from tests.support.chat_completions_server import (
    ChatCompletionsServer,
    ScriptedResponse,
    completion_body,
    error_response,
    rate_limited,
    text_response,
    tool_call_response,
)

T = TypeVar("T")
TOOLS = builtin_registry().schemas(["calculator", "send_message"])
REQUEST = ModelRequest(
    messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "what is 12*(3+4)?"}],
    tools=TOOLS,
    temperature=0.1,
    max_tokens=64,
)


def openai_client(server: ChatCompletionsServer, **kwargs: Any) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(model="test-model", base_url=server.openai_base_url, api_key="test-key", **kwargs)


def azure_client(server: ChatCompletionsServer, **kwargs: Any) -> AzureOpenAIModel:
    return AzureOpenAIModel(
        endpoint=server.azure_endpoint, deployment="gpt-dep", api_version="2024-10-21", api_key="test-key", **kwargs
    )


def using(client: ModelClient, use: Callable[[ModelClient], Awaitable[T]]) -> T:
    async def go() -> T:
        try:
            return await use(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def complete(client: ModelClient, request: ModelRequest = REQUEST) -> ModelResponse:
    return using(client, lambda c: c.complete(request))


def failure(client: ModelClient, request: ModelRequest = REQUEST) -> ModelCallError:
    with pytest.raises(ModelCallError) as caught:
        complete(client, request)
    return caught.value


CLIENTS = {"openai": openai_client, "azure_openai": azure_client}


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_tool_call_is_parsed_and_usage_counted(chat_server: ChatCompletionsServer, kind: str) -> None:
    chat_server.script(
        tool_call_response(
            "calculator",
            {"expression": "12*(3+4)"},
            call_id="call_abc",
            usage={"prompt_tokens": 31, "completion_tokens": 9},
        )
    )
    response = complete(CLIENTS[kind](chat_server))
    assert response.message == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_abc", "name": "calculator", "arguments": {"expression": "12*(3+4)"}}],
    }
    assert response.usage == {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40}
    assert (response.finish_reason, response.model) == ("tool_calls", "test-model")
    assert len(chat_server.requests) == 1


# The loop of the first call closes without `aclose`, as a host's per-call loop would: its idle connection
# is left to the garbage collector, which warns about the socket.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("kind", CLIENTS)
def test_one_client_serves_several_event_loops(chat_server: ChatCompletionsServer, kind: str) -> None:
    # An app keeps one client per process; a host may run activities on a new event loop each time.
    chat_server.script(text_response("one"), text_response("two"))
    client = CLIENTS[kind](chat_server)
    first = asyncio.run(client.complete(REQUEST)).text
    second = using(client, lambda c: c.complete(REQUEST)).text
    assert [first, second] == ["one", "two"]
    assert len(chat_server.requests) == 2
    gc.collect()  # the dropped connection's warning belongs to this test, not to whichever runs next


def test_the_openai_request_on_the_wire(chat_server: ChatCompletionsServer) -> None:
    chat_server.script(text_response("84"))
    conversation: list[ChatMessage] = [
        {"role": "user", "content": "what is 12*(3+4)?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "name": "calculator", "arguments": {"expression": "12*(3+4)"}}],
        },
        {"role": "tool", "content": '{"result": 84}', "tool_call_id": "c1", "name": "calculator"},
    ]
    response = complete(openai_client(chat_server), ModelRequest(messages=conversation, tools=TOOLS, model="other"))
    assert response.text == "84" and response.finish_reason == "stop"
    (sent,) = chat_server.requests
    assert (sent.path, sent.headers["Authorization"]) == ("/v1/chat/completions", "Bearer test-key")
    assert sent.body["model"] == "other"
    assert sent.body["tools"] == TOOLS
    assert "temperature" not in sent.body and "max_tokens" not in sent.body
    assert sent.body["messages"] == [
        {"role": "user", "content": "what is 12*(3+4)?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "calculator", "arguments": '{"expression": "12*(3+4)"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"result": 84}'},
    ]


def test_the_azure_request_on_the_wire(chat_server: ChatCompletionsServer) -> None:
    chat_server.script(text_response("hi"))
    complete(azure_client(chat_server))
    (sent,) = chat_server.requests
    assert sent.path == "/openai/deployments/gpt-dep/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == "test-key"
    assert (sent.body["model"], sent.body["temperature"], sent.body["max_tokens"]) == ("gpt-dep", 0.1, 64)


class StaticCredential:
    """An async token credential handing out a fixed token (azure-identity's interface, no network)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("entra-token", int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


def test_azure_without_a_key_sends_an_entra_id_bearer_token() -> None:
    with ChatCompletionsServer(fallback="error", api_key="entra-token") as server:
        server.script(text_response("hi"))
        credential = StaticCredential()
        client = AzureOpenAIModel(endpoint=server.azure_endpoint, deployment="gpt-dep", credential=credential)
        assert client.uses_entra_id
        assert complete(client).text == "hi"
        assert server.requests[0].headers["Authorization"] == "Bearer entra-token"
        assert "api-key" not in server.requests[0].headers
        assert credential.scopes == [("https://cognitiveservices.azure.com/.default",)]


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_429_is_retryable_with_retry_after_and_the_client_does_not_retry(
    chat_server: ChatCompletionsServer, kind: str
) -> None:
    chat_server.script(rate_limited(retry_after="7"), text_response("later"))
    client = CLIENTS[kind](chat_server)

    async def twice(c: ModelClient) -> tuple[ModelCallError, ModelResponse]:
        try:
            await c.complete(REQUEST)
        except ModelCallError as exc:
            first = exc
        else:
            raise AssertionError("the 429 did not raise")
        assert len(chat_server.requests) == 1  # the SDK did not retry on its own
        return first, await c.complete(REQUEST)  # the caller's retry succeeds

    error, response = using(client, twice)
    assert (error.retryable, error.status_code, error.retry_after) == (True, 429, 7.0)
    assert "Rate limit reached" in str(error)
    assert response.text == "later"
    assert len(chat_server.requests) == 2


def test_retry_after_ms_wins_over_retry_after(chat_server: ChatCompletionsServer) -> None:
    chat_server.script(rate_limited(retry_after="7", retry_after_ms="1500"))
    assert failure(openai_client(chat_server)).retry_after == 1.5


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
        (408, True),
        (409, True),
        (500, True),
        (503, True),
    ],
)
def test_status_codes_are_classified_and_never_retried_by_the_client(
    chat_server: ChatCompletionsServer, status: int, retryable: bool
) -> None:
    chat_server.script(error_response(status, f"status {status} here"))
    error = failure(openai_client(chat_server))
    assert (error.status_code, error.retryable, error.retry_after) == (status, retryable, None)
    assert str(error) == f"openai model call failed with HTTP {status}: status {status} here"
    assert len(chat_server.requests) == 1


def test_a_wrong_key_is_a_non_retryable_401(chat_server: ChatCompletionsServer) -> None:
    client = OpenAICompatibleModel(model="m", base_url=chat_server.openai_base_url, api_key="wrong")
    error = failure(client)
    assert (error.status_code, error.retryable) == (401, False)


def test_a_timeout_is_retryable(chat_server: ChatCompletionsServer) -> None:
    chat_server.script(ScriptedResponse(body=completion_body(content="late"), delay_s=2.0))
    error = failure(openai_client(chat_server, timeout=0.2))
    assert (error.retryable, error.status_code) == (True, None)
    assert "timed out" in str(error)
    assert len(chat_server.requests) == 1


def test_a_refused_connection_is_retryable() -> None:
    with ChatCompletionsServer() as server:
        base_url = server.openai_base_url
    error = failure(OpenAICompatibleModel(model="m", base_url=base_url, timeout=2))
    assert (error.retryable, error.status_code) == (True, None)
    assert "could not connect" in str(error)


def test_tool_arguments_that_are_not_a_json_object_are_kept_with_an_error(chat_server: ChatCompletionsServer) -> None:
    chat_server.script(
        tool_call_response("calculator", '{"expression": "1+', call_id="c1"),
        tool_call_response("calculator", "[1, 2]", call_id="c2"),
    )

    async def both(c: ModelClient) -> list[ModelResponse]:
        return [await c.complete(REQUEST), await c.complete(REQUEST)]

    broken, listed = using(openai_client(chat_server), both)
    (call,) = broken.tool_calls
    assert (call["arguments"], call["raw_arguments"]) == ({}, '{"expression": "1+')
    assert call["parse_error"].startswith("invalid JSON")
    assert listed.tool_calls[0]["parse_error"] == "expected a JSON object, got list"


def test_missing_usage_is_estimated(chat_server: ChatCompletionsServer) -> None:
    chat_server.script(ScriptedResponse(body=completion_body(content="four words right here")))
    usage = complete(openai_client(chat_server)).usage
    assert usage["completion_tokens"] == 4 and usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + 4


def test_the_server_answers_like_the_offline_model_when_nothing_is_scripted() -> None:
    with ChatCompletionsServer() as server:
        response = complete(openai_client(server))
    expected = OfflineModel().respond(REQUEST)
    assert response.tool_calls == expected.tool_calls
    assert response.usage == expected.usage


def test_retry_after_parsing() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"Retry-After": format_datetime(now + timedelta(seconds=30), usegmt=True)}, now) == 30.0
    assert retry_after_seconds({"Retry-After": format_datetime(now - timedelta(seconds=30), usegmt=True)}, now) == 0.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_factory_defaults_to_the_offline_model() -> None:
    assert isinstance(model_client_from_env({}), OfflineModel)
    assert isinstance(model_client_from_env({"AGENT_MODEL_PROVIDER": "Offline"}), OfflineModel)
    assert isinstance(model_client_from_env({"OPENAI_API_KEY": "sk-x"}), OfflineModel)  # no provider: no guessing


def test_factory_builds_the_configured_clients() -> None:
    openai_model = model_client_from_env(
        {"AGENT_MODEL_PROVIDER": "openai", "OPENAI_MODEL": "llama3.1", "OPENAI_BASE_URL": "http://localhost:11434/v1"}
    )
    assert isinstance(openai_model, OpenAICompatibleModel)
    assert (openai_model.default_model, openai_model.base_url) == ("llama3.1", "http://localhost:11434/v1")
    azure = model_client_from_env(
        {
            "AGENT_MODEL_PROVIDER": "azure_openai",
            "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com",
            "AZURE_OPENAI_DEPLOYMENT": "gpt",
            "AZURE_OPENAI_API_KEY": "k",
        }
    )
    assert isinstance(azure, AzureOpenAIModel) and azure.default_model == "gpt" and not azure.uses_entra_id
    for client in (openai_model, azure):
        asyncio.run(client.aclose())


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"AGENT_MODEL_PROVIDER": "gemini"}, "AGENT_MODEL_PROVIDER"),
        ({"AGENT_MODEL_PROVIDER": "openai"}, "OPENAI_MODEL"),
        ({"AGENT_MODEL_PROVIDER": "openai", "OPENAI_MODEL": "gpt-4o-mini"}, "OPENAI_API_KEY"),
        (
            {"AGENT_MODEL_PROVIDER": "openai", "OPENAI_MODEL": "m", "OPENAI_BASE_URL": "localhost:11434"},
            "OPENAI_BASE_URL",
        ),
        ({"AGENT_MODEL_PROVIDER": "azure_openai", "AZURE_OPENAI_DEPLOYMENT": "d"}, "AZURE_OPENAI_ENDPOINT"),
        (
            {"AGENT_MODEL_PROVIDER": "azure_openai", "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com"},
            "AZURE_OPENAI_DEPLOYMENT",
        ),
        (
            {
                "AGENT_MODEL_PROVIDER": "openai",
                "OPENAI_MODEL": "m",
                "OPENAI_API_KEY": "k",
                "AGENT_MODEL_TIMEOUT_S": "soon",
            },
            "AGENT_MODEL_TIMEOUT_S",
        ),
    ],
)
def test_factory_names_the_missing_or_malformed_setting(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ModelConfigError) as caught:
        model_client_from_env(env)
    assert caught.value.setting == setting
    assert setting in str(caught.value)
