"""HTTP starters that start instances through the SDK's own `start_new`, with and without `version=`.

`POST /api/start/{name}` starts without a version (the instance gets host.json defaultVersion);
`POST /api/start/{name}?version=V` passes `version=V` to `start_new` (`?version=` passes an empty one).
The request body, when there is one, is the orchestrator's input.
"""

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()


@bp.route(route="start/{name}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_versioned(req: func.HttpRequest, client) -> func.HttpResponse:
    name = req.route_params["name"]
    client_input = req.get_json() if req.get_body() else None
    version = req.params.get("version")
    if version is None:
        instance_id = await client.start_new(name, None, client_input)
    else:
        instance_id = await client.start_new(name, None, client_input, version=version)
    return client.create_check_status_response(req, instance_id)
