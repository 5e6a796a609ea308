"""Activities of an agent run: one model call, one tool call. All the I/O of a run happens here.

Both raise on failure, never return error strings: a ``ModelCallError`` says in its message (in a
marker the orchestrator reads back, see ``orchestrators.run_contract``) whether retrying can help.
A tool's own refusal or a bad argument is not a failure of the step: it goes back to the model as
an error result. The model client is built once per process from the app settings; the tools come
from ``activities._tools``.
"""

# No `from __future__ import annotations`: the Functions worker reads these functions' annotations.

import logging
import os
from typing import Any

import azure.durable_functions as df

import shared_names as names
from activities._tools import tool_registry
from agents.catalogue import get_agent
from agents.errors import ModelCallError
from agents.messages import ModelResponse
from agents.models.base import ModelClient
from agents.models.factory import model_client_from_env
from agents.steps import apply_tool_call, build_model_request, idempotency_key
from orchestrators.run_contract import failure_text

logger = logging.getLogger(__name__)

bp = df.Blueprint()

_model: ModelClient | None = None


class StepError(Exception):
    """A step failed; the message carries the retry decision for the orchestrator."""


def model_client() -> ModelClient:
    global _model
    if _model is None:
        _model = model_client_from_env(os.environ)
    return _model


@bp.function_name(names.CALL_MODEL)
@bp.activity_trigger(input_name="step")
async def call_model(step: dict) -> dict:
    """One model call: ``{"run_id", "agent", "messages", "turn"}`` in, a ModelResponse as JSON out."""
    spec = get_agent(str(step["agent"]))
    request = build_model_request(spec, step["messages"], tool_registry())
    logger.debug("run %s turn %s: model call with %d messages", step.get("run_id"), step.get("turn"),
                 len(request.messages))
    try:
        response: ModelResponse = await model_client().complete(request)
    except ModelCallError as exc:
        raise StepError(failure_text(str(exc), retryable=exc.retryable, retry_after_s=exc.retry_after)) from exc
    return response.to_dict()


@bp.function_name(names.RUN_TOOL)
@bp.activity_trigger(input_name="step")
async def run_tool(step: dict) -> dict:
    """One tool call: ``{"run_id", "agent", "call"}`` in, a ToolOutcome as JSON out.

    The side effect of a call is keyed by run and call id, so a retried or replayed activity does it once.
    """
    spec = get_agent(str(step["agent"]))
    call: Any = step["call"]
    outcome = await apply_tool_call(spec, tool_registry(), call,
                                    idempotency_key=idempotency_key(str(step["run_id"]), call["id"]))
    return outcome.to_dict()
