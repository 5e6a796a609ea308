"""The offline model: a deterministic stand-in for a language model, with no network and no weights.

It is the default when no provider is configured, so that the app's default run, the README's curl session
and the tests do real multi-step work: it reads the conversation, decides which of the offered tools to
call, and words a final answer from the tool results, like a function-calling model would.

How it decides (the text rules are in `agents.models._offline_intents`):

- The user messages after the last assistant message are new. Each is cut into clauses and each clause
  read by the first matching rule (send a message, the time, memory, a calculator follow-up, arithmetic,
  the knowledge base, summaries, small talk). If any clause wants a tool the request offers, the response
  is those tool calls (several calls at once when several clauses want tools: a fan-out).
- Otherwise the response is the final answer for everything since the last final answer: the replies of
  the user's clauses, then one sentence per tool result ("12*(3+4) = 84", the best knowledge document with
  its title and id, "Message sent to Bob.", or what went wrong: a tool error, a rejected call).
- The prompts of the research and review workflows (plan, report, draft, review, revise) are answered by
  the rules of `agents.models._offline_workflows`: a planner's JSON array of subtopics, a reviewer's
  critique that starts with "APPROVED" once the draft covers the brief, and so on.
- Earlier turns count: "my name is Ada" is remembered ("what is my name?" → "Your name is Ada."), and "and
  times 2?" continues from the conversation's last calculator result.

Same request, same response: call ids are derived from the conversation, and usage is counted with the
deterministic estimate of `agents._tokens`. `max_tokens` cuts the answer (finish_reason "length").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from agents._tokens import count_message_tokens, count_tokens
from agents.messages import ChatMessage, ModelRequest, ModelResponse, ToolCall, Usage, assistant_message
from agents.models._offline_intents import (
    Purpose,
    Reply,
    ToolAction,
    draft_without_sources,
    parse_tool_content,
    read_message,
)
from agents.models._offline_workflows import plan_answer


class OfflineModel:
    """A deterministic model; see the module docstring for what it does.

    Args:
        name: The model name its responses report when the request names none.
    """

    def __init__(self, *, name: str = "offline") -> None:
        self.name = name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return self.respond(request)

    async def aclose(self) -> None:
        """Nothing to release."""

    def respond(self, request: ModelRequest) -> ModelResponse:
        """The response to `request` (the synchronous core of `complete`)."""
        conversation = [m for m in request.messages if m.get("role") != "system"]
        offered = set(request.tool_names())
        last_assistant = max((i for i, m in enumerate(conversation) if m.get("role") == "assistant"), default=-1)

        tool_actions: list[ToolAction] = []
        for index in range(last_assistant + 1, len(conversation)):
            message = conversation[index]
            if message.get("role") == "user":
                actions = read_message(message.get("content") or "", conversation[:index], offered)
                tool_actions.extend(a for a in actions if isinstance(a, ToolAction))

        if tool_actions:
            calls: list[ToolCall] = [
                {"id": _call_id(conversation, k, action), "name": action.tool, "arguments": dict(action.arguments)}
                for k, action in enumerate(tool_actions)
            ]
            reply = assistant_message(None, calls)
            finish_reason = "tool_calls"
            completion = sum(count_tokens(c["name"]) + count_tokens(json.dumps(c["arguments"])) for c in calls)
        else:
            text = self._compose(conversation, offered)
            finish_reason = "stop"
            if request.max_tokens is not None and count_tokens(text) > request.max_tokens:
                text = _truncate(text, request.max_tokens)
                finish_reason = "length"
            reply = assistant_message(text)
            completion = count_tokens(text)

        prompt = count_message_tokens(request.messages, request.tools)
        usage: Usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        return ModelResponse(message=reply, usage=usage, finish_reason=finish_reason, model=request.model or self.name)

    def _compose(self, conversation: Sequence[ChatMessage], offered: set[str]) -> str:
        """The final answer for everything since the last final answer."""
        last_final = max(
            (i for i, m in enumerate(conversation) if m.get("role") == "assistant" and not m.get("tool_calls")),
            default=-1,
        )
        calls: dict[str, ToolCall] = {}
        for message in conversation:
            for call in message.get("tool_calls") or []:
                calls[call["id"]] = call
        purposes: dict[tuple[str, str], Purpose] = {}
        pieces: list[str] = []
        for index in range(last_final + 1, len(conversation)):
            message = conversation[index]
            role = message.get("role")
            if role == "user":
                for action in read_message(message.get("content") or "", conversation[:index], offered):
                    if isinstance(action, Reply):
                        pieces.append(action.text)
                    else:
                        purposes[(action.tool, _key(action.arguments))] = action.purpose
            elif role == "tool":
                found = calls.get(message.get("tool_call_id") or "")
                name = found["name"] if found else (message.get("name") or "tool")
                arguments = found["arguments"] if found else {}
                purpose = purposes.get((name, _key(arguments)), "answer")
                pieces.append(answer_from_tool(name, arguments, parse_tool_content(message.get("content")), purpose))
        return "\n".join(p for p in pieces if p) or "How can I help?"


def _key(arguments: Mapping[str, Any]) -> str:
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False)


def _call_id(conversation: Sequence[ChatMessage], index: int, action: ToolAction) -> str:
    """A call id derived from the conversation: the same request always gets the same ids."""
    seed = json.dumps(
        [len(conversation), index, action.tool, action.arguments, [m.get("content") for m in conversation[-3:]]],
        sort_keys=True,
        ensure_ascii=False,
    )
    return "call_" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:20]


def _truncate(text: str, max_tokens: int) -> str:
    words = text.split(" ")
    kept: list[str] = []
    for word in words:
        if count_tokens(" ".join([*kept, word])) > max_tokens:
            break
        kept.append(word)
    return " ".join(kept)


def answer_from_tool(name: str, arguments: Mapping[str, Any], payload: Any, purpose: Purpose = "answer") -> str:
    """One sentence (a draft for `purpose` "write", a plan for "plan") from a tool's result or error."""
    if purpose == "plan" and name == "search_knowledge":
        found = payload.get("result") if isinstance(payload, dict) else None
        hits = found.get("results") or [] if isinstance(found, dict) else []
        return plan_answer(str(arguments.get("query", "")), int(arguments.get("top_k") or 1), hits)
    if isinstance(payload, dict) and payload.get("error") is not None and "result" not in payload:
        error = str(payload["error"]).rstrip(".")
        if payload.get("kind") == "rejected":
            if name == "send_message":
                return f"I did not send the message to {arguments.get('to', 'the recipient')}: {error}."
            return f"I did not run {name}: {error}."
        if name == "calculator" and "expression" in arguments:
            return f"I could not compute {arguments['expression']}: {error}."
        return f"The {name} tool failed: {error}."
    result = payload.get("result") if isinstance(payload, dict) and "result" in payload else payload
    if name == "calculator" and isinstance(result, dict) and "result" in result:
        return f"{result.get('expression', arguments.get('expression', '?'))} = {result['result']}"
    if name == "search_knowledge" and isinstance(result, dict):
        return _search_answer(
            str(result.get("query", arguments.get("query", ""))), result.get("results") or [], purpose
        )
    if name == "get_time" and isinstance(result, dict) and "iso" in result:
        moment = datetime.fromisoformat(str(result["iso"]))
        return f"It is {moment:%H:%M} on {moment:%A} {moment.day} {moment:%B %Y} ({result.get('timezone', 'UTC')})."
    if name == "send_message" and isinstance(result, dict):
        to = result.get("to", arguments.get("to", "the recipient"))
        if result.get("status") == "already_sent":
            return f"The message to {to} had already been sent; it was not sent again."
        return f"Message sent to {to}."
    return f"{name} returned {json.dumps(result, ensure_ascii=False)}."


def _search_answer(query: str, hits: list[Any], purpose: Purpose) -> str:
    valid = [h for h in hits if isinstance(h, dict) and h.get("id")]
    if purpose == "write":
        if not valid:
            return draft_without_sources(query, "note")
        title = query[:1].upper() + query[1:]
        body = " ".join(str(h.get("snippet", "")) for h in valid[:3])
        sources = ", ".join(f"[{h['id']}]" for h in valid[:3])
        return f"{title}\n\n{body}\n\nSources: {sources}"
    if not valid:
        return f'The knowledge base has nothing on "{query}".'
    top = valid[0]
    answer = f"According to the knowledge base ({top.get('title', top['id'])} [{top['id']}]): {top.get('snippet', '')}"
    if len(valid) > 1:
        answer += " See also: " + "; ".join(f"{h.get('title', h['id'])} [{h['id']}]" for h in valid[1:]) + "."
    return answer
