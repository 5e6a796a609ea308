"""HTTP routes of agent runs: status, listing, events (SSE) and the actions a client takes on a run.

- `GET /api/runs/{id}`: the run JSON (`starters.run_views.run_view`).
- `GET /api/runs?agent=&session_id=&status=&tag=key:value&top=&continuation=`: runs, newest first.
- `GET /api/runs/{id}/events`: Server-Sent Events from the run's `run_log` entity (see `get_run_events`).
- `POST /api/runs/{id}/approvals | steer | cancel | terminate`: raise the run's external events (or
  terminate it) and answer 202 with the run JSON and its links.

Everything goes through the SDK's DurableOrchestrationClient, so the routes behave the same under the
real Functions host. Unknown runs (and instances that are not agent runs) are 404, actions on finished
runs 409, malformed input 400, always as `{"error": {"code", "message"}}`.
"""

# No `from __future__ import annotations` here: the Functions worker reads the annotations of the
# functions below when it indexes the app, so they must be real objects, not strings.

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

import shared_names as names
from orchestrators.run_contract import TERMINAL_RUN_STATES
from starters import _validation as v
from starters._http import BadRequestError, bad_request, error_response, raise_event
from starters.run_views import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    TERMINAL_RUNTIME_STATUSES,
    decode_continuation,
    events_after,
    is_agent_run,
    iso_time,
    page_runs,
    parse_cursor,
    parse_run_filter,
    run_events,
    run_links,
    run_view,
    sse_text,
)

logger = logging.getLogger(__name__)

bp = df.Blueprint()

MAX_STEER_CHARS = 20_000
MAX_COMMENT_CHARS = 2_000
MAX_REASON_CHARS = 1_000
DEFAULT_EVENTS_WAIT_S = 20.0
MAX_EVENTS_WAIT_S = 55.0
EVENTS_POLL_S = 0.1
# Listed instances without a custom status (not started yet) are looked up one by one for their input.
MAX_LOOKUPS_PER_LISTING = 25


# --- helpers shared with the other starters ---------------------------------------------------------


def status_json(status: Any) -> dict[str, Any]:
    """A DurableOrchestrationStatus as the Durable HTTP API spells it (what `run_views` reads)."""
    runtime = status.runtime_status
    return {
        "name": status.name,
        "instanceId": status.instance_id,
        "runtimeStatus": runtime.value if runtime is not None else None,
        "input": status.input_,
        "customStatus": status.custom_status,
        "output": status.output,
        "createdTime": iso_time(status.created_time),
        "lastUpdatedTime": iso_time(status.last_updated_time),
    }


async def fetch_run_status(client: Any, run_id: str) -> dict[str, Any] | None:
    """The Durable status of the run `run_id`, or None when there is no `agent_run` instance of that id."""
    status = await client.get_status(run_id)
    if not status:
        return None
    data = status_json(status)
    if not is_agent_run(data):
        return None
    if not data["customStatus"]:
        # Not started yet: agent, session and tags are only in the input.
        with_input = await client.get_status(run_id, show_input=True)
        if with_input:
            data = status_json(with_input)
    return data


async def wait_for_run(client: Any, run_id: str, seconds: float) -> dict[str, Any] | None:
    """Poll the run's status until it is terminal or `seconds` have passed; its last status.

    Polls every 50 ms at first, backing off to 250 ms, so a fast run answers fast and a slow one does
    not flood the task hub.
    """
    deadline = time.monotonic() + seconds
    interval = 0.05
    while True:
        status = await fetch_run_status(client, run_id)
        if status is None or status["runtimeStatus"] in TERMINAL_RUNTIME_STATUSES:
            return status
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return status
        await asyncio.sleep(min(interval, remaining))
        interval = min(interval * 1.5, 0.25)


def api_base(req: func.HttpRequest) -> str:
    """The origin of the request and the route prefix: `http://host:port/api`."""
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}/api"


def links_for(req: func.HttpRequest, run_id: str) -> dict[str, str]:
    """The run's URLs; a function key the caller passed as `?code=` is carried over to them."""
    code = req.params.get("code")
    return run_links(api_base(req), run_id, urlencode({"code": code}) if code else "")


def json_response(status_code: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body), status_code=status_code, mimetype="application/json", headers=headers or {}
    )


def run_response(req: func.HttpRequest, status: dict[str, Any], status_code: int) -> func.HttpResponse:
    """The run JSON with its `links`; a 202 also points `Location` at the run's status URL."""
    view = run_view(status)
    links = links_for(req, str(view["id"]))
    headers = {"Location": links["status"]} if status_code == 202 else {}
    return json_response(status_code, {**view, "links": links}, headers)


def run_not_found(run_id: str) -> func.HttpResponse:
    return error_response(404, "run_not_found", f"No agent run with id '{run_id}'.")


def run_finished(run_id: str, state: str) -> func.HttpResponse:
    return error_response(409, "run_finished", f"Run '{run_id}' is {state}; it accepts no more actions.")


# --- reading runs -------------------------------------------------------------------------------


@bp.route(route="runs/{run_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The run JSON of one run."""
    run_id = req.route_params["run_id"]
    if (bad_id := v.route_identifier(run_id, "run")) is not None:
        return bad_request(bad_id)
    status = await fetch_run_status(client, run_id)
    if status is None:
        return run_not_found(run_id)
    return json_response(200, run_view(status))


@bp.route(route="runs", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def list_runs(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Runs, newest first, filtered by agent, session, status and one tag; paged by `top` and `continuation`.

    The SDK's client reads one page of the host's instance listing (the first 100 instances), so on a
    busy task hub older runs may be missing from the listing; `GET /api/runs/{id}` still finds them.
    """
    try:
        run_filter = parse_run_filter(req.params)
        top = v.query_int(req.params.get("top"), "top", low=1, high=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE)
        continuation = req.params.get("continuation") or None
        if continuation:
            decode_continuation(continuation)
    except BadRequestError as err:
        return bad_request(err)

    runtime = run_filter.runtime_statuses()
    if runtime:
        found = await client.get_status_by(runtime_status=[OrchestrationRuntimeStatus(s) for s in runtime])
    else:
        found = await client.get_status_all()
    statuses = [s for s in (status_json(f) for f in found) if is_agent_run(s)]

    lookups = 0
    views: list[dict[str, Any]] = []
    for status in statuses:
        if not status["customStatus"] and lookups < MAX_LOOKUPS_PER_LISTING:
            lookups += 1
            status = await fetch_run_status(client, str(status["instanceId"])) or status
        view = run_view(status)
        if run_filter.matches(view):
            views.append(view)
    page, token = page_runs(views, top=top, continuation=continuation)
    return json_response(200, {"runs": page, "continuation": token})


@bp.route(route="runs/{run_id}/events", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_run_events(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The run's events after the client's cursor, as Server-Sent Events (a long poll).

    A Functions HTTP response is sent whole, so each response carries every event after the cursor
    (`Last-Event-ID`, else `?after=`, else 0) and ends; an EventSource reconnects after `retry:` ms with
    the id of the last event it got. With nothing new on a live run the response waits up to `?wait=`
    seconds (default 20, at most 55) for an event. Once the cursor is at the end of a finished run the
    answer is 204, which tells an EventSource to stop reconnecting.
    """
    run_id = req.route_params["run_id"]
    if (bad_id := v.route_identifier(run_id, "run")) is not None:
        return bad_request(bad_id)
    try:
        cursor = parse_cursor(req.headers.get("Last-Event-ID"), req.params.get("after"))
        wait = v.query_seconds(
            req.params.get("wait"), "wait", high=MAX_EVENTS_WAIT_S, allow_zero=True, default=DEFAULT_EVENTS_WAIT_S
        )
    except BadRequestError as err:
        return bad_request(err)
    assert wait is not None

    deadline = time.monotonic() + wait
    log_id = df.EntityId(names.RUN_LOG_ENTITY, run_id)
    while True:
        status = await fetch_run_status(client, run_id)
        if status is None:
            return run_not_found(run_id)
        log = await client.read_entity_state(log_id)
        events, complete = run_events(log.entity_state if log.entity_exists else None, status)
        new = events_after(events, cursor)
        if new or complete or time.monotonic() >= deadline:
            break
        await asyncio.sleep(EVENTS_POLL_S)

    if complete and not new:
        return func.HttpResponse(status_code=204, headers={"Cache-Control": "no-cache"})
    return func.HttpResponse(
        sse_text(new), status_code=200, mimetype="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


# --- acting on runs -------------------------------------------------------------------------------


def parse_decisions(body: bytes) -> dict[str, Any]:
    """The body of an approval: `{"decisions": {call_id: "approve"|"reject"}, "comment"?: str}`."""
    data = v.json_object(body)
    v.reject_unknown(data, ("decisions", "comment"))
    decisions = data.get("decisions")
    if not isinstance(decisions, dict):
        raise BadRequestError(
            "invalid_field", "Field 'decisions' must be an object of call id to 'approve' or 'reject'."
        )
    if not decisions:
        raise BadRequestError("missing_field", "Field 'decisions' must decide at least one tool call.")
    for call_id, decision in decisions.items():
        if decision not in ("approve", "reject"):
            raise BadRequestError("invalid_field", f"The decision for {call_id!r} must be 'approve' or 'reject'.")
    payload: dict[str, Any] = {"decisions": dict(decisions)}
    comment = v.optional_text(data, "comment", max_chars=MAX_COMMENT_CHARS)
    if comment is not None:
        payload["comment"] = comment
    return payload


def parse_steer(body: bytes) -> dict[str, Any]:
    data = v.json_object(body)
    v.reject_unknown(data, ("input",))
    return {"input": v.required_text(data, "input", max_chars=MAX_STEER_CHARS)}


def parse_reason(body: bytes) -> dict[str, Any]:
    """The optional body of cancel and terminate: `{"reason"?: str}` (an empty body is fine)."""
    data = v.json_object(body, allow_empty=True)
    v.reject_unknown(data, ("reason",))
    reason = v.optional_text(data, "reason", max_chars=MAX_REASON_CHARS)
    return {"reason": reason} if reason is not None else {}


async def _raise(client: Any, run_id: str, event: str, data: dict[str, Any]) -> func.HttpResponse | None:
    """Raise `event` on the run; an error response when the instance is gone by now, else None."""
    outcome = await raise_event(client, run_id, event, data)
    if outcome == "finished":
        return run_finished(run_id, "finished")
    return run_not_found(run_id) if outcome == "missing" else None


async def _live_run(client: Any, run_id: str) -> tuple[dict[str, Any] | None, func.HttpResponse | None]:
    """The run's status when it exists and is not finished, else the error response to give."""
    status = await fetch_run_status(client, run_id)
    if status is None:
        return None, run_not_found(run_id)
    state = run_view(status)["status"]
    if state in TERMINAL_RUN_STATES:
        return None, run_finished(run_id, state)
    return status, None


async def _answer(req: func.HttpRequest, client: Any, run_id: str) -> func.HttpResponse:
    status = await fetch_run_status(client, run_id)
    return run_response(req, status, 202) if status else run_not_found(run_id)


Parse = Callable[[bytes], dict[str, Any]]
Refusal = Callable[[str, dict[str, Any], dict[str, Any]], func.HttpResponse | None]


async def _tell_live_run(req: func.HttpRequest, client: Any, parse: Parse, event: str,
                         refuse: Refusal | None = None) -> func.HttpResponse:
    """What the approve, steer and cancel routes share: parse the body, check the run is live (and, with
    ``refuse``, that it can take this), raise ``event`` on it and answer 202 with its status."""
    run_id = req.route_params["run_id"]
    if (bad_id := v.route_identifier(run_id, "run")) is not None:
        return bad_request(bad_id)
    try:
        payload = parse(req.get_body())
    except BadRequestError as err:
        return bad_request(err)
    status, problem = await _live_run(client, run_id)
    if problem is not None or status is None:
        return problem or run_not_found(run_id)
    if refuse is not None and (refusal := refuse(run_id, status, payload)) is not None:
        return refusal
    problem = await _raise(client, run_id, event, payload)
    if problem is not None:
        return problem
    logger.info("Run %s: %r event raised", run_id, event)
    return await _answer(req, client, run_id)


def _refuse_decisions(run_id: str, status: dict[str, Any], payload: dict[str, Any]) -> func.HttpResponse | None:
    """Decisions are only for a run waiting for them, and only on the calls it waits on."""
    view = run_view(status)
    if view["status"] != "awaiting_approval":
        return error_response(
            409, "not_awaiting_approval", f"Run '{run_id}' is {view['status']}; it is not waiting for an approval."
        )
    pending = {p.get("call_id") for p in view["pending_approvals"]}
    unknown = sorted(c for c in payload["decisions"] if c not in pending)
    if unknown:
        return error_response(
            400,
            "unknown_call_id",
            f"Run '{run_id}' is not waiting for a decision on {', '.join(unknown)}; pending: "
            f"{', '.join(sorted(str(p) for p in pending)) or 'none'}.",
        )
    return None


@bp.route(route="runs/{run_id}/approvals", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def decide_run_approvals(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Approve or reject tool calls a run is waiting on."""
    return await _tell_live_run(req, client, parse_decisions, names.APPROVAL_EVENT, _refuse_decisions)


@bp.route(route="runs/{run_id}/steer", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def steer_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Add input to a running run; it joins the conversation before the next model call."""
    return await _tell_live_run(req, client, parse_steer, names.STEER_EVENT)


@bp.route(route="runs/{run_id}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def cancel_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Ask a run to stop at its next step boundary; it completes as `cancelled`."""
    return await _tell_live_run(req, client, parse_reason, names.CANCEL_EVENT)


@bp.route(route="runs/{run_id}/terminate", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def terminate_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Stop a run at once (no cleanup step runs); it ends as `terminated`."""
    run_id = req.route_params["run_id"]
    if (bad_id := v.route_identifier(run_id, "run")) is not None:
        return bad_request(bad_id)
    try:
        payload = parse_reason(req.get_body())
    except BadRequestError as err:
        return bad_request(err)
    _, problem = await _live_run(client, run_id)
    if problem is not None:
        return problem
    reason = payload.get("reason") or "terminated through the API"
    try:
        await client.terminate(run_id, reason)
    except Exception as exc:  # the SDK raises bare Exceptions worded by status code
        if "No instance" in str(exc):
            return run_not_found(run_id)
        raise
    logger.info("Run %s: terminated", run_id)
    return await _answer(req, client, run_id)
