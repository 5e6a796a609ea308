"""Activities of the publish, watch and digest workflows: a message to the outbox, a knowledge search.

Both go through the built-in tools of the agents' tool registry (`send_message`, `search_knowledge`), so
a workflow's message is delivered, and a search ranked, exactly as an agent's would be:

- `post_to_outbox` `{"id", "to", "text"}` sends through `send_message` with `id` as its idempotency key,
  so a retried or replayed activity delivers the message once; it returns the tool's receipt
  `{"message_id", "to", "status": "sent"|"already_sent", "transport"}`.
- `search_knowledge_base` `{"query", "top_k"}` returns `{"query", "results": [{id, title, snippet,
  score}]}`. The knowledge base is looked up on every call (`knowledge_from_env` loads it again when
  its folder changes), so a watch sees a document added while it runs.

A tool's refusal (`ToolError`, e.g. an empty text) is raised: the starters validate what they pass, so a
refusal here is a fault, not an answer.
"""

# No `from __future__ import annotations`: the Functions worker reads these functions' annotations.

import logging
import os

import azure.durable_functions as df

import shared_names as names
from agents.knowledge import knowledge_from_env
from agents.tools.builtin import builtin_registry
from agents.tools.context import ToolServices, utc_now
from agents.tools.outbox import Outbox, outbox_from_env
from agents.tools.registry import ToolRegistry

logger = logging.getLogger(__name__)

bp = df.Blueprint()

_outbox: Outbox | None = None


def _registry() -> ToolRegistry:
    """The built-in tools bound to the configured outbox (built once) and the current knowledge base."""
    global _outbox
    if _outbox is None:
        _outbox = outbox_from_env(os.environ)
    return builtin_registry(ToolServices(clock=utc_now, outbox=_outbox, knowledge=knowledge_from_env(os.environ)))


@bp.function_name(names.POST_TO_OUTBOX)
@bp.activity_trigger(input_name="message")
async def post_to_outbox(message: dict) -> dict:
    """Deliver `{"id", "to", "text"}` once per `id`; returns the `send_message` receipt."""
    key = str(message["id"])
    receipt: dict = await _registry().run(
        "send_message", {"to": message["to"], "text": message["text"]}, call_id=key, idempotency_key=key
    )
    logger.info("workflow message %s to %s: %s", key, receipt.get("to"), receipt.get("status"))
    return receipt


@bp.function_name(names.SEARCH_KNOWLEDGE_BASE)
@bp.activity_trigger(input_name="search")
async def search_knowledge_base(search: dict) -> dict:
    """Search the knowledge base: `{"query", "top_k"}` in, `{"query", "results"}` out."""
    arguments = {"query": str(search["query"]), "top_k": int(search.get("top_k") or 3)}
    found: dict = await _registry().run("search_knowledge", arguments, call_id="workflow-search")
    return found
