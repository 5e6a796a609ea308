"""HTTP routes that start the publish, watch and digest workflows, and the actions a client takes on them.

- `POST /api/workflows/publish` `{"content", "approvers": [str] (1 to 20), "timeout_s" (1 to 604800),
  "reminder_s"? (less than timeout_s), "escalate_to"?, "tenant"?, "instance_id"?}`;
- `POST /api/workflows/watch` `{"query", "interval_s" (0.1 to 86400), "expires_s" (0.1 to 2592000),
  "min_score"?, "instance_id"?}`;
- `POST /api/workflows/digest` `{"interval_s" (0.1 to 604800), "topic", "tenant"?, "agent"?,
  "max_documents"? (1 to 10), "instance_id"?}`.
  Each starts like the research and review starters (`starters.workflows_api.start_workflow`): 202 with
  the workflow JSON of `GET /api/workflows/{id}` and its `links` (`Location` at its status URL), or 200
  with the finished workflow under `?wait=SECONDS`. Instance ids are `wf-{kind}-{uuid hex}` unless the
  body names one (409 `workflow_exists` when taken).
- `POST /api/workflows/{id}/decision` `{"approver", "decision": "approve"|"reject", "comment"?}` on a
  publish workflow: 202 with the workflow JSON when taken; 403 `not_an_approver` when the approver is not
  one of the workflow's approvers (the refusal is still sent to the workflow, which lists it in its
  output); 409 when the workflow has finished or already has its decision.
- `POST /api/workflows/{id}/stop` `{"reason"?}` on a digest: raises the `stop` event (not a terminate),
  so the digest finishes its current cycle and completes with its output; 202 with the workflow JSON.

Unknown workflows are 404; errors are always `{"error": {"code", "message"}}`. Everything goes through
the SDK's DurableOrchestrationClient, so the routes behave the same under the real Functions host.
"""

# No `from __future__ import annotations` here: the Functions worker reads the annotations of the
# functions below when it indexes the app, so they must be real objects, not strings.

import logging
from collections.abc import Callable, Mapping
from typing import Any

import azure.durable_functions as df
import azure.functions as func

import shared_names as names
from agents.catalogue import list_agents
from agents.tools.builtin import MAX_MESSAGE_CHARS
from orchestrators._workflow_common import DEFAULT_TENANT, kind_of
from orchestrators.digest_workflow import DEFAULT_AGENT, DEFAULT_MAX_DOCUMENTS, DigestRequest
from orchestrators.publish_workflow import DECISIONS, PublishRequest
from orchestrators.run_contract import event_data
from orchestrators.watch_workflow import DEFAULT_MIN_SCORE, WatchRequest
from starters import _validation as v
from starters._http import BadRequestError, bad_request, error_response, raise_event
from starters.run_views import TERMINAL_RUNTIME_STATUSES
from starters.workflows_api import answer_with_workflow, start_parsed

logger = logging.getLogger(__name__)

bp = df.Blueprint()

MAX_APPROVERS = 20
MAX_NAME_CHARS = 200
MAX_COMMENT_CHARS = 2_000
MAX_REASON_CHARS = 1_000
MAX_QUERY_CHARS = 500
MAX_TOPIC_CHARS = 200
MIN_TIMEOUT_S = 1.0
MAX_TIMEOUT_S = 7 * 24 * 3600.0
MIN_INTERVAL_S = 0.1  # short enough for tests; a real watch or digest checks every minute or more
MAX_WATCH_INTERVAL_S = 24 * 3600.0
MAX_WATCH_EXPIRY_S = 30 * 24 * 3600.0
MAX_DIGEST_INTERVAL_S = 7 * 24 * 3600.0
MAX_MIN_SCORE = 1_000.0
MAX_DIGEST_DOCUMENTS = 10
# Publish states in which the workflow still takes a decision.
DECIDING_STATES = ("starting", "waiting_for_decision", "sending_reminder")


# --- bodies -------------------------------------------------------------------------------------


def _required(data: Mapping[str, Any], name: str) -> None:
    if data.get(name) is None:
        raise BadRequestError("missing_field", f"Field '{name}' is required.")


def _required_number(data: Mapping[str, Any], name: str, *, low: float, high: float) -> float:
    _required(data, name)
    value = v.optional_number(data, name, low=low, high=high)
    assert value is not None
    return value


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_CHARS:
        raise BadRequestError(
            "invalid_field", f"{what} must be a non-empty string of at most {MAX_NAME_CHARS} characters."
        )
    return value


def parse_publish(body: bytes) -> tuple[PublishRequest, str | None]:
    """The publish workflow a body asks for, and the instance id it chose (if any)."""
    data = v.json_object(body)
    v.reject_unknown(data, ("content", "approvers", "timeout_s", "reminder_s", "escalate_to", "tenant", "instance_id"))
    content = v.required_text(data, "content", max_chars=MAX_MESSAGE_CHARS)
    _required(data, "approvers")
    approvers = data["approvers"]
    if not isinstance(approvers, list) or not 1 <= len(approvers) <= MAX_APPROVERS:
        raise BadRequestError("invalid_field", f"Field 'approvers' must be a list of 1 to {MAX_APPROVERS} names.")
    approvers = [_name(a, "Each approver") for a in approvers]
    if len(set(approvers)) != len(approvers):
        raise BadRequestError("invalid_field", "Field 'approvers' names someone twice.")
    timeout = _required_number(data, "timeout_s", low=MIN_TIMEOUT_S, high=MAX_TIMEOUT_S)
    reminder = v.optional_number(data, "reminder_s", low=MIN_INTERVAL_S, high=MAX_TIMEOUT_S)
    if reminder is not None and reminder >= timeout:
        raise BadRequestError("invalid_field", "Field 'reminder_s' must be less than 'timeout_s'.")
    escalate_to = data.get("escalate_to")
    if escalate_to is not None:
        escalate_to = _name(escalate_to, "Field 'escalate_to'")
    tenant = v.optional_identifier(data, "tenant") or DEFAULT_TENANT
    request = PublishRequest(
        content=content,
        approvers=approvers,
        timeout_s=timeout,
        reminder_s=reminder,
        escalate_to=escalate_to,
        tenant=tenant,
    )
    return request, v.optional_identifier(data, "instance_id")


def parse_watch(body: bytes) -> tuple[WatchRequest, str | None]:
    """The watch a body asks for, and the instance id it chose (if any)."""
    data = v.json_object(body)
    v.reject_unknown(data, ("query", "interval_s", "expires_s", "min_score", "instance_id"))
    query = v.required_text(data, "query", max_chars=MAX_QUERY_CHARS)
    interval = _required_number(data, "interval_s", low=MIN_INTERVAL_S, high=MAX_WATCH_INTERVAL_S)
    expires = _required_number(data, "expires_s", low=MIN_INTERVAL_S, high=MAX_WATCH_EXPIRY_S)
    min_score = v.optional_number(data, "min_score", low=0.0, high=MAX_MIN_SCORE)
    request = WatchRequest(
        query=query,
        interval_s=interval,
        expires_s=expires,
        min_score=DEFAULT_MIN_SCORE if min_score is None else min_score,
    )
    return request, v.optional_identifier(data, "instance_id")


def parse_digest(body: bytes) -> tuple[DigestRequest, str | None]:
    """The digest a body asks for, and the instance id it chose (if any)."""
    data = v.json_object(body)
    v.reject_unknown(data, ("interval_s", "topic", "tenant", "agent", "max_documents", "instance_id"))
    topic = v.required_text(data, "topic", max_chars=MAX_TOPIC_CHARS)
    interval = _required_number(data, "interval_s", low=MIN_INTERVAL_S, high=MAX_DIGEST_INTERVAL_S)
    agent = v.optional_choice(data, "agent", [spec.name for spec in list_agents()]) or DEFAULT_AGENT
    max_documents = v.optional_int(data, "max_documents", low=1, high=MAX_DIGEST_DOCUMENTS)
    request = DigestRequest(
        topic=topic,
        interval_s=interval,
        tenant=v.optional_identifier(data, "tenant") or DEFAULT_TENANT,
        agent=agent,
        max_documents=max_documents or DEFAULT_MAX_DOCUMENTS,
    )
    return request, v.optional_identifier(data, "instance_id")


def parse_decision(body: bytes) -> dict[str, Any]:
    """`{"approver", "decision", "comment"?}`, checked."""
    data = v.json_object(body)
    v.reject_unknown(data, ("approver", "decision", "comment"))
    approver = v.required_text(data, "approver", max_chars=MAX_NAME_CHARS)
    _required(data, "decision")
    decision = v.optional_choice(data, "decision", DECISIONS)
    payload: dict[str, Any] = {"approver": approver, "decision": decision}
    comment = v.optional_text(data, "comment", max_chars=MAX_COMMENT_CHARS)
    if comment is not None:
        payload["comment"] = comment
    return payload


def parse_stop(body: bytes) -> dict[str, Any]:
    data = v.json_object(body, allow_empty=True)
    v.reject_unknown(data, ("reason",))
    reason = v.optional_text(data, "reason", max_chars=MAX_REASON_CHARS)
    return {"reason": reason} if reason is not None else {}


# --- helpers ------------------------------------------------------------------------------------


def not_found(workflow_id: str) -> func.HttpResponse:
    return error_response(404, "workflow_not_found", f"No workflow with id '{workflow_id}'.")


async def _workflow(client: Any, workflow_id: str) -> tuple[str | None, Any]:
    """The kind and Durable status (with input) of a workflow; (None, None) when there is none."""
    status = await client.get_status(workflow_id, show_input=True)
    kind = kind_of(status.name) if status and status.name else None
    return (kind, status) if kind else (None, None)


def _runtime(status: Any) -> str:
    runtime = status.runtime_status
    return str(runtime.value if runtime is not None else "Pending")


def _finished(workflow_id: str) -> func.HttpResponse:
    return error_response(409, "workflow_finished", f"Workflow '{workflow_id}' has finished.")


async def _raise(client: Any, workflow_id: str, event: str, data: dict[str, Any]) -> func.HttpResponse | None:
    """Raise `event`; the error response when the instance finished or vanished meanwhile, else None."""
    outcome = await raise_event(client, workflow_id, event, data)
    if outcome == "finished":
        return _finished(workflow_id)
    return not_found(workflow_id) if outcome == "missing" else None


async def _live_workflow(
    req: func.HttpRequest, client: Any, parse: Callable[[bytes], dict[str, Any]], kind: str, code: str, why: str
) -> tuple[str, dict[str, Any], Any] | func.HttpResponse:
    """What the decision and stop routes share: the parsed body and the status of the workflow the route
    names, when it is a live workflow of `kind`; else the answer to give (`code` and `why` for another kind)."""
    workflow_id = req.route_params["workflow_id"]
    if (bad_id := v.route_identifier(workflow_id, "workflow")) is not None:
        return bad_request(bad_id)
    try:
        payload = parse(req.get_body())
    except BadRequestError as err:
        return bad_request(err)
    found, status = await _workflow(client, workflow_id)
    if status is None:
        return not_found(workflow_id)
    if found != kind:
        return error_response(409, code, f"Workflow '{workflow_id}' is a {found} workflow; {why}")
    if _runtime(status) in TERMINAL_RUNTIME_STATUSES:
        return _finished(workflow_id)
    return workflow_id, payload, status


# --- routes -------------------------------------------------------------------------------------


@bp.route(route="workflows/publish", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_publish_workflow(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start a publish workflow: the content is published once an approver approves it."""
    return await start_parsed(req, client, "publish", parse_publish)


@bp.route(route="workflows/watch", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_watch_workflow(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start a watch: the knowledge base is searched every interval until a match appears or it expires."""
    return await start_parsed(req, client, "watch", parse_watch)


@bp.route(route="workflows/digest", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_digest_workflow(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start an eternal digest of what is new about a topic; it runs until stopped."""
    return await start_parsed(req, client, "digest", parse_digest)


@bp.route(route="workflows/{workflow_id}/decision", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def decide_workflow(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Approve or reject the content of a publish workflow, as one of its approvers."""
    live = await _live_workflow(req, client, parse_decision, "publish", "no_decision",
                                "only publish workflows take decisions.")
    if isinstance(live, func.HttpResponse):
        return live
    workflow_id, payload, status = live
    state = event_data(status.custom_status).get("state") or "starting"
    if state not in DECIDING_STATES:
        return error_response(
            409, "decision_taken", f"Workflow '{workflow_id}' is {state}; it takes no more decisions."
        )
    approvers = PublishRequest.from_dict(status.input_).approvers
    if payload["approver"] not in approvers:
        # The workflow records the refusal (its output lists it), so it is sent all the same.
        problem = await _raise(client, workflow_id, names.DECISION_EVENT, {**payload, "refused": True})
        if problem is not None:
            return problem
        logger.warning(
            "Workflow %s: refused a decision by %r, who is not an approver", workflow_id, payload["approver"]
        )
        return error_response(
            403,
            "not_an_approver",
            f"'{payload['approver']}' is not an approver of workflow '{workflow_id}'; the refusal is recorded.",
        )
    problem = await _raise(client, workflow_id, names.DECISION_EVENT, payload)
    if problem is not None:
        return problem
    logger.info("Workflow %s: %s by %s", workflow_id, payload["decision"], payload["approver"])
    return await answer_with_workflow(req, client, workflow_id, 202)


@bp.route(route="workflows/{workflow_id}/stop", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def stop_workflow(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Ask a digest to stop: it finishes its current cycle and completes with its output."""
    live = await _live_workflow(req, client, parse_stop, "digest", "not_stoppable",
                                "only a digest is stopped (it runs until asked).")
    if isinstance(live, func.HttpResponse):
        return live
    workflow_id, payload, _ = live
    problem = await _raise(client, workflow_id, names.STOP_EVENT, payload)
    if problem is not None:
        return problem
    logger.info("Workflow %s: stop requested", workflow_id)
    return await answer_with_workflow(req, client, workflow_id, 202)
