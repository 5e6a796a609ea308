"""A mixed Durable workload for the chaos soak, tests/integration/test_chaos_soak.py.

Five orchestrators whose outputs follow from their inputs alone, so the test can check every instance:
`chain` (activities one after another), `fan` (fan-out/fan-in), `race` (an external event raced with a
durable timer), `parent` (sub-orchestrations of `chain`, then one activity) and `tally` (signals and calls
to `Counter` entities, then one activity). Entities are `Counter`s that only add, so their final values
are sums the test knows.

Every workload activity is `step`: it appends one line "<time> <pid> <instance> <task>" to the journal
file named by the app setting CHAOS_JOURNAL before it does its work, so the test can count how often each
(instance, task) ran and when a freshly started host first did work.
"""

import os
import time
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

JOURNAL_SETTING = "CHAOS_JOURNAL"
COUNTER_ENTITY = "Counter"
GO_EVENT = "Go"
MODULUS = 1_000_003
STEP_SECONDS = 0.1  # with host.json's 4 at a time: a backlog builds, and kills land on runs in flight


def next_value(value: int) -> int:
    """What `step` computes; the test has its own copy of this rule to know the expected outputs."""
    return (value * 31 + 7) % MODULUS


def journal(instance_id: str, task: str) -> None:
    """One line per run, written with a single write() on an O_APPEND descriptor: lines from concurrent
    threads never interleave, and a run the host is killed in the middle of is still on disk."""
    line = f"{time.time():.6f} {os.getpid()} {instance_id} {task}\n".encode()
    fd = os.open(os.environ[JOURNAL_SETTING], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@app.activity_trigger(input_name="work")
def step(work: dict) -> int:
    journal(work["instance"], work["task"])
    time.sleep(STEP_SECONDS)
    return next_value(int(work["value"]))


def _step(context: df.DurableOrchestrationContext, task: str, value: int):
    return context.call_activity("step", {"instance": context.instance_id, "task": task, "value": value})


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    """`length` steps, each on the previous one's result."""
    args = context.get_input()
    value = args["start"]
    for index in range(args["length"]):
        value = yield _step(context, f"chain-{index}", value)
    return {"value": value}


@app.orchestration_trigger(context_name="context")
def fan(context: df.DurableOrchestrationContext):
    """One step per value, all at once; returns the sum of their results."""
    values = context.get_input()["values"]
    results = yield context.task_all([_step(context, f"fan-{index}", value) for index, value in enumerate(values)])
    return {"sum": sum(results)}


@app.orchestration_trigger(context_name="context")
def race(context: df.DurableOrchestrationContext):
    """Waits for the `Go` event or a timer of `timeoutSeconds`, whichever comes first; after an event, one
    step on the event's `value`."""
    args = context.get_input()
    go = context.wait_for_external_event(GO_EVENT)
    timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=args["timeoutSeconds"]))
    winner = yield context.task_any([go, timer])
    if winner != go:
        return {"winner": "timer"}
    timer.cancel()
    value = yield _step(context, "after-event", int(go.result["value"]))
    return {"winner": "event", "value": value}


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    """A `chain` sub-orchestration per child (ids `<parent>-sub-<n>`, all at once), then one step on the
    sum of their values."""
    children = context.get_input()["children"]
    results = yield context.task_all([
        context.call_sub_orchestrator("chain", child, f"{context.instance_id}-sub-{index}")
        for index, child in enumerate(children)
    ])
    values = [result["value"] for result in results]
    total = yield _step(context, "total", sum(values) % MODULUS)
    return {"values": values, "total": total}


@app.orchestration_trigger(context_name="context")
def tally(context: df.DurableOrchestrationContext):
    """Signals `add` (fire and forget) and calls `add` (waiting for each answer) on Counters, then one step
    on the sum of all amounts."""
    args = context.get_input()
    for key, amount in args["signals"]:
        context.signal_entity(df.EntityId(COUNTER_ENTITY, key), "add", amount)
    for key, amount in args["calls"]:
        yield context.call_entity(df.EntityId(COUNTER_ENTITY, key), "add", amount)
    amounts = [amount for _, amount in args["signals"] + args["calls"]]
    value = yield _step(context, "tally", sum(amounts))
    return {"value": value}


@app.entity_trigger(context_name="context", entity_name=COUNTER_ENTITY)
def counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        context.set_state(value + int(context.get_input()))
    elif context.operation_name == "get":
        context.set_result(value)
    else:
        raise ValueError(f"unknown counter operation {context.operation_name!r}")
