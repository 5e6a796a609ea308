"""The tools that ship with the app: `calculator`, `search_knowledge`, `get_time` and `send_message`.

Each is a plain function with a typed signature (its schema comes from it) that takes its services from
the `ToolContext` the registry passes; none reaches for a global client or the system clock, so
`ToolRegistry(BUILTIN_TOOLS)` does no I/O and can be built anywhere (the run orchestration builds one for
schemas and validation), and `builtin_registry(services)` runs them against real services.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agents.errors import ToolError
from agents.knowledge import knowledge_from_env
from agents.tools.calculator import evaluate
from agents.tools.context import Clock, ToolContext, ToolServices, utc_now
from agents.tools.outbox import OutboxMessage, outbox_from_env
from agents.tools.registry import Tool, ToolRegistry, tool

MAX_MESSAGE_CHARS = 4000
MAX_TOP_K = 10


@tool
def calculator(expression: str) -> dict[str, Any]:
    """Evaluate an arithmetic expression exactly, e.g. "12*(3+4)" or "sqrt(2)^2".

    Args:
        expression: Numbers, + - * / // % ** (^ also means power), parentheses, pi, e and the functions
            sqrt, abs, round, min, max, floor, ceil, log.
    """
    return {"expression": expression, "result": evaluate(expression)}


@tool
def search_knowledge(query: str, top_k: int = 3, *, context: ToolContext) -> dict[str, Any]:
    """Search the team's knowledge base (Durable Functions patterns, retries, approvals, budgets, this app's agents).

    Args:
        query: What to look for, in a few words.
        top_k: How many documents to return, 1 to 10.
    """
    if not 1 <= top_k <= MAX_TOP_K:
        raise ToolError(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}")
    if not query.strip():
        raise ToolError("the query is empty; say what to look for")
    knowledge = context.services.knowledge
    if knowledge is None:
        raise ToolError("no knowledge base is configured for this app")
    return {"query": query, "results": [dict(hit) for hit in knowledge.search(query, top_k)]}


@tool
def get_time(timezone: str = "UTC", *, context: ToolContext) -> dict[str, Any]:
    """Tell the current date and time.

    Args:
        timezone: An IANA time zone name such as "UTC", "Europe/Paris" or "America/New_York".
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown time zone {timezone!r}; use an IANA name such as 'UTC' or 'Europe/Paris'") from None
    now = context.now().astimezone(zone)
    return {"timezone": timezone, "iso": now.isoformat(timespec="seconds"), "weekday": now.strftime("%A")}


@tool(requires_approval=True)
async def send_message(to: str, text: str, *, context: ToolContext) -> dict[str, Any]:
    """Send a message to a person or channel. A human approves each message before it is sent.

    Args:
        to: The recipient: a name, an address or a channel.
        text: The message to send.
    """
    if not to.strip():
        raise ToolError("the recipient ('to') is empty")
    if not text.strip():
        raise ToolError("the message text is empty")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ToolError(f"the message is {len(text)} characters long; the limit is {MAX_MESSAGE_CHARS}")
    outbox = context.services.outbox
    if outbox is None:
        raise ToolError("no outbox is configured for this app, so messages cannot be sent")
    message = OutboxMessage(
        id=context.idempotency_key, to=to.strip(), text=text, created_at=context.now().isoformat(timespec="seconds")
    )
    receipt = await outbox.send(message)
    return {
        "message_id": receipt["message_id"],
        "to": receipt["to"],
        "status": "already_sent" if receipt["duplicate"] else "sent",
        "transport": receipt["transport"],
    }


BUILTIN_TOOLS: tuple[Tool, ...] = (calculator, search_knowledge, get_time, send_message)


def services_from_env(
    env: Mapping[str, str] | None = None, *, clock: Clock = utc_now, cwd: str | os.PathLike[str] | None = None
) -> ToolServices:
    """The services the settings select: the outbox of `outbox_from_env`, the knowledge of `knowledge_from_env`."""
    settings = os.environ if env is None else env
    return ToolServices(clock=clock, outbox=outbox_from_env(settings, cwd=cwd), knowledge=knowledge_from_env(settings))


def builtin_registry(services: ToolServices | None = None) -> ToolRegistry:
    """A registry of the built-in tools bound to `services` (schemas and validation only when None)."""
    return ToolRegistry(BUILTIN_TOOLS, services=services)
