"""A small app for the bad-request and HTTP fuzz tests: an HTTP starter, an orchestrator, an activity, an entity.

The starter reads its body defensively (an app's own 400s), so any 5xx the tests see is the host's.
`echo` returns its input after a round trip through `shout`; with `{"output_chars": n}` it returns a string
of n characters instead, for the output size limit. `call_entity_named` calls the entity id its input names,
`sub_named` starts `echo` as a sub-orchestration with the instance id its input names.
"""

import json

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _error(status: int, code: str, message: str) -> func.HttpResponse:
    body = json.dumps({"error": {"code": code, "message": message}})
    return func.HttpResponse(body, status_code=status, mimetype="application/json")


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client) -> func.HttpResponse:
    body = req.get_body()
    try:
        payload = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _error(400, "invalid_json", "The request body must be JSON.")
    try:
        instance_id = await client.start_new(req.route_params["name"], client_input=payload)
    except Exception as err:  # the SDK raises a bare Exception for the host's 4xx (an unknown orchestrator)
        return _error(400, "not_started", str(err))
    return client.create_check_status_response(req, instance_id)


@app.route(route="echo/{word}", methods=["GET", "POST"])
def echo_route(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"word": req.route_params["word"], "bytes": len(req.get_body())}),
                             mimetype="application/json")


@app.orchestration_trigger(context_name="context")
def echo(context: df.DurableOrchestrationContext):
    value = context.get_input()
    if isinstance(value, dict) and isinstance(value.get("output_chars"), int):
        return "x" * value["output_chars"]
    shouted = yield context.call_activity("shout", value)
    return shouted


@app.orchestration_trigger(context_name="context")
def call_entity_named(context: df.DurableOrchestrationContext):
    args = context.get_input()
    value = yield context.call_entity(df.EntityId(args["name"], args["key"]), "add", 1)
    return value


@app.orchestration_trigger(context_name="context")
def sub_named(context: df.DurableOrchestrationContext):
    value = yield context.call_sub_orchestrator("echo", "sub", instance_id=context.get_input())
    return value


@app.activity_trigger(input_name="value")
def shout(value):
    return value.upper() if isinstance(value, str) else value


@app.entity_trigger(context_name="context", entity_name="Tally")
def tally(context: df.DurableEntityContext) -> None:
    total = context.get_state(lambda: 0)
    if context.operation_name == "add":
        amount = context.get_input()
        total += amount if isinstance(amount, int) and not isinstance(amount, bool) else 1
        context.set_state(total)
    context.set_result(total)
