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

import azure.durable_functions as df

import shared_names as names
from activities._tools import tool_registry

logger = logging.getLogger(__name__)

bp = df.Blueprint()

@bp.function_name(names.POST_TO_OUTBOX)
@bp.activity_trigger(input_name="message")
async def post_to_outbox(message: dict) -> dict:
    """Deliver `{"id", "to", "text"}` once per `id`; returns the `send_message` receipt."""
    key = str(message["id"])
    receipt: dict = await tool_registry().run(
        "send_message", {"to": message["to"], "text": message["text"]}, call_id=key, idempotency_key=key
    )
    logger.info("workflow message %s to %s: %s", key, receipt.get("to"), receipt.get("status"))
    return receipt


@bp.function_name(names.SEARCH_KNOWLEDGE_BASE)
@bp.activity_trigger(input_name="search")
async def search_knowledge_base(search: dict) -> dict:
    """Search the knowledge base: `{"query", "top_k"}` in, `{"query", "results"}` out."""
    arguments = {"query": str(search["query"]), "top_k": int(search.get("top_k") or 3)}
    found: dict = await tool_registry().run("search_knowledge", arguments, call_id="workflow-search")
    return found
