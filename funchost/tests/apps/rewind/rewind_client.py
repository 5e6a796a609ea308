"""HTTP starters of the rewind test app: the SDK's own client, as an app would call it.

Errors the SDK raises come back as 400 JSON carrying the SDK's message, so a test reads what the
client saw.
"""

import json

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()


def _json_response(body, status_code: int) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status_code, mimetype="application/json")


@bp.route(route="start/{name}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_orchestration(req: func.HttpRequest, client) -> func.HttpResponse:
    """start_new with the JSON body as input; answers the SDK's check-status response."""
    instance_id = await client.start_new(req.route_params["name"], None, req.get_json())
    return client.create_check_status_response(req, instance_id)


@bp.route(route="rewind/{instance_id}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def rewind_instance(req: func.HttpRequest, client) -> func.HttpResponse:
    """client.rewind(instance_id, reason) with `?reason=`."""
    try:
        await client.rewind(req.route_params["instance_id"], req.params.get("reason", ""))
    except Exception as exc:  # the SDK raises a plain Exception for every refusal
        return _json_response({"error": {"code": "client_error", "message": str(exc)}}, 400)
    return _json_response({"rewound": True}, 202)
