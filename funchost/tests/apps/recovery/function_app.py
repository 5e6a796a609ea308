"""Work a host is killed in the middle of, for tests/integration/test_azure_recovery.py.

Each piece of work blocks, mid-step, on a gate file the test creates and removes: while it blocks,
messages sent to the same instance or entity stay leased to the host, unconsumed, so a kill leaves them
hidden in their queues, and a test can send newer ones after the restart and see which arrives first.
A blocked step writes `<gate>.blocked` so the test knows it is there. The controlQueueVisibilityTimeout
of host.json is long enough (30 s) that a restart cannot outlast it.
"""

import json
import os
import time
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

EVENT = "Step"
GATE_LIMIT_S = 120.0


def block_on(gate: str) -> None:
    """Wait while the gate file exists (at most GATE_LIMIT_S), after saying so."""
    if not os.path.exists(gate):
        return
    with open(gate + ".blocked", "w", encoding="utf-8") as marker:
        marker.write(str(os.getpid()))
    deadline = time.monotonic() + GATE_LIMIT_S
    while os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)


@app.activity_trigger(input_name="value")
def echo(value):
    return value


@app.orchestration_trigger(context_name="context")
def two_events(context: df.DurableOrchestrationContext):
    """Returns two events of one name in the order it received them; blocks on its gate after the first.

    Each event is awaited before it can arrive: the SDK keeps an event that arrives before its wait and
    hands that one to every later wait of the same name."""
    args = context.get_input()
    first = yield context.wait_for_external_event(EVENT)
    if not context.is_replaying:
        block_on(args["gate"])
    second = yield context.wait_for_external_event(EVENT)
    return [first, second]


@app.orchestration_trigger(context_name="context")
def gated_finish(context: df.DurableOrchestrationContext):
    """Blocks after its first activity, then finishes: a suspend it gets meanwhile holds it until resumed."""
    args = context.get_input()
    yield context.call_activity("echo", "ready")
    if not context.is_replaying:
        block_on(args["gate"])
    result = yield context.call_activity("echo", "done")
    return result


@app.orchestration_trigger(context_name="context")
def timer_then_done(context: df.DurableOrchestrationContext):
    """Waits on a durable timer of `seconds`: its completion is what a restart can deliver at once."""
    seconds = context.get_input()["seconds"]
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
    return "fired"


@app.entity_trigger(context_name="context", entity_name="Journal")
def journal(context: df.DurableEntityContext) -> None:
    """`append` adds its input's `value`, after blocking on its `gate` when it has one; `get` reads."""
    entries = context.get_state(lambda: [])
    if context.operation_name == "append":
        item = context.get_input()
        if isinstance(item, str):  # a client's signal delivers its body as JSON text
            item = json.loads(item)
        if item.get("gate"):
            block_on(item["gate"])
        entries.append(item["value"])
        context.set_state(entries)
    elif context.operation_name == "get":
        context.set_result(entries)
