"""HTTP starter of the document digest: `POST /api/documents/digest`.

Body: `{"text": str, "max_sentences"?: int}` (1..20, default 3; text at most 100,000 characters).
Answers 202 with the Durable management URLs; with `?wait=SECONDS` (0 < SECONDS <= 60) it waits up to
that long and answers 200 with the digest when the orchestration finishes in time. Bad input gets a
400 `{"error": {"code", "message"}}` and starts nothing.
"""

# No `from __future__ import annotations` here: the Functions worker reads the annotations of the
# functions below when it indexes the app, so they must be real objects, not strings.

import logging
import math

import azure.durable_functions as df
import azure.functions as func

import shared_names as names
from orchestrators.document_digest import DEFAULT_MAX_SENTENCES, DigestRequest
from starters._http import BadRequestError, bad_request
from starters._validation import json_object

logger = logging.getLogger(__name__)

bp = df.Blueprint()

MAX_TEXT_CHARS = 100_000
MAX_SENTENCES_LIMIT = 20
MAX_WAIT_SECONDS = 60.0
# How often the SDK's client polls the instance while a `?wait=` request is held open.
WAIT_POLL_MS = 100


def parse_digest_request(body: bytes) -> DigestRequest:
    """Validate the JSON body of a digest request.

    Raises:
        BadRequestError: the body is not a JSON object or a field is missing, mistyped or out of range.
    """
    data = json_object(body)

    text = data.get("text")
    if text is None:
        raise BadRequestError("missing_text", "Field 'text' is required.")
    if not isinstance(text, str):
        raise BadRequestError("invalid_text", "Field 'text' must be a string.")
    if not text.strip():
        raise BadRequestError("missing_text", "Field 'text' must not be empty.")
    if len(text) > MAX_TEXT_CHARS:
        raise BadRequestError("text_too_long", f"Field 'text' must be at most {MAX_TEXT_CHARS} characters.")

    max_sentences = data.get("max_sentences", DEFAULT_MAX_SENTENCES)
    # bool is an int in Python; `true` is not a sentence count.
    if (
        isinstance(max_sentences, bool)
        or not isinstance(max_sentences, int)
        or not 1 <= max_sentences <= MAX_SENTENCES_LIMIT
    ):
        raise BadRequestError(
            "invalid_max_sentences", f"Field 'max_sentences' must be an integer from 1 to {MAX_SENTENCES_LIMIT}."
        )
    return DigestRequest(text=text, max_sentences=max_sentences)


def parse_wait(value: str | None) -> float | None:
    """The `wait` query parameter in seconds, or None when absent.

    Raises:
        BadRequestError: the value is not a number in (0, 60].
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_WAIT_SECONDS:  # also rejects nan
        raise BadRequestError(
            "invalid_wait", f"Query parameter 'wait' must be a number of seconds in (0, {MAX_WAIT_SECONDS:g}]."
        )
    return seconds


@bp.route(route="documents/digest", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_document_digest(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start a `document_digest` orchestration for the posted text."""
    try:
        request = parse_digest_request(req.get_body())
        wait = parse_wait(req.params.get("wait"))
    except BadRequestError as err:
        return bad_request(err)

    instance_id = await client.start_new(names.DOCUMENT_DIGEST, client_input=request.to_json())
    logger.info("Started %s instance %s (%d characters)", names.DOCUMENT_DIGEST, instance_id, len(request.text))
    response: func.HttpResponse
    if wait is None:
        response = client.create_check_status_response(req, instance_id)
    else:
        timeout_ms = max(1, int(wait * 1000))
        response = await client.wait_for_completion_or_create_check_status_response(
            req,
            instance_id,
            timeout_in_milliseconds=timeout_ms,
            retry_interval_in_milliseconds=min(WAIT_POLL_MS, timeout_ms),
        )
    return response
