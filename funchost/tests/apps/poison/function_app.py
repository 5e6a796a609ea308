"""Work that kills its host every time, and healthy work, for tests/integration/test_poison.py.

The crashing functions kill their own host process with SIGKILL, which is what a worker crash (a segfault
in a native library, the OOM killer) does to a message being processed; each leaves a line in the trace
file named by its input first, so a test can count the attempts. host.json sets maxDequeueCount 2 and a
2 s lease (controlQueueVisibilityTimeout), so a crash loop reaches the limit in a few restarts.
"""

import json
import os
import signal
import time

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

CRASHER_ENTITY = "Crasher"


def leave_a_trace(path):
    with open(path, "a", encoding="utf-8") as trace:
        trace.write(f"{os.getpid()}\n")


def crash(path):
    leave_a_trace(path)
    os.kill(os.getpid(), signal.SIGKILL)


@app.activity_trigger(input_name="work")
def crash_the_host(work: dict) -> str:
    crash(work["trace"])
    return "never"


@app.orchestration_trigger(context_name="context")
def call_a_crashing_activity(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("crash_the_host", context.get_input())
    return result


@app.orchestration_trigger(context_name="context")
def crash_in_the_orchestrator(context: df.DurableOrchestrationContext):
    crash(context.get_input()["trace"])
    result = yield context.call_activity("crash_the_host", context.get_input())
    return result


@app.entity_trigger(context_name="context", entity_name=CRASHER_ENTITY)
def crasher_entity(context: df.DurableEntityContext) -> None:
    if context.operation_name == "crash":
        work = context.get_input()
        crash((json.loads(work) if isinstance(work, str) else work)["trace"])  # a client signal's is JSON text
    context.set_state(context.get_state(lambda: 0) + 1)
    context.set_result(context.operation_name)


@app.orchestration_trigger(context_name="context")
def call_a_crashing_entity(context: df.DurableOrchestrationContext):
    result = yield context.call_entity(df.EntityId(CRASHER_ENTITY, "poisoned"), "crash", context.get_input())
    return result


@app.activity_trigger(input_name="number")
def add_one(number: int) -> int:
    time.sleep(0.02)  # long enough that kills land while work is in flight
    return number + 1


@app.orchestration_trigger(context_name="context")
def healthy_work(context: df.DurableOrchestrationContext):
    """A chain of `steps` activities, a fan-out of `width`, and an entity call: returns what they add up to."""
    args = context.get_input()
    value = 0
    for _ in range(args.get("steps", 0)):
        value = yield context.call_activity("add_one", value)
    results = yield context.task_all([context.call_activity("add_one", i) for i in range(args.get("width", 0))])
    answer = yield context.call_entity(df.EntityId(CRASHER_ENTITY, "healthy"), "ping")
    return {"chain": value, "fanOut": sum(results), "entity": answer}
