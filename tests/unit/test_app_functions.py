"""The Function App at the repo root, as the worker indexes it: which functions, triggers and routes."""

from __future__ import annotations

import functools
import json
from typing import Any

import azure.functions as func
from funchost.worker_checks import app_refusals

import function_app


@functools.cache  # get_functions() indexes an app once; a second call rejects every name as a duplicate
def functions() -> tuple[func.Function, ...]:
    """The app's functions, built by the same `get_functions()` the worker calls."""
    return tuple(function_app.app.get_functions())


def indexed() -> dict[str, dict[str, Any]]:
    """Function name -> its function.json."""
    return {f.get_function_name(): json.loads(f.get_function_json()) for f in functions()}


def trigger_of(function_json: dict[str, Any]) -> dict[str, Any]:
    triggers = [b for b in function_json["bindings"] if b["type"].endswith("Trigger")]
    assert len(triggers) == 1, function_json
    return triggers[0]


def test_app_registers_the_document_digest_chain() -> None:
    functions = indexed()

    registered = {name: trigger_of(fj)["type"] for name, fj in functions.items()}
    assert registered.items() >= {
        "start_document_digest": "httpTrigger",
        "document_digest": "orchestrationTrigger",
        "split_sentences": "activityTrigger",
        "score_sentences": "activityTrigger",
        "compose_digest": "activityTrigger",
    }.items()


def test_digest_starter_is_a_post_route_with_a_durable_client() -> None:
    starter = indexed()["start_document_digest"]

    http = trigger_of(starter)
    assert (http["route"], http["methods"], http["authLevel"]) == ("documents/digest", ["POST"], "FUNCTION")
    assert [b["type"] for b in starter["bindings"] if b["type"] == "durableClient"] == ["durableClient"]


def test_the_python_worker_loads_every_function_of_the_app() -> None:
    # One function the worker refuses (a list[str] binding annotation on Python 3.11+, say) fails the
    # indexing of the whole app on Azure.
    assert functions(), "the app registers no function"
    assert [str(refusal) for refusal in app_refusals(functions())] == []
