"""Durable entities driven from clients and orchestrations, for tests/integration/test_entities.py.

`Counter` (add/get/reset/fail) and `Journal` (append/get, to observe the order operations arrive in),
an HTTP route that signals through the SDK's `signal_entity`, one that reads through
`read_entity_state`, a starter, and orchestrators that call and signal entities.
"""

import json

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

COUNTER_ENTITY = "Counter"
JOURNAL_ENTITY = "Journal"
COUNTER_FAILURE_TEXT = "counter refused the operation"


def _json(payload, status_code=200):
    return func.HttpResponse(json.dumps(payload), status_code=status_code, mimetype="application/json")


@app.entity_trigger(context_name="context", entity_name=COUNTER_ENTITY)
def counter_entity(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        # Client signals deliver their body as JSON text ("1"), orchestrations as a number: accept both.
        context.set_state(value + int(context.get_input()))
    elif operation == "get":
        context.set_result(value)
    elif operation == "reset":
        context.set_state(0)
    elif operation == "fail":
        raise ValueError(f"{COUNTER_FAILURE_TEXT}: {context.get_input()}")
    else:
        raise ValueError(f"unknown counter operation {operation!r}")


@app.entity_trigger(context_name="context", entity_name=JOURNAL_ENTITY)
def journal_entity(context: df.DurableEntityContext) -> None:
    entries = context.get_state(lambda: [])
    if context.operation_name == "append":
        entries.append(context.get_input())
        context.set_state(entries)
    elif context.operation_name == "get":
        context.set_result(entries)
    else:
        raise ValueError(f"unknown journal operation {context.operation_name!r}")


@app.route(route="counters/{key}/add", methods=["POST"])
@app.durable_client_input(client_name="client")
async def signal_counter(req: func.HttpRequest, client) -> func.HttpResponse:
    entity_id = df.EntityId(COUNTER_ENTITY, req.route_params["key"])
    await client.signal_entity(entity_id, "add", req.get_json())
    return _json({"signalled": True}, status_code=202)


@app.route(route="counters/{key}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def read_counter(req: func.HttpRequest, client) -> func.HttpResponse:
    response = await client.read_entity_state(df.EntityId(COUNTER_ENTITY, req.route_params["key"]))
    return _json({"exists": response.entity_exists, "state": response.entity_state})


@app.route(route="orchestrators/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_orchestration(req: func.HttpRequest, client) -> func.HttpResponse:
    payload = req.get_json() if req.get_body() else None
    instance_id = await client.start_new(req.route_params["name"], client_input=payload)
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def add_then_get(context: df.DurableOrchestrationContext):
    """Calls `add` for each amount (awaiting each reply), then returns what `get` answers."""
    args = context.get_input()
    entity_id = df.EntityId(COUNTER_ENTITY, args["key"])
    for amount in args["amounts"]:
        yield context.call_entity(entity_id, "add", amount)
    value = yield context.call_entity(entity_id, "get")
    return value


@app.orchestration_trigger(context_name="context")
def call_failing_operation(context: df.DurableOrchestrationContext):
    """Calls the `fail` operation; with `catch` the error is caught and returned, else it fails the instance."""
    args = context.get_input()
    entity_id = df.EntityId(COUNTER_ENTITY, args["key"])
    if not args["catch"]:
        yield context.call_entity(entity_id, "fail", "uncaught")
        return "unreachable"
    try:
        yield context.call_entity(entity_id, "fail", "caught")
    except Exception as error:  # the SDK surfaces entity errors as a bare Exception
        value = yield context.call_entity(entity_id, "get")
        return {"caught": str(error), "valueAfter": value}
    return {"caught": None}


@app.orchestration_trigger(context_name="context")
def signal_in_order(context: df.DurableOrchestrationContext):
    """Fire-and-forget signals: `count` appends to a Journal, and add/reset/add... on a Counter."""
    args = context.get_input()
    journal = df.EntityId(JOURNAL_ENTITY, args["key"])
    counter = df.EntityId(COUNTER_ENTITY, args["key"])
    for index in range(args["count"]):
        context.signal_entity(journal, "append", index)
    # Only in this order does the counter end at 1 + 2 + 3 = 6: a reordered reset gives another total.
    context.signal_entity(counter, "add", 100)
    context.signal_entity(counter, "reset")
    for amount in (1, 2, 3):
        context.signal_entity(counter, "add", amount)
    return "signalled"
