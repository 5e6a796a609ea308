"""funchost.worker_checks: the functions the Python worker refuses to load, each with the worker's words.

Each test builds a one-function app of a shape the worker refuses (or loads) and compares funchost's
refusal with the message the worker raises for it, word for word (worker 1.26-era wording). A few
rules depend on the interpreter: PEP 585 generics are classes only before Python 3.11, ``typing.Any``
only from 3.11 on; those tests say which Python they are about.
"""

# No `from __future__ import annotations`: the annotations below are the test data, and the checks
# read them as objects, as the worker does (typing.get_type_hints).

import sys
import typing
from collections.abc import Callable
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.functions.decorators.core import Binding, BindingDirection, DataType
from azure.functions.decorators.http import HttpTrigger

from funchost.app_loader import index_functions
from funchost.errors import AppLoadError, FunctionRefusedError
from funchost.worker_checks import (
    PEP585_ALIASES_ARE_TYPES,
    Refusal,
    app_refusals,
    check_app_functions,
    function_refusal,
)

PYTHON_3_11_ON = pytest.mark.skipif(PEP585_ALIASES_ARE_TYPES, reason="PEP 585 generics are classes before 3.11")
BEFORE_PYTHON_3_11 = pytest.mark.skipif(not PEP585_ALIASES_ARE_TYPES, reason="PEP 585 generics are not classes now")
DEFINITION = "function definition (function.json or function decorators)"


def new_app() -> df.DFApp:
    return df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def only_function(app: func.FunctionRegister) -> func.Function:
    (function,) = app.get_functions()
    return function


def refusal(app: func.FunctionRegister) -> Refusal:
    found = function_refusal(only_function(app))
    assert found is not None, "the function loads"
    return found


def worker_message(app: func.FunctionRegister) -> str:
    """The FunctionLoadError message the worker raises for the app's one function."""
    found = refusal(app)
    assert found.error == "FunctionLoadError", found
    return found.text


def activity_app(fn: Callable[..., Any], input_name: str = "payload") -> df.DFApp:
    app = new_app()
    app.activity_trigger(input_name=input_name)(fn)
    return app


def route_app(fn: Callable[..., Any]) -> df.DFApp:
    app = new_app()
    app.route(route="probe", methods=["POST"])(fn)
    return app


# --- the interpreter's part ------------------------------------------------------------------------


def test_pep585_aliases_are_classes_exactly_where_the_module_says() -> None:
    # The worker's rule is isinstance(annotation, type); this pins what it makes of list[str] on this Python.
    assert isinstance(list[str], type) is PEP585_ALIASES_ARE_TYPES
    assert PEP585_ALIASES_ARE_TYPES is (sys.version_info < (3, 11))


# --- non-type annotations on binding parameters -----------------------------------------------------


@PYTHON_3_11_ON
def test_a_list_of_str_binding_annotation_is_refused() -> None:
    def score_sentences(sentences: list[str]) -> list[float]:
        return [0.0 for _ in sentences]

    assert worker_message(activity_app(score_sentences, "sentences")) == (
        "cannot load the score_sentences function: binding sentences has invalid non-type annotation list[str]"
    )


@PYTHON_3_11_ON
def test_a_dict_of_str_to_any_binding_annotation_is_refused() -> None:
    def compose_digest(request: dict[str, Any]) -> dict[str, Any]:
        return request

    found = refusal(activity_app(compose_digest, "request"))

    assert (found.function_name, found.binding, found.error) == ("compose_digest", "request", "FunctionLoadError")
    assert found.text == (
        "cannot load the compose_digest function: binding request has invalid non-type annotation "
        "dict[str, typing.Any]"
    )


@PYTHON_3_11_ON
def test_an_out_of_a_pep585_generic_is_a_non_type_annotation() -> None:
    app = new_app()

    @app.route(route="probe")
    @app.queue_output(arg_name="msg", queue_name="q", connection="Storage")
    def queue_lines(req: func.HttpRequest, msg: func.Out[list[str]]) -> str:
        return ""

    assert worker_message(app) == (
        "cannot load the queue_lines function: binding msg has invalid non-type annotation "
        "azure.functions._abc.Out[list[str]]"
    )


@BEFORE_PYTHON_3_11
def test_pep585_generic_binding_annotations_load_before_python_3_11() -> None:
    def score_sentences(sentences: list[str]) -> list[float]:
        return []

    assert function_refusal(only_function(activity_app(score_sentences, "sentences"))) is None


def test_a_union_binding_annotation_is_refused_on_every_python() -> None:
    def lookup(payload: int | None) -> int:
        return 0

    assert worker_message(activity_app(lookup)) == (
        "cannot load the lookup function: binding payload has invalid non-type annotation int | None"
    )


def test_typing_any_is_a_class_only_from_python_3_11() -> None:
    def echo(payload: Any) -> Any:
        return payload

    found = function_refusal(only_function(activity_app(echo)))

    if PEP585_ALIASES_ARE_TYPES:
        assert found is not None
        assert found.text == "cannot load the echo function: binding payload has invalid non-type annotation typing.Any"
    else:
        assert found is None


@pytest.mark.parametrize(
    "annotation",
    [list, dict, str, typing.List[str], typing.Dict[str, Any], object],  # noqa: UP006 - the typing forms load
    ids=["list", "dict", "str", "typing.List[str]", "typing.Dict[str, Any]", "object"],
)
def test_classes_and_typing_generics_load(annotation: Any) -> None:
    def take(payload):
        return None

    take.__annotations__ = {"payload": annotation}

    assert function_refusal(only_function(activity_app(take))) is None


def test_an_unannotated_binding_parameter_loads() -> None:
    def take(payload, context):
        return None

    assert function_refusal(only_function(activity_app(take))) is None


# --- Out and the binding's direction ----------------------------------------------------------------


def test_out_on_an_input_binding_is_refused() -> None:
    def fill(payload: func.Out[str]) -> None:
        return None

    assert worker_message(activity_app(fill)) == (
        'cannot load the fill function: binding payload is declared to have the "in" direction in the '
        f"{DEFINITION}, but its annotation is azure.functions.Out in Python"
    )


def test_a_bare_out_annotation_is_refused() -> None:
    def fill(payload: func.Out) -> None:
        return None

    assert worker_message(activity_app(fill)) == (
        "cannot load the fill function: binding payload has invalid Out annotation <class 'azure.functions._abc.Out'>"
    )


def test_an_output_binding_without_out_is_refused() -> None:
    app = new_app()

    @app.route(route="probe")
    @app.queue_output(arg_name="msg", queue_name="q", connection="Storage")
    def enqueue(req: func.HttpRequest, msg: str) -> str:
        return ""

    assert worker_message(app) == (
        'cannot load the enqueue function: binding msg is declared to have the "out" direction, but its '
        "annotation in Python is not a subclass of azure.functions.Out"
    )


@pytest.mark.parametrize(("data_type", "shown"), [(None, "None"), (DataType.STRING, "1")])
def test_an_out_type_the_binding_cannot_take_is_refused(data_type: DataType | None, shown: str) -> None:
    app = new_app()

    @app.route(route="probe")
    @app.queue_output(arg_name="msg", queue_name="q", connection="Storage", data_type=data_type)
    def enqueue(req: func.HttpRequest, msg: func.Out[int]) -> str:
        return ""

    # The worker tells "no dataType" from "undefined" by identity with 0, so a missing one shows as "None".
    assert worker_message(app) == (
        f"cannot load the enqueue function: 'msg' binding type \"queue\" and dataType \"{shown}\" in {DEFINITION} "
        "do not match the corresponding function parameter's Python type annotation \"int\""
    )


def test_an_http_trigger_annotated_with_another_class_is_refused() -> None:
    def handle(req: dict) -> func.HttpResponse:
        return func.HttpResponse("")

    assert worker_message(route_app(handle)) == (
        f"cannot load the handle function: 'req' binding type \"httpTrigger\" and dataType \"None\" in {DEFINITION} "
        "do not match the corresponding function parameter's Python type annotation \"dict\""
    )


def test_inout_bindings_are_refused() -> None:
    class InOutBinding(Binding):
        @staticmethod
        def get_binding_name() -> str:
            return "probeBinding"

        def __init__(self, name: str) -> None:
            super().__init__(name=name, direction=BindingDirection.INOUT)

    def handle(req: func.HttpRequest, both: str) -> str:
        return ""

    function = func.Function(handle, "function_app.py")
    function.add_trigger(HttpTrigger(name="req"))
    function.add_binding(InOutBinding("both"))

    found = function_refusal(function)

    assert found is not None
    assert found.text == 'cannot load the handle function: "inout" bindings are not supported'


def test_a_return_binding_that_is_not_an_output_is_refused() -> None:
    class InboundReturn(Binding):
        @staticmethod
        def get_binding_name() -> str:
            return "http"

        def __init__(self) -> None:
            super().__init__(name="$return", direction=BindingDirection.IN)

    def handle(req: func.HttpRequest) -> str:
        return ""

    function = func.Function(handle, "function_app.py")
    function.add_trigger(HttpTrigger(name="req"))
    function.add_binding(InboundReturn())

    found = function_refusal(function)

    assert found is not None
    assert found.text == 'cannot load the handle function: "$return" binding must have direction set to "out"'


# --- parameters and bindings that do not pair up ----------------------------------------------------


def test_a_parameter_without_a_binding_is_refused() -> None:
    def handle(req: func.HttpRequest, extra: str) -> func.HttpResponse:
        return func.HttpResponse("")

    assert worker_message(route_app(handle)) == (
        f"cannot load the handle function: the following parameters are declared in Python but not in the {DEFINITION}:"
        "  {'extra'}"
    )


def test_a_binding_without_a_parameter_is_refused() -> None:
    def tick() -> None:
        return None

    assert worker_message(activity_app(tick)) == (
        f"cannot load the tick function: the following parameters are declared in the {DEFINITION} but not in Python: "
        "{'payload'}"
    )


# --- the context parameter -------------------------------------------------------------------------


def test_a_context_parameter_annotated_with_another_class_is_refused() -> None:
    def handle(payload: str, context: str) -> None:
        return None

    assert worker_message(activity_app(handle)) == (
        "cannot load the handle function: the \"context\" parameter is expected to be of type "
        "azure.functions.Context, got <class 'str'>"
    )


def test_a_context_parameter_of_type_context_loads() -> None:
    def handle(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return func.HttpResponse("")

    assert function_refusal(only_function(route_app(handle))) is None


def test_an_orchestrator_whose_context_binding_is_not_named_context_is_refused() -> None:
    # The SDK wraps an orchestrator in handle(context: OrchestrationContext); the worker takes that
    # unbound `context` for the invocation context, and refuses its annotation.
    app = new_app()

    @app.orchestration_trigger(context_name="ctx")
    def run(ctx: df.DurableOrchestrationContext) -> Any:
        yield ctx.call_activity("step")

    assert worker_message(app) == (
        "cannot load the run function: the \"context\" parameter is expected to be of type azure.functions.Context, "
        "got <class 'azure.functions._durable_functions.OrchestrationContext'>"
    )


def test_durable_functions_of_the_sdk_load() -> None:
    app = new_app()

    @app.orchestration_trigger(context_name="context")
    def run(context: df.DurableOrchestrationContext) -> Any:
        yield context.call_activity("step")

    @app.entity_trigger(context_name="context", entity_name="Counter")
    def counter(context: df.DurableEntityContext) -> None:
        context.set_state(1)

    @app.route(route="start", methods=["POST"])
    @app.durable_client_input(client_name="client")
    async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
        return func.HttpResponse("")

    functions = app.get_functions()

    assert len(functions) == 3
    assert app_refusals(functions) == []


# --- return annotations (functions with a $return binding) ------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (dict, 'Python return annotation "dict" does not match binding type "http"'),
        (None, 'Python return annotation "NoneType" does not match binding type "http"'),
        (func.Out[str], "return annotation should not be azure.functions.Out"),
        (typing.Optional[func.HttpResponse],  # noqa: UP045 - the typing form is the case
         "has invalid non-type return annotation typing.Optional[azure.functions._http.HttpResponse]"),
    ],
    ids=["dict", "None", "Out", "Optional"],
)
def test_an_http_return_annotation_the_output_cannot_take_is_refused(annotation: Any, message: str) -> None:
    def handle(req: func.HttpRequest):
        return None

    handle.__annotations__ = {"req": func.HttpRequest, "return": annotation}

    assert worker_message(route_app(handle)) == f"cannot load the handle function: {message}"


@PYTHON_3_11_ON
def test_a_pep585_http_return_annotation_is_refused() -> None:
    def handle(req: func.HttpRequest) -> list[str]:
        return []

    assert worker_message(route_app(handle)) == (
        "cannot load the handle function: has invalid non-type return annotation list[str]"
    )


def test_return_annotations_of_functions_without_a_return_binding_are_not_checked() -> None:
    # An activity's result is an implicit output: the worker checks no return annotation.
    def split(payload: str) -> list[str] | None:
        return None

    assert function_refusal(only_function(activity_app(split))) is None


# --- annotations the worker itself fails on ---------------------------------------------------------


def test_an_optional_binding_annotation_fails_the_worker_with_its_type_error() -> None:
    # The worker asks azurefunctions-extensions-base about every annotation first; for typing.Optional
    # that question raises before the worker's own checks run.
    def lookup(payload: typing.Optional[int]) -> int:  # noqa: UP045 - the typing form is the case
        return 0

    found = refusal(activity_app(lookup))

    assert (found.error, found.text, found.binding) == ("TypeError", "issubclass() arg 1 must be a class", "payload")
    assert str(found) == (
        "TypeError: issubclass() arg 1 must be a class (raised by the worker for function lookup, binding payload)"
    )


def test_an_annotation_that_does_not_resolve_fails_the_worker_with_its_name_error() -> None:
    def lookup(payload: "NoSuchType") -> int:  # noqa: F821 - unresolvable on purpose
        return 0

    found = refusal(activity_app(lookup))

    assert (found.error, found.text) == ("NameError", "name 'NoSuchType' is not defined")


# --- the app as a whole ------------------------------------------------------------------------------


def test_every_refused_function_is_reported_in_one_paragraph() -> None:
    app = new_app()

    @app.activity_trigger(input_name="payload")
    def fine(payload: str) -> str:
        return payload

    @app.activity_trigger(input_name="payload")
    def first(payload: int | None) -> None:
        return None

    @app.activity_trigger(input_name="payload")
    def second(payload: func.Out[str]) -> None:
        return None

    with pytest.raises(FunctionRefusedError) as refused:
        check_app_functions(app.get_functions())

    message = str(refused.value)
    assert refused.value.function_names == ("first", "second")
    assert message.startswith("Worker failed to index functions: ")
    assert "FunctionLoadError: cannot load the first function: binding payload has invalid non-type" in message
    assert "FunctionLoadError: cannot load the second function: binding payload is declared" in message
    assert "fine" not in message
    assert "\n" not in message
    assert "Annotate a binding parameter with a class" in message  # said once, for the non-type annotation


def test_the_loader_refuses_an_app_the_worker_would_refuse() -> None:
    app = new_app()

    @app.route(route="probe")
    def handle(req: func.HttpRequest, extra: str) -> func.HttpResponse:
        return func.HttpResponse("")

    with pytest.raises(FunctionRefusedError, match="cannot load the handle function"):
        index_functions(app)


def test_duplicate_function_names_fail_the_indexing() -> None:
    app = new_app()

    @app.function_name("twice")
    @app.activity_trigger(input_name="payload")
    def one(payload: str) -> str:
        return payload

    @app.function_name("twice")
    @app.activity_trigger(input_name="payload")
    def two(payload: str) -> str:
        return payload

    with pytest.raises(AppLoadError) as failed:
        index_functions(app)

    assert str(failed.value) == (
        "Worker failed to index functions: ValueError: Function twice does not have a unique function name. "
        "Please change @app.function_name() or the function method name to be unique."
    )
