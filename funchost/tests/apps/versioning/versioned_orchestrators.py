"""Orchestrators that report the version they run under (`context.version`).

`report_version` returns its own version; `report_sub_versions` calls it as a sub-orchestration with an
explicit version (plain and with retry) and without one; `continue_then_report` continues as new before it
reports; `call_sub_at` calls `report_version` at the version given as its input.
"""

import azure.durable_functions as df

bp = df.Blueprint()

RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=100, max_number_of_attempts=1)


@bp.orchestration_trigger(context_name="context")
def report_version(context: df.DurableOrchestrationContext):
    return context.version


@bp.orchestration_trigger(context_name="context")
def report_sub_versions(context: df.DurableOrchestrationContext):
    """Input: {"explicit": version for the sub-orchestrations that name one}."""
    explicit = context.get_input()["explicit"]
    with_version = yield context.call_sub_orchestrator("report_version", version=explicit)
    with_retry = yield context.call_sub_orchestrator_with_retry("report_version", RETRY, version=explicit)
    without = yield context.call_sub_orchestrator("report_version")
    return {"own": context.version, "explicit": with_version, "explicitWithRetry": with_retry,
            "default": without}


@bp.orchestration_trigger(context_name="context")
def continue_then_report(context: df.DurableOrchestrationContext):
    """Input: how many times to continue as new first."""
    remaining = int(context.get_input())
    yield context.create_timer(context.current_utc_datetime)  # a step in each execution: it is a generator
    if remaining > 0:
        context.continue_as_new(remaining - 1)
        return None
    return context.version


@bp.orchestration_trigger(context_name="context")
def call_sub_at(context: df.DurableOrchestrationContext):
    """Input: the version to call `report_version` at."""
    return (yield context.call_sub_orchestrator("report_version", version=context.get_input()))
