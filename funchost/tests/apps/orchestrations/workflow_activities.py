"""Activities of the orchestrations test app.

They are small on purpose; the ones that keep state (attempt counters, gates) keep it in files
under a folder the test passes in, so the state is real and survives a host restart.
"""

import asyncio
import time
from pathlib import Path

import azure.durable_functions as df

bp = df.Blueprint()


@bp.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}"


@bp.activity_trigger(input_name="number")
def square_number(number: int) -> int:
    return number * number


@bp.activity_trigger(input_name="value")
def echo_value(value):
    return value


@bp.activity_trigger(input_name="message")
def raise_activity_error(message: str) -> str:
    raise ValueError(message)


@bp.activity_trigger(input_name="attempt")
def fail_first_attempts(attempt: dict) -> str:
    """Fail the first `failures` calls, counting calls in the file `counterFile`."""
    counter = Path(attempt["counterFile"])
    count = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(count))
    if count <= int(attempt["failures"]):
        raise ValueError(f"attempt {count} failed")
    return f"succeeded on attempt {count}"


@bp.activity_trigger(input_name="gate")
async def wait_for_file(gate: dict) -> str:
    """Wait (on the event loop) until the file `path` exists and return its text.

    Writes `<path>.started` on entry and `<path>.done` just before returning, so a test can see
    where the activity is without asking the host.
    """
    path = Path(gate["path"])
    Path(f"{path}.started").write_text("started")
    deadline = time.monotonic() + float(gate.get("timeoutSeconds", 20))
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate file {path.name} never appeared")
        await asyncio.sleep(0.02)
    text = path.read_text()
    Path(f"{path}.done").write_text("done")
    return text


@bp.activity_trigger(input_name="value")
def record_route_a(value: str) -> str:
    return f"route a: {value}"


@bp.activity_trigger(input_name="value")
def record_route_b(value: str) -> str:
    return f"route b: {value}"
