"""Functions of every kind that block, sleep or report where they run, for test_worker_model.py.

A blocking function waits on a gate: it writes ``GATES_DIR/<gate>.entered`` and blocks its thread (or, in
an ``async def``, the worker's loop) until the test creates ``GATES_DIR/<gate>.open``. What each function
saw (its thread, whether an event loop was running, the loop's identity) is answered to the caller; how
many ran at once is counted per group and read at ``GET /api/concurrency``.
"""

import asyncio
import json
import os
import threading
import time
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

GATE_LIMIT_S = 60.0
_lock = threading.Lock()
_running: dict[str, int] = {}
_most: dict[str, int] = {}


def _gate(name: str) -> None:
    gates = Path(os.environ["GATES_DIR"])
    (gates / f"{name}.entered").write_text("")
    deadline = time.monotonic() + GATE_LIMIT_S
    while not (gates / f"{name}.open").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {name} was never opened")
        time.sleep(0.01)


class _Counted:
    """Counts how many holders of one group are inside at once."""

    def __init__(self, group: str) -> None:
        self.group = group

    def __enter__(self) -> None:
        with _lock:
            _running[self.group] = _running.get(self.group, 0) + 1
            _most[self.group] = max(_most.get(self.group, 0), _running[self.group])

    def __exit__(self, *exc: object) -> None:
        with _lock:
            _running[self.group] -= 1


def _where() -> dict:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    return {"thread": threading.current_thread().name, "main_thread": threading.current_thread()
            is threading.main_thread(), "running_loop": loop is not None, "loop": id(loop) if loop else None}


def _json(payload, status_code=200):
    return func.HttpResponse(json.dumps(payload), status_code=status_code, mimetype="application/json")


# --- HTTP ---------------------------------------------------------------------------------------

@app.route(route="where/sync", methods=["GET"])
def where_sync(req: func.HttpRequest) -> func.HttpResponse:
    return _json(_where())


@app.route(route="where/async", methods=["GET"])
async def where_async(req: func.HttpRequest) -> func.HttpResponse:
    return _json(_where())


@app.route(route="block/sync/{gate}", methods=["POST"])
def block_sync(req: func.HttpRequest) -> func.HttpResponse:
    with _Counted("http"):
        _gate(req.route_params["gate"])
    return _json({"released": req.route_params["gate"]})


@app.route(route="block/async/{gate}", methods=["POST"])
async def block_async(req: func.HttpRequest) -> func.HttpResponse:
    _gate(req.route_params["gate"])  # blocks the worker's loop, as it would under the Python worker
    return _json({"released": req.route_params["gate"]})


@app.route(route="concurrency", methods=["GET"])
def concurrency(req: func.HttpRequest) -> func.HttpResponse:
    with _lock:
        return _json(dict(_most))


# --- activities ---------------------------------------------------------------------------------

@app.activity_trigger(input_name="gate")
def blocking_activity(gate: str) -> dict:
    with _Counted("activity"):
        _gate(gate)
    return _where()


@app.activity_trigger(input_name="seconds")
async def sleeping_activity(seconds: float) -> dict:
    with _Counted("async_activity"):
        await asyncio.sleep(seconds)
    return _where()


@app.activity_trigger(input_name="label")
def where_activity(label: str) -> dict:
    return {"label": label, **_where()}


# --- orchestrators ------------------------------------------------------------------------------

async def _add_later(a: int, b: int) -> int:
    await asyncio.sleep(0.01)
    return a + b


@app.orchestration_trigger(context_name="context")
def asyncio_inside(context: df.DurableOrchestrationContext):
    # asyncio.run needs a thread with no running loop, which is what the worker gives an orchestrator.
    value = asyncio.run(_add_later(20, 22))
    seen = yield context.call_activity("where_activity", "from orchestrator")
    return {"value": value, "orchestrator": _where(), "activity": seen}


@app.orchestration_trigger(context_name="context")
def blocking_orchestrator(context: df.DurableOrchestrationContext):
    if not context.is_replaying:
        with _Counted("orchestrator"):
            _gate(context.get_input())
    return _where()


@app.orchestration_trigger(context_name="context")
def call_blocking_activity(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("blocking_activity", context.get_input()))


@app.orchestration_trigger(context_name="context")
def call_sleeping_activity(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("sleeping_activity", context.get_input()))


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    """Every episode of one instance must run alone: the episode counts itself in a group of its own."""
    with _Counted(f"episode:{context.instance_id}"):
        time.sleep(0.002)  # widen the window in which an overlapping episode would be seen
        results = yield context.task_all([context.call_activity("where_activity", str(i))
                                          for i in range(context.get_input())])
    return len(results)


# --- entities -----------------------------------------------------------------------------------

@app.entity_trigger(context_name="context", entity_name="Slow")
def slow_entity(context: df.DurableEntityContext) -> None:
    entries = context.get_state(lambda: [])
    operation = context.operation_name
    with _Counted(f"entity:{context.entity_key}"):
        if operation == "block":
            _gate(context.get_input())
        elif operation == "append":
            entries.append(context.get_input())
            context.set_state(entries)
        elif operation == "get":
            context.set_result(entries)
        else:
            raise ValueError(f"unknown operation {operation!r}")
