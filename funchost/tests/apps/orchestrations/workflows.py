"""Orchestrators of the orchestrations test app, one per engine behaviour the tests pin.

Chaining, fan-out/fan-in, durable timers, external events (early, late, with a timeout),
sub-orchestrations, retries, continue-as-new, suspend/resume targets, failures and the
unknown-function and non-determinism cases. All are deterministic except `switch_step_two`,
which reads a setting on purpose to change its code between two host runs.
"""

import os
from datetime import timedelta

import azure.durable_functions as df
from orchestration_names import (
    ADD_EVENT,
    APPROVAL_EVENT,
    DEFAULT_STEP_TWO,
    PROCEED_EVENT,
    STEP_TWO_SETTING,
    WAITING_STATUS,
)

bp = df.Blueprint()


# --- basic patterns -------------------------------------------------------------------------


@bp.orchestration_trigger(context_name="context")
def run_chain(context: df.DurableOrchestrationContext):
    """Each activity's output is the next one's input."""
    first = yield context.call_activity("say_hello", context.get_input())
    second = yield context.call_activity("say_hello", first)
    third = yield context.call_activity("say_hello", second)
    return third


@bp.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext):
    count = int(context.get_input())
    tasks = [context.call_activity("square_number", n) for n in range(1, count + 1)]
    squares = yield context.task_all(tasks)
    return {"count": len(squares), "sum": sum(squares)}


@bp.orchestration_trigger(context_name="context")
def wait_on_timer(context: df.DurableOrchestrationContext):
    fire_at = context.current_utc_datetime + timedelta(milliseconds=int(context.get_input()))
    yield context.create_timer(fire_at)
    return {"fireAt": fire_at.isoformat(), "resumedAt": context.current_utc_datetime.isoformat()}


@bp.orchestration_trigger(context_name="context")
def echo_input(context: df.DurableOrchestrationContext):
    """No activity at all: completes in one episode (used to create many instances quickly)."""
    return context.get_input()


@bp.orchestration_trigger(context_name="context")
def stamp_start(context: df.DurableOrchestrationContext):
    """Output says when this run started, so a restarted run is told apart from the first."""
    value = yield context.call_activity("echo_value", context.get_input())
    return {"input": value, "startedAt": context.current_utc_datetime.isoformat()}


# --- external events ------------------------------------------------------------------------


@bp.orchestration_trigger(context_name="context")
def wait_for_approval(context: df.DurableOrchestrationContext):
    """Publish a custom status, then wait for the approval event and return its data."""
    context.set_custom_status(WAITING_STATUS)
    approval = yield context.wait_for_external_event(APPROVAL_EVENT)
    context.set_custom_status({"stage": "approved"})
    return approval


@bp.orchestration_trigger(context_name="context")
def wait_for_event_after_timer(context: df.DurableOrchestrationContext):
    """A timer first, so an event raised right after the start arrives before the wait."""
    delay = timedelta(milliseconds=int(context.get_input()))
    yield context.create_timer(context.current_utc_datetime + delay)
    approval = yield context.wait_for_external_event(APPROVAL_EVENT)
    return approval


@bp.orchestration_trigger(context_name="context")
def wait_for_event_or_timeout(context: df.DurableOrchestrationContext):
    timeout = timedelta(milliseconds=int(context.get_input()))
    approval = context.wait_for_external_event(APPROVAL_EVENT)
    timer = context.create_timer(context.current_utc_datetime + timeout)
    winner = yield context.task_any([approval, timer])
    if winner == approval:
        timer.cancel()
        return {"result": "approved", "value": approval.result}
    return {"result": "timed out"}


@bp.orchestration_trigger(context_name="context")
def accumulate_events(context: df.DurableOrchestrationContext):
    """Consume one `add` event per execution and continue as new until `expected` were seen.

    Events raised in a burst land while an execution is finishing: they must carry over to the
    next execution for the total to come out right.
    """
    state = context.get_input()
    event = yield context.wait_for_external_event(ADD_EVENT)
    total = state["total"] + int(event["n"])
    seen = state["seen"] + 1
    if seen >= state["expected"]:
        return {"total": total, "seen": seen}
    context.continue_as_new({"total": total, "seen": seen, "expected": state["expected"]})
    return None


@bp.orchestration_trigger(context_name="context")
def count_with_continue_as_new(context: df.DurableOrchestrationContext):
    """An eternal counter that continues as new until it reaches its limit."""
    state = context.get_input()
    yield context.call_activity("echo_value", state["count"])
    if state["count"] >= state["limit"]:
        return state["count"]
    context.continue_as_new({"count": state["count"] + 1, "limit": state["limit"]})
    return None


# --- activities that block, for suspend/resume ------------------------------------------------


@bp.orchestration_trigger(context_name="context")
def run_gated_activity(context: df.DurableOrchestrationContext):
    text = yield context.call_activity("wait_for_file", context.get_input())
    return f"gate opened: {text}"


# --- sub-orchestrations ---------------------------------------------------------------------


@bp.orchestration_trigger(context_name="context")
def run_child(context: df.DurableOrchestrationContext):
    greeting = yield context.call_activity("say_hello", context.get_input())
    return greeting


@bp.orchestration_trigger(context_name="context")
def fail_child(context: df.DurableOrchestrationContext):
    yield context.call_activity("echo_value", context.get_input())
    raise ValueError(f"child broke on {context.get_input()}")


@bp.orchestration_trigger(context_name="context")
def call_children(context: df.DurableOrchestrationContext):
    """Task 0: a child with the id given in the input; task 1: a child with a generated id."""
    named = yield context.call_sub_orchestrator("run_child", "Named", context.get_input()["childId"])
    generated = yield context.call_sub_orchestrator("run_child", "Generated")
    return [named, generated]


@bp.orchestration_trigger(context_name="context")
def catch_child_failure(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator("fail_child", "purpose")
    except Exception as exc:  # the SDK raises a plain Exception for a failed task
        return {"caught": str(exc)}
    return {"caught": None}


@bp.orchestration_trigger(context_name="context")
def propagate_child_failure(context: df.DurableOrchestrationContext):
    result = yield context.call_sub_orchestrator("fail_child", "purpose")
    return result


# --- retries ---------------------------------------------------------------------------------


@bp.orchestration_trigger(context_name="context")
def retry_flaky_activity(context: df.DurableOrchestrationContext):
    spec = context.get_input()
    options = df.RetryOptions(
        first_retry_interval_in_milliseconds=int(spec["intervalMs"]),
        max_number_of_attempts=int(spec["maxAttempts"]),
    )
    attempt = {"counterFile": spec["counterFile"], "failures": spec["failures"]}
    try:
        result = yield context.call_activity_with_retry("fail_first_attempts", options, attempt)
    except Exception as exc:  # exhaustion surfaces as a plain Exception
        return {"error": str(exc)}
    return {"result": result}


# --- failures --------------------------------------------------------------------------------


@bp.orchestration_trigger(context_name="context")
def raise_value_error(context: df.DurableOrchestrationContext):
    yield context.call_activity("echo_value", "before the error")
    raise ValueError("x")


@bp.orchestration_trigger(context_name="context")
def fail_on_activity_error(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("raise_activity_error", "kaboom from the activity")
    return result


@bp.orchestration_trigger(context_name="context")
def catch_activity_error(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("raise_activity_error", "caught kaboom")
    except Exception as exc:  # the SDK raises a plain Exception for a failed task
        return {"caught": str(exc)}
    return {"caught": None}


@bp.orchestration_trigger(context_name="context")
def call_missing_activity(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("nope", "anything")
    return result


@bp.orchestration_trigger(context_name="context")
def call_missing_sub_orchestrator(context: df.DurableOrchestrationContext):
    result = yield context.call_sub_orchestrator("nope_orchestrator", "anything")
    return result


@bp.orchestration_trigger(context_name="context")
def call_missing_entity(context: df.DurableOrchestrationContext):
    result = yield context.call_entity(df.EntityId("nope_entity", "k1"), "get")
    return result


@bp.orchestration_trigger(context_name="context")
def switch_step_two(context: df.DurableOrchestrationContext):
    """Step 2's activity comes from a setting: changing it under a waiting instance breaks replay."""
    first = yield context.call_activity("echo_value", "one")
    step_two = os.environ.get(STEP_TWO_SETTING, DEFAULT_STEP_TWO)
    second = yield context.call_activity(step_two, "two")
    context.set_custom_status({"stage": "waiting to proceed"})
    proceed = yield context.wait_for_external_event(PROCEED_EVENT)
    return [first, second, proceed]
