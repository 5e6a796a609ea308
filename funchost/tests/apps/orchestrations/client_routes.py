"""HTTP starters that drive the SDK's own DurableOrchestrationClient.

Every client method the tests exercise is called here, from a real `durable_client_input`
function, so the requests the SDK builds travel to funchost's durable HTTP API exactly as they
would to the .NET host. Errors the SDK raises come back as 400 JSON carrying the SDK's message,
so a test can read what the client saw.
"""

import json
from datetime import datetime

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()


def _json_response(body, status_code: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status_code, mimetype="application/json")


def _client_error(exc: Exception) -> func.HttpResponse:
    return _json_response({"error": {"code": "client_error", "message": str(exc)}}, 400)


def _body_or_none(req: func.HttpRequest):
    return req.get_json() if req.get_body() else None


def _flag(req: func.HttpRequest, name: str) -> bool:
    return req.params.get(name, "false").lower() == "true"


def _time_param(req: func.HttpRequest, name: str):
    value = req.params.get(name)
    return datetime.fromisoformat(value) if value else None


def _statuses_param(req: func.HttpRequest, name: str):
    value = req.params.get(name)
    if not value:
        return None
    return [df.OrchestrationRuntimeStatus(part) for part in value.split(",")]


def _status_json(status) -> dict:
    return {
        "name": status.name,
        "instanceId": status.instance_id,
        "runtimeStatus": status.runtime_status.value if status.runtime_status else None,
        "input": status.input_,
        "output": status.output,
        "customStatus": status.custom_status,
        "createdTime": status.created_time.isoformat() if status.created_time else None,
        "lastUpdatedTime": status.last_updated_time.isoformat() if status.last_updated_time else None,
        "historyEvents": getattr(status, "historyEvents", None),
    }


# --- starting --------------------------------------------------------------------------------


@bp.route(route="start/{name}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_orchestration(req: func.HttpRequest, client) -> func.HttpResponse:
    """start_new (with `?instance_id=` when given) and the SDK's check-status response."""
    try:
        instance_id = await client.start_new(
            req.route_params["name"], req.params.get("instance_id"), _body_or_none(req)
        )
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    return client.create_check_status_response(req, instance_id)


@bp.route(route="start_and_raise/{name}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_and_raise_events(req: func.HttpRequest, client) -> func.HttpResponse:
    """Start, then at once raise events to the new instance, most likely still Pending."""
    body = req.get_json()
    try:
        instance_id = await client.start_new(req.route_params["name"], None, body.get("input"))
        for event in body["events"]:
            await client.raise_event(instance_id, event["name"], event["data"])
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    return client.create_check_status_response(req, instance_id)


@bp.route(route="start_twice/{name}/{instance_id}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_twice(req: func.HttpRequest, client) -> func.HttpResponse:
    """Start an id, then start the same id again before it can have finished."""
    name, instance_id = req.route_params["name"], req.route_params["instance_id"]
    first = await client.start_new(name, instance_id, _body_or_none(req))
    try:
        second = await client.start_new(name, instance_id, _body_or_none(req))
    except Exception as exc:  # the refusal under test
        return _json_response({"firstId": first, "secondId": None, "secondError": str(exc)})
    return _json_response({"firstId": first, "secondId": second, "secondError": None})


@bp.route(route="run/{name}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def run_and_wait(req: func.HttpRequest, client) -> func.HttpResponse:
    """start_new, then wait_for_completion_or_create_check_status_response."""
    try:
        instance_id = await client.start_new(req.route_params["name"], None, _body_or_none(req))
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    return await client.wait_for_completion_or_create_check_status_response(
        req,
        instance_id,
        timeout_in_milliseconds=int(req.params.get("timeout_ms", "10000")),
        retry_interval_in_milliseconds=int(req.params.get("interval_ms", "50")),
    )


# --- reading ---------------------------------------------------------------------------------


@bp.route(route="client/instances/{instance_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_instance_status(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        status = await client.get_status(
            req.route_params["instance_id"],
            show_history=_flag(req, "history"),
            show_history_output=_flag(req, "history_output"),
            show_input=_flag(req, "input"),
        )
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    if not status:  # the SDK's falsy status means "no such instance"
        return _json_response({"error": {"code": "not_found", "message": "no such instance"}}, 404)
    return _json_response(_status_json(status))


@bp.route(route="client/instances", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def query_instances(req: func.HttpRequest, client) -> func.HttpResponse:
    """get_status_by with `from`, `to` (ISO 8601, UTC), `statuses` (comma list) and `prefix`."""
    try:
        statuses = await client.get_status_by(
            created_time_from=_time_param(req, "from"),
            created_time_to=_time_param(req, "to"),
            runtime_status=_statuses_param(req, "statuses"),
            instance_id_prefix=req.params.get("prefix"),
        )
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    return _json_response([_status_json(status) for status in statuses])


@bp.route(route="client/all_instances", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def list_all_instances(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        statuses = await client.get_status_all()
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    return _json_response([_status_json(status) for status in statuses])


# --- changing --------------------------------------------------------------------------------


@bp.route(route="client/instances/{instance_id}/events/{event_name}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def raise_instance_event(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        await client.raise_event(req.route_params["instance_id"], req.route_params["event_name"], _body_or_none(req))
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    return _json_response({"raised": True}, 202)


@bp.route(route="client/instances/{instance_id}/terminate", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def terminate_instance(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        await client.terminate(req.route_params["instance_id"], req.params.get("reason", ""))
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    return _json_response({"terminated": True}, 202)


@bp.route(route="client/instances/{instance_id}/suspend", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def suspend_instance(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        await client.suspend(req.route_params["instance_id"], req.params.get("reason", ""))
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    return _json_response({"suspended": True}, 202)


@bp.route(route="client/instances/{instance_id}/resume", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def resume_instance(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        await client.resume(req.route_params["instance_id"], req.params.get("reason", ""))
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    return _json_response({"resumed": True}, 202)


@bp.route(route="client/instances/{instance_id}/restart", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def restart_instance(req: func.HttpRequest, client) -> func.HttpResponse:
    """restart; SDK 1.7.0 returns the host's check-status JSON, or the old id when it is empty."""
    try:
        restarted = await client.restart(req.route_params["instance_id"], _flag(req, "new_id"))
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    new_id = restarted["id"] if isinstance(restarted, dict) else restarted
    return _json_response({"id": new_id}, 202)


@bp.route(route="client/instances/{instance_id}", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
async def purge_instance(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        result = await client.purge_instance_history(req.route_params["instance_id"])
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    return _json_response({"instancesDeleted": result.instances_deleted})


@bp.route(route="client/instances", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
async def purge_instances(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        result = await client.purge_instance_history_by(
            created_time_from=_time_param(req, "from"),
            created_time_to=_time_param(req, "to"),
            runtime_status=_statuses_param(req, "statuses"),
        )
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _client_error(exc)
    return _json_response({"instancesDeleted": result.instances_deleted})
