"""Orchestrators of the rewind test app: the shapes a rewind has to handle.

A chain with a failing middle step, a fan-out where some tasks fail, a parent whose
sub-orchestration fails, a step run with retries, and an orchestrator whose own code raises.
All but `raise_until_fixed` are deterministic.
"""

from pathlib import Path

import azure.durable_functions as df

bp = df.Blueprint()


def _step(spec: dict, name: str, fail: bool = False, **extra) -> dict:
    return {"dir": spec["dir"], "name": name, "fail": fail, **extra}


@bp.orchestration_trigger(context_name="context")
def flaky_chain(context: df.DurableOrchestrationContext):
    """Three steps; the second fails until fixed."""
    spec = context.get_input()
    prefix = spec.get("prefix", "")
    first = yield context.call_activity("run_step", _step(spec, f"{prefix}first"))
    second = yield context.call_activity("run_step", _step(spec, f"{prefix}second", fail=True))
    third = yield context.call_activity("run_step", _step(spec, f"{prefix}third"))
    return [first, second, third]


@bp.orchestration_trigger(context_name="context")
def flaky_fan_out(context: df.DurableOrchestrationContext):
    """`count` steps at once; those listed in `failing` fail (a little later than the others finish)."""
    spec = context.get_input()
    failing = set(spec["failing"])
    tasks = [context.call_activity("run_step", _step(spec, f"item-{i}", fail=i in failing, failAfterSeconds=0.5))
             for i in range(spec["count"])]
    results = yield context.task_all(tasks)
    return results


@bp.orchestration_trigger(context_name="context")
def flaky_parent(context: df.DurableOrchestrationContext):
    """One step of its own, then `flaky_chain` as a sub-orchestration with a known instance id."""
    spec = context.get_input()
    before = yield context.call_activity("run_step", _step(spec, "parent-before"))
    child = yield context.call_sub_orchestrator("flaky_chain", {"dir": spec["dir"], "prefix": "child-"},
                                                f"{context.instance_id}-child")
    return {"before": before, "child": child}


@bp.orchestration_trigger(context_name="context")
def retried_step(context: df.DurableOrchestrationContext):
    """A step, then a failing step under call_activity_with_retry (2 attempts), then a last step."""
    spec = context.get_input()
    options = df.RetryOptions(first_retry_interval_in_milliseconds=50, max_number_of_attempts=2)
    before = yield context.call_activity("run_step", _step(spec, "before"))
    retried = yield context.call_activity_with_retry("run_step", options, _step(spec, "retried", fail=True))
    after = yield context.call_activity("run_step", _step(spec, "after"))
    return [before, retried, after]


@bp.orchestration_trigger(context_name="context")
def raise_until_fixed(context: df.DurableOrchestrationContext):
    """Raises in its own code, after one step, until the folder has a `fixed` file.

    Reading a file makes this orchestrator non-deterministic on purpose: it stands for a bug fixed in
    the code between the failure and the rewind.
    """
    spec = context.get_input()
    before = yield context.call_activity("run_step", _step(spec, "before-raise"))
    if not (Path(spec["dir"]) / "fixed").exists():
        raise RuntimeError("the orchestrator's own code is broken")
    after = yield context.call_activity("run_step", _step(spec, "after-raise"))
    return [before, after]


@bp.orchestration_trigger(context_name="context")
def wait_for_go(context: df.DurableOrchestrationContext):
    """Runs until it gets the event `go`: a Running instance for the refusal tests."""
    value = yield context.wait_for_external_event("go")
    return value
