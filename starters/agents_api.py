"""HTTP routes of the agent catalogue: list the agents, start a run of one, and the app's health.

- `GET /api/agents`: `{"agents": [AgentSpec.to_public_dict(), ...]}`.
- `POST /api/agents/{agent}/runs`: starts an `agent_run` orchestration. Body `{"input": str,
  "session_id"?: str, "instance_id"?: str, "tags"?: {str: str}, "max_turns"?: int, "approval_timeout_s"?:
  number, "retry"?: preset}`. Answers 202 with the run JSON and its links; with `?wait=SECONDS`
  (0 < SECONDS <= 60) it answers 200 with the run JSON when the run finishes in time.
- `GET /api/health`: `{"status": "ok", "model_provider", "agents"}`; no setting values, no secrets.

A run started here with a `session_id` is labelled with it (for listing and filtering); it does not
read or extend the session's conversation, which is what `POST /api/sessions/{id}/messages` does.
"""

# No `from __future__ import annotations` here: the Functions worker reads the annotations of the
# functions below when it indexes the app, so they must be real objects, not strings.

import json
import logging
import os
import uuid
from collections.abc import Mapping

import azure.durable_functions as df
import azure.functions as func

import shared_names as names
from agents.catalogue import get_agent, list_agents
from agents.errors import ModelConfigError, UnknownAgentError
from agents.models.factory import model_client_from_env
from orchestrators.retry_policy import PRESETS
from orchestrators.run_contract import DEFAULT_APPROVAL_TIMEOUT_S, RunRequest
from starters import _validation as v
from starters._http import BadRequestError, bad_request, error_response
from starters.run_views import TERMINAL_RUNTIME_STATUSES
from starters.runs_api import fetch_run_status, run_response, wait_for_run

logger = logging.getLogger(__name__)

bp = df.Blueprint()

MAX_INPUT_CHARS = 20_000
MAX_TAGS = 20
MAX_TURNS_LIMIT = 50
MIN_APPROVAL_TIMEOUT_S = 1.0
MAX_APPROVAL_TIMEOUT_S = 7 * 24 * 3600.0
MAX_WAIT_SECONDS = 60.0
RUN_FIELDS = ("input", "session_id", "instance_id", "tags", "max_turns", "approval_timeout_s", "retry")


def parse_run_request(agent: str, body: bytes) -> tuple[RunRequest, str | None]:
    """The run a `POST /api/agents/{agent}/runs` body asks for, and the instance id it chose (if any).

    Raises:
        BadRequestError: the body is not a JSON object, has an unknown field, or a field is missing,
            mistyped or out of range.
    """
    data = v.json_object(body)
    v.reject_unknown(data, RUN_FIELDS)
    text = v.required_text(data, "input", max_chars=MAX_INPUT_CHARS)
    session_id = v.optional_identifier(data, "session_id")
    instance_id = v.optional_identifier(data, "instance_id")
    tags = v.optional_tags(data, "tags", max_tags=MAX_TAGS)
    max_turns = v.optional_int(data, "max_turns", low=1, high=MAX_TURNS_LIMIT)
    timeout = v.optional_number(data, "approval_timeout_s", low=MIN_APPROVAL_TIMEOUT_S, high=MAX_APPROVAL_TIMEOUT_S)
    retry = v.optional_choice(data, "retry", tuple(PRESETS))
    request = RunRequest(
        agent=agent,
        input=text,
        session_id=session_id,
        tags=tags,
        max_turns=max_turns,
        approval_timeout_s=DEFAULT_APPROVAL_TIMEOUT_S if timeout is None else timeout,
        retry=retry,
    )
    return request, instance_id


def model_provider(env: Mapping[str, str]) -> str:
    """The configured provider name, spelt as `agents.models.factory` reads it."""
    return (env.get("AGENT_MODEL_PROVIDER") or "").strip().lower().replace("-", "_") or "offline"


@bp.route(route="agents", methods=["GET"])
def get_agents(req: func.HttpRequest) -> func.HttpResponse:
    """The agent catalogue."""
    body = {"agents": [spec.to_public_dict() for spec in list_agents()]}
    return func.HttpResponse(json.dumps(body), status_code=200, mimetype="application/json")


@bp.route(route="health", methods=["GET"])
def get_health(req: func.HttpRequest) -> func.HttpResponse:
    """Whether the app can serve runs: the model provider's settings are checked, never echoed."""
    body = {"status": "ok", "model_provider": model_provider(os.environ), "agents": len(list_agents())}
    try:
        model_client_from_env(os.environ)
    except ModelConfigError as err:
        # The setting's name says what to fix; its value may be a secret, so it is not repeated here.
        body["status"] = "misconfigured"
        body["error"] = {
            "code": "model_settings",
            "message": f"The model setting {err.setting or '?'} is missing or malformed.",
        }
        return func.HttpResponse(json.dumps(body), status_code=503, mimetype="application/json")
    return func.HttpResponse(json.dumps(body), status_code=200, mimetype="application/json")


@bp.route(route="agents/{agent}/runs", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_agent_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start a run of the agent named in the route."""
    agent = req.route_params["agent"]
    try:
        wait = v.query_seconds(req.params.get("wait"), "wait", high=MAX_WAIT_SECONDS)
        request, instance_id = parse_run_request(agent, req.get_body())
    except BadRequestError as err:
        return bad_request(err)
    try:
        get_agent(agent)
    except UnknownAgentError:
        known = ", ".join(spec.name for spec in list_agents())
        return error_response(404, "unknown_agent", f"No agent named '{agent}'; the agents are: {known}.")

    if instance_id is not None and await client.get_status(instance_id):
        # Any existing instance, finished or not: its run log would mix two runs' events.
        return error_response(409, "run_exists", f"An instance with id '{instance_id}' already exists.")
    run_id = instance_id or uuid.uuid4().hex
    try:
        await client.start_new(names.AGENT_RUN, run_id, request.to_dict())
    except Exception:  # the SDK raises bare Exceptions; a concurrent start of the same id lands here
        if instance_id is not None and await client.get_status(instance_id):
            return error_response(409, "run_exists", f"An instance with id '{instance_id}' already exists.")
        raise
    logger.info("Started agent run %s of %s (%d characters)", run_id, agent, len(request.input))

    status = await (wait_for_run(client, run_id, wait) if wait is not None else fetch_run_status(client, run_id))
    if status is None:  # purged in between: nothing sensible to show
        return error_response(404, "run_not_found", f"Run '{run_id}' disappeared right after it started.")
    if wait is not None and status["runtimeStatus"] in TERMINAL_RUNTIME_STATUSES:
        return run_response(req, status, 200)
    return run_response(req, status, 202)
