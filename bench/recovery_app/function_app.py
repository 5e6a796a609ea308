"""The app of bench/restart_recovery.py: chains of activities that leave a trace of every run.

Each activity run appends `start` and `end` lines, and each orchestrator episode that gets something new
appends a `step` line, to the file named by the environment variable RECOVERY_TRACE, with the process id
and the time, so that the benchmark can tell which host did what, and when, around each kill.
"""

import os
import time

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def trace(kind: str, instance_id: str, index: int) -> None:
    line = f"{kind} {instance_id} {index} {os.getpid()} {time.time():.6f}\n"
    with open(os.environ["RECOVERY_TRACE"], "a", encoding="utf-8") as out:  # one short append: one write
        out.write(line)


@app.activity_trigger(input_name="work")
def traced_step(work: dict) -> int:
    trace("start", work["instance"], work["index"])
    time.sleep(work["seconds"])
    trace("end", work["instance"], work["index"])
    return work["index"]


@app.orchestration_trigger(context_name="context")
def traced_chain(context: df.DurableOrchestrationContext):
    args = context.get_input()
    done = 0
    for index in range(args["steps"]):
        if not context.is_replaying:
            trace("step", context.instance_id, index)
        done += yield context.call_activity(
            "traced_step", {"instance": context.instance_id, "index": index, "seconds": args["seconds"]}
        )
    return done
