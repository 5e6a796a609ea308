"""HTTP routes that start the research and review workflows, show any workflow, and read usage.

- `POST /api/workflows/research` `{"topic", "max_subtopics"? (1 to 8, default 4), "parallelism"? (1 to 8,
  default 2), "tenant"?, "instance_id"?}` starts ``research_workflow``;
- `POST /api/workflows/review` `{"brief", "max_rounds"? (1 to 5, default 3), "tenant"?, "instance_id"?}`
  starts ``review_workflow``.
  Both answer 202 with the workflow JSON and its `links` (`Location` at its status URL); with
  `?wait=SECONDS` (0 < SECONDS <= 60) they answer 200 with the finished workflow when it ends in time.
  Instance ids are `wf-{kind}-{uuid hex}` unless the body names one (409 `workflow_exists` when taken).
- `GET /api/workflows/{id}`: the workflow JSON of any kind (`starters.workflow_views.workflow_view`),
  with the status of each child run and links to it; 404 for an id that is not a workflow.
- `GET /api/workflows?kind=&status=&top=`: workflows, newest first (`workflow_summary`: no output, no
  children). The SDK's client reads one page of the host's instance listing, so on a busy task hub
  older workflows may be missing; `GET /api/workflows/{id}` still finds them.
- `GET /api/usage/{scope}` (scope `agent:{name}` or `tenant:{id}`): `{"scope", "tokens", "runs"}` from the
  ``usage`` entity; 404 for a scope nothing was counted for, 400 for a malformed one.

Everything goes through the SDK's DurableOrchestrationClient, so the routes behave the same under the real
Functions host. Errors are always `{"error": {"code", "message"}}`.
"""

# No `from __future__ import annotations` here: the Functions worker reads the annotations of the
# functions below when it indexes the app, so they must be real objects, not strings.

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

import shared_names as names
from entities.usage import usage_view
from orchestrators._workflow_common import DEFAULT_TENANT, orchestration_name
from orchestrators.research_workflow import (
    DEFAULT_MAX_SUBTOPICS,
    DEFAULT_PARALLELISM,
    MAX_PARALLELISM,
    MAX_SUBTOPICS,
    ResearchRequest,
)
from orchestrators.review_workflow import DEFAULT_MAX_ROUNDS, MAX_ROUNDS, ReviewRequest
from orchestrators.run_contract import event_data
from starters import _validation as v
from starters._http import BadRequestError, bad_request, error_response
from starters.run_views import TERMINAL_RUNTIME_STATUSES
from starters.runs_api import api_base, json_response, status_json
from starters.workflow_views import (
    DEFAULT_LISTED,
    MAX_LISTED,
    RUNTIME_STATUSES_OF_STATE,
    is_workflow,
    newest_first,
    parse_workflow_filter,
    workflow_links,
    workflow_summary,
    workflow_view,
)

logger = logging.getLogger(__name__)

bp = df.Blueprint()

MAX_TOPIC_CHARS = 2_000
MAX_BRIEF_CHARS = 4_000
MAX_WAIT_SECONDS = 60.0
RESEARCH_FIELDS = ("topic", "max_subtopics", "parallelism", "tenant", "instance_id")
REVIEW_FIELDS = ("brief", "max_rounds", "tenant", "instance_id")
SCOPE = re.compile(r"^(?:agent|tenant):[A-Za-z0-9_.:-]{1,100}$")


# --- bodies -------------------------------------------------------------------------------------


def parse_research(body: bytes) -> tuple[ResearchRequest, str | None]:
    """The research a body asks for, and the instance id it chose (if any).

    Raises:
        BadRequestError: not a JSON object, an unknown field, or a field missing, mistyped or out of range.
    """
    data = v.json_object(body)
    v.reject_unknown(data, RESEARCH_FIELDS)
    topic = v.required_text(data, "topic", max_chars=MAX_TOPIC_CHARS).strip()
    most = v.optional_int(data, "max_subtopics", low=1, high=MAX_SUBTOPICS)
    parallelism = v.optional_int(data, "parallelism", low=1, high=MAX_PARALLELISM)
    request = ResearchRequest(
        topic=topic,
        max_subtopics=DEFAULT_MAX_SUBTOPICS if most is None else most,
        parallelism=DEFAULT_PARALLELISM if parallelism is None else parallelism,
        tenant=v.optional_identifier(data, "tenant") or DEFAULT_TENANT,
    )
    return request, v.optional_identifier(data, "instance_id")


def parse_review(body: bytes) -> tuple[ReviewRequest, str | None]:
    """The review a body asks for, and the instance id it chose (if any).

    Raises:
        BadRequestError: as ``parse_research``.
    """
    data = v.json_object(body)
    v.reject_unknown(data, REVIEW_FIELDS)
    brief = v.required_text(data, "brief", max_chars=MAX_BRIEF_CHARS).strip()
    rounds = v.optional_int(data, "max_rounds", low=1, high=MAX_ROUNDS)
    request = ReviewRequest(
        brief=brief,
        max_rounds=DEFAULT_MAX_ROUNDS if rounds is None else rounds,
        tenant=v.optional_identifier(data, "tenant") or DEFAULT_TENANT,
    )
    return request, v.optional_identifier(data, "instance_id")


# --- reading workflows ----------------------------------------------------------------------------


def _query(req: func.HttpRequest) -> str:
    """The query string to carry over to links: a function key passed as `?code=`."""
    code = req.params.get("code")
    return urlencode({"code": code}) if code else ""


async def fetch_workflow_status(client: Any, workflow_id: str) -> dict[str, Any] | None:
    """The Durable status of workflow ``workflow_id``; None when no workflow instance has that id."""
    status = await client.get_status(workflow_id)
    if not status:
        return None
    data = status_json(status)
    return data if is_workflow(data) else None


async def fetch_workflow_view(req: func.HttpRequest, client: Any, workflow_id: str) -> dict[str, Any] | None:
    """The workflow JSON of ``workflow_id`` with the status of its children; None when there is none."""
    status = await fetch_workflow_status(client, workflow_id)
    if status is None:
        return None
    children = (event_data(status.get("customStatus")).get("children")) or []
    run_ids = [str(c["run_id"]) for c in children if isinstance(c, dict) and c.get("run_id")]
    found = await asyncio.gather(*(client.get_status(run_id) for run_id in run_ids))
    child_statuses = {run_id: (status_json(s) if s else None) for run_id, s in zip(run_ids, found, strict=True)}
    return workflow_view(status, child_statuses, api_base(req), _query(req))


def workflow_not_found(workflow_id: str) -> func.HttpResponse:
    return error_response(404, "workflow_not_found", f"No workflow with id '{workflow_id}'.")


async def answer_with_workflow(req: func.HttpRequest, client: Any, workflow_id: str, code: int) -> func.HttpResponse:
    """The workflow JSON and its links; a 202 also points `Location` at its status URL."""
    view = await fetch_workflow_view(req, client, workflow_id)
    if view is None:
        return workflow_not_found(workflow_id)
    links = workflow_links(api_base(req), workflow_id, _query(req))
    headers = {"Location": links["status"]} if code == 202 else {}
    return json_response(code, {**view, "links": links}, headers)


# --- starting workflows -----------------------------------------------------------------------------


async def start_workflow(
    req: func.HttpRequest, client: Any, kind: str, payload: dict[str, Any], instance_id: str | None, wait: float | None
) -> func.HttpResponse:
    """Start workflow ``kind`` with ``payload``; 202 with its JSON (200 when it finished within ``wait``)."""
    if instance_id is not None and await client.get_status(instance_id):
        return error_response(409, "workflow_exists", f"An instance with id '{instance_id}' already exists.")
    workflow_id = instance_id or f"wf-{kind}-{uuid.uuid4().hex}"
    try:
        await client.start_new(orchestration_name(kind), workflow_id, payload)
    except Exception:  # the SDK raises bare Exceptions; a concurrent start of the same id lands here
        if instance_id is not None and await client.get_status(instance_id):
            return error_response(409, "workflow_exists", f"An instance with id '{instance_id}' already exists.")
        raise
    logger.info("Started %s workflow %s", kind, workflow_id)
    if wait is not None:
        deadline = time.monotonic() + wait
        interval = 0.05
        while time.monotonic() < deadline:
            status = await fetch_workflow_status(client, workflow_id)
            if status is not None and status["runtimeStatus"] in TERMINAL_RUNTIME_STATUSES:
                return await answer_with_workflow(req, client, workflow_id, 200)
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 1.5, 0.25)
    return await answer_with_workflow(req, client, workflow_id, 202)


async def start_parsed(req: func.HttpRequest, client: df.DurableOrchestrationClient, kind: str,
                       parse: Callable[[bytes], tuple[Any, str | None]]) -> func.HttpResponse:
    """Validate a start request with ``parse`` (the body) and ``?wait=``, then start a workflow of ``kind``."""
    try:
        wait = v.query_seconds(req.params.get("wait"), "wait", high=MAX_WAIT_SECONDS)
        request, instance_id = parse(req.get_body())
    except BadRequestError as err:
        return bad_request(err)
    return await start_workflow(req, client, kind, request.to_dict(), instance_id, wait)


@bp.route(route="workflows/research", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_research(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start a research workflow: planner, researchers fanned out, writer."""
    return await start_parsed(req, client, "research", parse_research)


@bp.route(route="workflows/review", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_review(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start a review workflow: writer and reviewer rounds until approval or ``max_rounds``."""
    return await start_parsed(req, client, "review", parse_review)


@bp.route(route="workflows/{workflow_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_workflow(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The workflow JSON of one workflow, any kind."""
    workflow_id = req.route_params["workflow_id"]
    if (bad_id := v.route_identifier(workflow_id, "workflow")) is not None:
        return bad_request(bad_id)
    view = await fetch_workflow_view(req, client, workflow_id)
    if view is None:
        return workflow_not_found(workflow_id)
    return json_response(200, view)


@bp.route(route="workflows", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def list_workflows(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Workflows, newest first, filtered by kind and status."""
    try:
        kind, states = parse_workflow_filter(req.params)
        top = v.query_int(req.params.get("top"), "top", low=1, high=MAX_LISTED, default=DEFAULT_LISTED)
    except BadRequestError as err:
        return bad_request(err)
    runtime = sorted({r for s in states for r in RUNTIME_STATUSES_OF_STATE[s]})
    if runtime:
        found = await client.get_status_by(runtime_status=[OrchestrationRuntimeStatus(r) for r in runtime])
    else:
        found = await client.get_status_all()
    base, query = api_base(req), _query(req)
    views: list[dict[str, Any]] = []
    for status in (status_json(f) for f in found):
        if not is_workflow(status):
            continue
        summary = workflow_summary(status)
        if (kind is None or summary["kind"] == kind) and (not states or summary["status"] in states):
            views.append({**summary, "links": workflow_links(base, str(summary["id"]), query)})
    return json_response(200, {"workflows": newest_first(views)[:top]})


# --- usage ----------------------------------------------------------------------------------------


@bp.route(route="usage/{scope}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_usage(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Tokens and runs of one agent (`agent:{name}`) or tenant (`tenant:{id}`) across every workflow."""
    scope = req.route_params["scope"]
    if not SCOPE.match(scope):
        return error_response(
            400, "invalid_scope", "The scope must be 'agent:{name}' or 'tenant:{id}' (letters, digits, _ . : -)."
        )
    state = await client.read_entity_state(df.EntityId(names.USAGE_ENTITY, scope))
    if not state.entity_exists:
        return error_response(404, "usage_not_found", f"Nothing has been counted for '{scope}' yet.")
    return json_response(200, usage_view(scope, event_data(state.entity_state)))
