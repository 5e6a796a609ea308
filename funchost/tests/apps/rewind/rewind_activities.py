"""Activities of the rewind test app.

Every run appends a line to ``runs-<name>`` in the folder the test passes in, and one to ``ended-<name>``
as it returns or raises, so a test counts how often each step ran, across host restarts. A step fails
until the file ``fixed`` exists in that folder: the test "fixes the bug" by creating it, then rewinds.
"""

import time
from pathlib import Path

import azure.durable_functions as df

bp = df.Blueprint()


def _record_run(step: dict) -> None:
    with (Path(step["dir"]) / f"runs-{step['name']}").open("a") as runs:
        runs.write("run\n")


@bp.activity_trigger(input_name="step")
def run_step(step: dict) -> str:
    """Succeeds, unless `fail` is set and the folder has no `fixed` file yet.

    `failAfterSeconds` delays the failure (so the other tasks of a fan-out finish first); with a
    `hold` file in the folder a run that succeeds waits until `release` appears, so a test can see the
    instance while it runs again.
    """
    _record_run(step)
    folder = Path(step["dir"])
    try:
        if step.get("fail") and not (folder / "fixed").exists():
            time.sleep(float(step.get("failAfterSeconds", 0)))
            raise ValueError(f"step {step['name']} is broken")
        if (folder / "hold").exists():
            deadline = time.monotonic() + 20
            while not (folder / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        return f"{step['name']} ok"
    finally:
        with (folder / f"ended-{step['name']}").open("a") as ended:
            ended.write("ended\n")
