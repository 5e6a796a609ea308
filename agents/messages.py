"""The shapes that travel between the run loop, the model clients and the tools.

Chat messages, tool calls and usage really are JSON (they go to model providers and into durable
history as they are), so they are TypedDicts. A model request and a model response cross the activity
boundary of the run orchestration, so they are dataclasses with `to_dict`/`from_dict`: the round trip is
exact, unknown keys are ignored and missing keys take the field's default, which lets a field with a
default be added while older payloads are still in flight.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from typing_extensions import NotRequired, TypedDict

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(TypedDict):
    """A tool call requested by the model.

    `arguments` is the decoded JSON object. When a provider's arguments were not a JSON object,
    `arguments` is empty, `raw_arguments` keeps the text as received and `parse_error` says what was
    wrong; the tool step then answers the model with that error instead of running the tool.
    """

    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: NotRequired[str]
    parse_error: NotRequired[str]


class ChatMessage(TypedDict):
    """One message of a conversation, in the chat-completions sense."""

    role: Role
    content: str | None
    tool_calls: NotRequired[list[ToolCall]]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]


class Usage(TypedDict):
    """Token counts of one model call, or a sum of them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def zero_usage() -> Usage:
    """Usage of nothing: the start of a sum."""
    return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def add_usage(total: Usage, more: Mapping[str, Any]) -> Usage:
    """`total` plus `more`; keys missing from `more` count as zero."""
    more_prompt = int(more.get("prompt_tokens", 0) or 0)
    more_completion = int(more.get("completion_tokens", 0) or 0)
    more_total = int(more.get("total_tokens", 0) or 0) or more_prompt + more_completion
    return {
        "prompt_tokens": total["prompt_tokens"] + more_prompt,
        "completion_tokens": total["completion_tokens"] + more_completion,
        "total_tokens": total["total_tokens"] + more_total,
    }


def system_message(content: str) -> ChatMessage:
    return {"role": "system", "content": content}


def user_message(content: str) -> ChatMessage:
    return {"role": "user", "content": content}


def assistant_message(content: str | None, tool_calls: list[ToolCall] | None = None) -> ChatMessage:
    message: ChatMessage = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def tool_result_message(call_id: str, name: str, content: str) -> ChatMessage:
    return {"role": "tool", "content": content, "tool_call_id": call_id, "name": name}


_D = TypeVar("_D")


def _from_mapping(cls: type[_D], data: Mapping[str, Any]) -> _D:
    """Build dataclass `cls` from the keys of `data` it knows; missing keys take their defaults."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{cls.__name__}.from_dict expects a JSON object, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: copy.deepcopy(value) for key, value in data.items() if key in known})


@dataclass
class ModelRequest:
    """What the run asks a model for: a conversation, the tools it may call and sampling settings.

    Attributes:
        messages: The conversation, system message first when there is one.
        tools: Tool definitions in the chat-completions function-tool format
            (`{"type": "function", "function": {"name", "description", "parameters"}}`).
        model: A provider-agnostic model name; None (or "") means the client's configured model
            (OPENAI_MODEL, the Azure deployment, or the offline model).
        temperature: Sampling temperature, None for the provider's default.
        max_tokens: Upper bound of completion tokens, None for the provider's default.
    """

    messages: list[ChatMessage]
    tools: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": copy.deepcopy(self.messages),
            "tools": copy.deepcopy(self.tools),
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelRequest:
        return _from_mapping(cls, data)

    def tool_names(self) -> list[str]:
        """Names of the tools this request offers, in order."""
        names: list[str] = []
        for tool in self.tools:
            function = tool.get("function")
            if isinstance(function, Mapping) and isinstance(function.get("name"), str):
                names.append(function["name"])
        return names


@dataclass
class ModelResponse:
    """A model's answer: one assistant message (text, tool calls or both), its usage and why it stopped.

    Attributes:
        message: The assistant message; `tool_calls` present when the model wants tools run.
        usage: Tokens of this call.
        finish_reason: The provider's reason ("stop", "tool_calls", "length", "content_filter", ...).
        model: The model that answered, as the provider names it.
    """

    message: ChatMessage
    usage: Usage = field(default_factory=zero_usage)
    finish_reason: str = "stop"
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": copy.deepcopy(self.message),
            "usage": dict(self.usage),
            "finish_reason": self.finish_reason,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelResponse:
        return _from_mapping(cls, data)

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls the model asked for; empty for a final answer."""
        return list(self.message.get("tool_calls") or [])

    @property
    def text(self) -> str:
        """The message text, "" when the model gave none."""
        return self.message.get("content") or ""
