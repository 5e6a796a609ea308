"""The built-in tools as the activities use them, bound to the services the app settings select.

The outbox is built once per process (it may hold storage clients); the knowledge base is looked up
on every call, which costs a folder scan when nothing changed and loads it again when a document was
added, removed or edited, so agents and workflows see the knowledge base as it is now.
"""

from __future__ import annotations

import os

from agents.knowledge import knowledge_from_env
from agents.tools.builtin import builtin_registry
from agents.tools.context import ToolServices, utc_now
from agents.tools.outbox import Outbox, outbox_from_env
from agents.tools.registry import ToolRegistry

_outbox: Outbox | None = None


def tool_registry() -> ToolRegistry:
    """The built-in tools bound to the configured outbox and the current knowledge base."""
    global _outbox
    if _outbox is None:
        _outbox = outbox_from_env(os.environ)
    return builtin_registry(ToolServices(clock=utc_now, outbox=_outbox, knowledge=knowledge_from_env(os.environ)))
