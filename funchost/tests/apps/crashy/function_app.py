"""Work that is in flight when the host is killed, for tests/integration/test_crash_recovery.py.

A fan-out whose activities leave a trace on disk (so a test can kill the host mid-way and later
count how often each one ran), a durable timer, and a wait for an external event. host.json keeps
`maxConcurrentActivityFunctions` small so the fan-out takes long enough to be interrupted.
"""

import os
import time
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

APPROVAL_EVENT = "Approval"
ACTIVITY_SECONDS = 0.2


@app.route(route="orchestrators/{name}/{instance_id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_orchestration(req: func.HttpRequest, client) -> func.HttpResponse:
    payload = req.get_json() if req.get_body() else None
    instance_id = await client.start_new(
        req.route_params["name"], instance_id=req.route_params["instance_id"], client_input=payload
    )
    return client.create_check_status_response(req, instance_id)


@app.activity_trigger(input_name="work")
def mark_and_wait(work: dict) -> dict:
    """Appends one line to the file named by the index, then takes a while: a run leaves a line."""
    path = os.path.join(work["dir"], str(work["index"]))
    with open(path, "a", encoding="utf-8") as marker:
        marker.write(f"{os.getpid()}\n")
    time.sleep(ACTIVITY_SECONDS)
    return {"index": work["index"], "value": work["index"] + 1}


@app.orchestration_trigger(context_name="context")
def fan_out_markers(context: df.DurableOrchestrationContext):
    """Fans out to `count` activities and returns the sum of their values (count * (count + 1) / 2)."""
    args = context.get_input()
    tasks = [
        context.call_activity("mark_and_wait", {"dir": args["dir"], "index": index}) for index in range(args["count"])
    ]
    results = yield context.task_all(tasks)
    return {"sum": sum(result["value"] for result in results), "count": len(results)}


@app.orchestration_trigger(context_name="context")
def wait_on_timer(context: df.DurableOrchestrationContext):
    """Waits on a durable timer, then returns when it was due and when the orchestration resumed."""
    args = context.get_input()
    fire_at = context.current_utc_datetime + timedelta(seconds=args["seconds"])
    yield context.create_timer(fire_at)
    return {
        "value": args["value"],
        "fireAt": fire_at.isoformat(),
        "resumedAt": context.current_utc_datetime.isoformat(),
    }


@app.orchestration_trigger(context_name="context")
def wait_for_approval(context: df.DurableOrchestrationContext):
    """Waits for the external event `Approval` and returns its payload."""
    approval = yield context.wait_for_external_event(APPROVAL_EVENT)
    return {"approval": approval}
