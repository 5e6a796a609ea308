"""The `document_digest` orchestration: split a text, score its sentences, compose a digest.

A chain of three activities (see activities/text.py). The orchestration records which step it is on
in its custom status, so a client polling the status endpoint can follow it. Like every orchestrator
it is deterministic: all it does is schedule activities and pass their results along.
"""

# No `from __future__ import annotations` here: the Functions worker reads the annotations of the
# functions below when it indexes the app, so they must be real objects, not strings.

import logging
from collections.abc import Generator
from dataclasses import asdict, dataclass
from typing import Any

import azure.durable_functions as df

import shared_names as names
from activities.text import ComposeInput, Digest
from orchestrators.context import OrchestrationContext

logger = logging.getLogger(__name__)

bp = df.Blueprint()

DEFAULT_MAX_SENTENCES = 3


@dataclass
class DigestRequest:
    """Input of the `document_digest` orchestration, validated by its HTTP starter."""

    text: str
    max_sentences: int = DEFAULT_MAX_SENTENCES

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DigestRequest":
        return cls(text=str(data["text"]), max_sentences=int(data.get("max_sentences", DEFAULT_MAX_SENTENCES)))


def run_document_digest(context: OrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """The orchestration's logic, written against the typed context so unit tests can drive it.

    Returns:
        The digest as plain JSON (`summary`, `sentence_count`, `keywords`), which is what the status
        endpoint shows as the output.
    """
    request = DigestRequest.from_json(context.get_input(expected_type=dict))

    context.set_custom_status({"step": "splitting"})
    sentences: list[str] = yield context.call_activity(names.SPLIT_SENTENCES, request.text, expected_type=list)
    if not context.is_replaying:
        logger.info("document_digest %s: %d sentences", context.instance_id, len(sentences))

    context.set_custom_status({"step": "scoring"})
    scores: list[float] = yield context.call_activity(names.SCORE_SENTENCES, sentences, expected_type=list)

    context.set_custom_status({"step": "composing"})
    compose = ComposeInput(sentences=sentences, scores=scores, max_sentences=request.max_sentences)
    digest: Digest = yield context.call_activity(names.COMPOSE_DIGEST, compose.to_json(), expected_type=Digest)

    context.set_custom_status({"step": "done"})
    return digest.to_json()


@bp.function_name(names.DOCUMENT_DIGEST)
@bp.orchestration_trigger(context_name="context")
def document_digest(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Orchestrator function registered as `document_digest`."""
    return (yield from run_document_digest(context))
