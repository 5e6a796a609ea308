"""Tools: the registry, the built-in tools and the outboxes `send_message` delivers to."""

from __future__ import annotations

from agents.tools.builtin import BUILTIN_TOOLS, builtin_registry, services_from_env
from agents.tools.context import Clock, ToolContext, ToolServices, utc_now
from agents.tools.outbox import LocalOutbox, Outbox, OutboxMessage, OutboxReceipt, QueueOutbox, outbox_from_env
from agents.tools.registry import Tool, ToolRegistry, tool

__all__ = [
    "BUILTIN_TOOLS",
    "Clock",
    "LocalOutbox",
    "Outbox",
    "OutboxMessage",
    "OutboxReceipt",
    "QueueOutbox",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "ToolServices",
    "builtin_registry",
    "outbox_from_env",
    "services_from_env",
    "tool",
    "utc_now",
]
