"""A small Function App used only by the benchmark (``bench/chain_and_fanout.py``).

It holds a 3-activity chain and a fan-out/fan-in, each with an HTTP starter that goes through the
SDK's own ``DurableOrchestrationClient``, as a real app would. The activities do the same trivial
work as the DBOS steps of ``bench/dbos_chain.py`` (both call ``chain_steps``).
"""

import json

import azure.durable_functions as df
import azure.functions as func
import chain_steps

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _started(instance_id: str) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"id": instance_id}), status_code=202, mimetype="application/json")


@app.route(route="chain", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_chain(req: func.HttpRequest, client) -> func.HttpResponse:
    """POST {"text": "..."} starts `run_chain` and answers 202 {"id": instance_id}."""
    text = req.get_json()["text"]
    instance_id = await client.start_new("run_chain", None, text)
    return _started(instance_id)


@app.route(route="fan-out", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_fan_out(req: func.HttpRequest, client) -> func.HttpResponse:
    """POST {"count": n} starts `fan_out_fan_in` over n branches and answers 202 {"id": instance_id}."""
    count = int(req.get_json()["count"])
    instance_id = await client.start_new("fan_out_fan_in", None, count)
    return _started(instance_id)


@app.orchestration_trigger(context_name="context")
def run_chain(context: df.DurableOrchestrationContext):
    text = context.get_input()
    shouted = yield context.call_activity("shout_text", text)
    reversed_text = yield context.call_activity("reverse_text", shouted)
    tagged = yield context.call_activity("tag_length", reversed_text)
    return tagged


@app.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext):
    count = context.get_input()
    results = yield context.task_all([context.call_activity("add_one", i) for i in range(count)])
    return sum(results)


@app.activity_trigger(input_name="text")
def shout_text(text: str) -> str:
    return chain_steps.shout(text)


@app.activity_trigger(input_name="text")
def reverse_text(text: str) -> str:
    return chain_steps.reverse(text)


@app.activity_trigger(input_name="text")
def tag_length(text: str) -> str:
    return chain_steps.tag_length(text)


@app.activity_trigger(input_name="number")
def add_one(number: int) -> int:
    return chain_steps.add_one(number)
