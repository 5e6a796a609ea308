"""The checks the Python worker makes of each function when it loads an app, so funchost refuses what Azure refuses.

After ``get_functions()``, the worker registers every function (``functions.Registry.add_indexed_function``),
comparing the Python signature and its annotations with the function's bindings. The first function
it cannot register fails the indexing of the whole app ("Worker failed to index functions"): on Azure
none of the app's functions runs. Without these checks, a function that runs under funchost could take
a deployed app down.

The rules and their wording are matched against ``workers/azure_functions_worker/functions.py`` and
``workers/azure_functions_worker/bindings/meta.py`` of Azure/azure-functions-python-worker (the layout
from worker 4.38 on; its ``pyproject.toml`` pins azure-functions 1.26.0b3 for Python 3.10-3.12), and were
run against worker 4.34.0 (``azure_functions_worker/functions.py``): same rules, and messages that say
"function.json" where the later ones say "function definition (function.json or function decorators)".
Python 3.13 and later run another worker (the proxy worker with ``azure_functions_runtime``): same
rules, a few messages worded differently; this module keeps the wording of 3.10-3.12.

What the worker checks, for each function, in its order:

1. its annotations resolve (``typing.get_type_hints``; a NameError fails the indexing);
2. no binding has the "inout" direction, and a ``$return`` binding has the "out" direction;
3. a ``context`` parameter that no binding names is the invocation context: if annotated, with a class
   named ``Context``;
4. every other parameter has a binding and every binding (but ``$return``) has a parameter;
5. each annotated binding parameter: the annotation is a class or a ``typing`` generic (see
   ``PEP585_ALIASES_ARE_TYPES``), ``azure.functions.Out[T]`` exactly for "out" bindings, and its type
   matches the binding's converter (``str``/``bytes`` go to the generic binding);
6. with a ``$return`` binding, an annotated return is a class that the binding's converter accepts,
   and not ``azure.functions.Out``.

Where the worker itself fails on an annotation (``issubclass`` of a ``typing.Optional[...]``, say), the
refusal carries the exception it raises. Not checked: the worker's "HTTP streaming" (http v2) extension
types and SDK-type (deferred) bindings, which funchost does not serve; such parameters pass unjudged.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import sys
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from funchost.errors import FunctionRefusedError

# A PEP 585 alias (list[str], dict[str, Any]) passes ``isinstance(alias, type)`` on Python 3.9 and 3.10,
# where types.GenericAlias forwards ``__class__`` to its origin, and fails it from 3.11 on. The worker
# accepts an annotation that is a class or a typing generic, so on 3.11+ it refuses ``sentences:
# list[str]`` ("invalid non-type annotation") and on 3.10 it loads it. ``typing.Any`` goes the other way:
# a class from 3.11 on, refused on 3.10. The checks below use ``isinstance(..., type)`` as the worker
# does, so they follow the running interpreter.
PEP585_ALIASES_ARE_TYPES = sys.version_info < (3, 11)

FUNCTION_LOAD_ERROR = "FunctionLoadError"

# Values of the worker's protos.BindingInfo, which azure.functions' Binding.direction and .data_type return.
_OUT, _INOUT = 1, 2
_DATA_TYPE_UNDEFINED = 0
_RETURN = "$return"
_CONTEXT = "context"
_DEFINITION = "function definition (function.json or function decorators)"

# typing's own generic aliases (typing.List[str], func.Out[str], a subscripted Generic class): the
# worker's vendored typing_inspect recognises these, and not types.GenericAlias (list[str]).
_TYPING_ALIAS: type = getattr(typing, "_GenericAlias")  # noqa: B009 - private, absent from typeshed
_TYPING_SPECIAL_ALIAS: type = getattr(typing, "_SpecialGenericAlias")  # noqa: B009
_NOT_GENERIC_ORIGINS: tuple[object, ...] = (typing.Union, tuple, typing.ClassVar, collections.abc.Callable)

_NON_TYPE_HINT = (
    "Annotate a binding parameter with a class (str, list, dict, a dataclass...), a typing generic, or nothing: "
    "from Python 3.11 on, PEP 585 generics such as list[str] are not classes."
)


@dataclass(frozen=True)
class Refusal:
    """A function the worker would not load, and what it would raise.

    Attributes:
        function_name: the function's name, as the worker and the host report it.
        binding: the binding (parameter) the rule is about, or None for a rule about the whole function.
        error: the exception the worker raises: ``FunctionLoadError`` for its own checks, or the error an
            annotation makes it raise (``NameError``, ``TypeError``...).
        text: that exception's message, word for word.
        hint: what to change, when funchost has more to say than the worker.
    """

    function_name: str
    binding: str | None
    error: str
    text: str
    hint: str | None = None

    def __str__(self) -> str:
        if self.error == FUNCTION_LOAD_ERROR:
            return f"{self.error}: {self.text}"
        # The worker's own message does not say where; the host shows it without the function's name.
        where = f"function {self.function_name}" + (f", binding {self.binding}" if self.binding else "")
        return f"{self.error}: {self.text} (raised by the worker for {where})"


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


class _Function:
    """One function as the worker reads it, and the refusal of each rule in the worker's wording."""

    def __init__(self, function: func.Function) -> None:
        self.name = str(function.get_function_name())
        self.function = function
        self.binding: str | None = None  # the binding being checked, for errors the worker does not word

    def refuse(self, binding: str | None, message: str, hint: str | None = None) -> _Refused:
        text = f"cannot load the {self.name} function: {message}"
        return _Refused(Refusal(self.name, binding, FUNCTION_LOAD_ERROR, text, hint))

    def crashed(self, exc: Exception) -> Refusal:
        return Refusal(self.name, self.binding, type(exc).__name__, str(exc))


def _is_typing_generic(annotation: object) -> bool:
    """The worker's ``is_generic_type``: a Generic subclass, or a typing alias but Union, Tuple, ClassVar, Callable."""
    if isinstance(annotation, type):
        return issubclass(annotation, typing.Generic)
    return isinstance(annotation, (_TYPING_ALIAS, _TYPING_SPECIAL_ALIAS)) and (
        getattr(annotation, "__origin__", None) not in _NOT_GENERIC_ORIGINS
    )


def _typing_origin(annotation: object) -> object:
    """The worker's ``get_origin``: the origin of a subscripted typing alias, else None (Generic for Generic)."""
    if isinstance(annotation, _TYPING_ALIAS):
        origin = getattr(annotation, "__origin__", None)
        return None if origin is typing.ClassVar else origin
    return typing.Generic if annotation is typing.Generic else None


def _is_out(annotation: object) -> bool:
    """Whether an annotation is ``azure.functions.Out`` (any class named Out), bare or subscripted."""
    origin = _typing_origin(annotation) if _is_typing_generic(annotation) else None
    candidate = annotation if origin is None else origin
    return isinstance(candidate, type) and candidate.__name__ == "Out"


def _type_name(pytype: object) -> str:
    return str(getattr(pytype, "__name__", repr(pytype)))


class _GenericBinding:
    """The worker's converter for a binding type azure.functions has none for (and for ``generic``)."""

    @staticmethod
    def check_input_type_annotation(pytype: Any) -> bool:
        return issubclass(pytype, (str, bytes))

    @staticmethod
    def check_output_type_annotation(pytype: Any) -> bool:
        return issubclass(pytype, (str, bytes, bytearray))


def _converter(binding_type: str) -> Any:
    """The converter the worker checks a binding type's annotations with: azure.functions' own, else generic."""
    registry = func.get_binding_registry()  # type: ignore[no-untyped-call]  # untyped in azure.functions
    return registry.get(binding_type) or _GenericBinding


def _has_implicit_output(binding_type: str) -> bool:
    converter = _converter(binding_type)
    if converter is _GenericBinding:
        return binding_type != "durableClient"
    return bool(getattr(converter, "has_implicit_output", lambda: False)())


def _sdk_type_registry() -> Any:
    try:
        module = importlib.import_module("azurefunctions.extensions.base")
    except ImportError:
        return None
    return module.get_binding_registry()


def _is_sdk_type(annotation: object) -> bool:
    """Whether the worker takes the parameter for an SDK-type (deferred) binding.

    The worker ships azurefunctions-extensions-base and asks its registry about every parameter before
    any other check; for an annotation whose typing origin is not a class (``typing.Optional[int]``,
    ``typing.Literal[...]``) that question raises ``TypeError: issubclass() arg 1 must be a class``.
    Without the extension installed here, only that failure is reproduced.
    """
    registry = _sdk_type_registry()
    if registry is not None:
        return bool(registry.check_supported_type(annotation))
    origin = typing.get_origin(annotation)
    if origin is not None:
        issubclass(origin, collections.abc.Iterable)
    return False


def _check_bindings(fn: _Function) -> tuple[dict[str, Any], bool, str | None]:
    """Rule 2, and what the worker derives from the bindings: the bound ones, $return, the return binding."""
    bound: dict[str, Any] = {}
    explicit_return = False
    return_binding: str | None = None
    for binding in fn.function.get_bindings():
        if binding.direction == _INOUT:
            raise fn.refuse(binding.name, '"inout" bindings are not supported')
        if binding.name == _RETURN and binding.direction != _OUT:
            raise fn.refuse(binding.name, '"$return" binding must have direction set to "out"')
        binding_type = binding.type or ""
        if binding.name == _RETURN:
            if not explicit_return:
                return_binding, explicit_return = binding_type, True
        else:
            bound[binding.name] = binding
            if not explicit_return and _has_implicit_output(binding_type):
                return_binding = binding_type
    return bound, explicit_return, return_binding


def _check_context(fn: _Function, params: dict[str, inspect.Parameter], bound: dict[str, Any],
                   annotations: dict[str, Any]) -> None:
    """Rule 3: an unbound ``context`` parameter is the invocation context, and leaves the parameters."""
    if _CONTEXT not in params or _CONTEXT in bound:
        return
    del params[_CONTEXT]
    if _CONTEXT in annotations:
        annotation = annotations[_CONTEXT]
        if not isinstance(annotation, type) or annotation.__name__ != "Context":
            raise fn.refuse(_CONTEXT, 'the "context" parameter is expected to be of type azure.functions.Context, '
                                      f"got {annotation!r}")


def _check_parameter(fn: _Function, param: str, binding: Any, annotations: dict[str, Any]) -> None:
    """Rule 5 for one parameter (the worker's ``validate_function_params`` loop)."""
    has_annotation = param in annotations
    annotation = annotations.get(param)
    deferred = _is_sdk_type(annotation)
    is_out = has_annotation and _is_out(annotation)
    is_out_binding = binding.direction == _OUT
    pytype = annotation
    if is_out:
        args = typing.get_args(annotation)
        if len(args) != 1:
            raise fn.refuse(param, f"binding {param} has invalid Out annotation {annotation!r}")
        pytype = args[0]
    if has_annotation and not isinstance(pytype, type) and not _is_typing_generic(pytype):
        raise fn.refuse(param, f"binding {param} has invalid non-type annotation {annotation!r}", _NON_TYPE_HINT)
    if is_out_binding and has_annotation and not is_out:
        raise fn.refuse(param, f'binding {param} is declared to have the "out" direction, but its annotation in '
                               "Python is not a subclass of azure.functions.Out")
    if not is_out_binding and is_out:
        raise fn.refuse(param, f'binding {param} is declared to have the "in" direction in the {_DEFINITION}, '
                               "but its annotation is azure.functions.Out in Python")
    if not has_annotation or deferred:
        return
    binding_type = binding.type
    if pytype in (str, bytes) and not _has_implicit_output(binding_type):
        binding_type = "generic"
    converter = _converter(binding_type)
    if is_out:
        matches = converter.check_output_type_annotation(pytype)
    else:
        matches = converter.check_input_type_annotation(pytype)
    if matches:
        return
    if binding.data_type != _DATA_TYPE_UNDEFINED:  # None (no dataType given) counts as defined, as in the worker
        raise fn.refuse(param, f'{param!r} binding type "{binding.type}" and dataType "{binding.data_type}" in '
                               f"{_DEFINITION} do not match the corresponding function parameter's Python type "
                               f'annotation "{_type_name(pytype)}"')
    raise fn.refuse(param, f'type of {param} binding in {_DEFINITION} "{binding.type}" does not match its Python '
                           f'annotation "{_type_name(pytype)}"')


def _check_return(fn: _Function, annotations: dict[str, Any], return_binding: str | None) -> None:
    """Rule 6: with a $return binding, the return annotation (the worker's ``get_function_return_type``)."""
    if "return" not in annotations:
        return
    annotation = annotations["return"]
    if _is_typing_generic(annotation):
        origin = _typing_origin(annotation)
        if origin is None:  # the worker reads origin.__name__ regardless (typing.List, a bare Generic class)
            raise AttributeError("'NoneType' object has no attribute '__name__'")
        if _type_name(origin) == "Out":
            raise fn.refuse(_RETURN, "return annotation should not be azure.functions.Out")
    if not isinstance(annotation, type):
        raise fn.refuse(_RETURN, f"has invalid non-type return annotation {annotation!r}")
    binding_type = return_binding or ""
    if not _converter(binding_type).check_output_type_annotation(annotation):
        raise fn.refuse(_RETURN, f'Python return annotation "{annotation.__name__}" does not match binding type '
                                 f'"{binding_type}"')


def _check(fn: _Function) -> None:
    user_function = fn.function.get_user_function()
    params = dict(inspect.signature(user_function).parameters)
    annotations = typing.get_type_hints(user_function)
    bound, explicit_return, return_binding = _check_bindings(fn)
    _check_context(fn, params, bound, annotations)
    unbound = set(params) - set(bound)
    if unbound:
        raise fn.refuse(None, f"the following parameters are declared in Python but not in the {_DEFINITION}:  "
                              f"{unbound!r}")
    missing = set(bound) - set(params)
    if missing:
        raise fn.refuse(None, f"the following parameters are declared in the {_DEFINITION} but not in Python: "
                              f"{missing!r}")
    for param in params:
        fn.binding = param
        _check_parameter(fn, param, bound[param], annotations)
    fn.binding = _RETURN
    if explicit_return:
        _check_return(fn, annotations, return_binding)


def function_refusal(function: func.Function) -> Refusal | None:
    """What the worker would raise when it loads ``function``, or None if it loads it."""
    fn = _Function(function)
    try:
        _check(fn)
    except _Refused as refused:
        return refused.refusal
    except Exception as exc:  # the worker fails on the same call, and the app's indexing with it
        return fn.crashed(exc)
    return None


def app_refusals(functions: Iterable[func.Function]) -> list[Refusal]:
    """The refusal of each function the worker would not load, in the app's order.

    The worker stops at the first; all are listed so that one start-up shows every function to fix.
    """
    return [refusal for refusal in map(function_refusal, functions) if refusal is not None]


def refusal_message(refusals: list[Refusal]) -> str:
    """One paragraph: the host's words for a failed indexing, each refusal as the worker raises it, the hints."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    count = f"{len(refusals)} function" + ("s" if len(refusals) > 1 else "")
    parts = [f"Worker failed to index functions: the Python worker (on Python {python}) refuses {count} of "
             "this app, and with that the whole app."]
    parts += [f"{refusal}." for refusal in refusals]
    parts += list(dict.fromkeys(refusal.hint for refusal in refusals if refusal.hint))
    return " ".join(parts)


def check_app_functions(functions: Iterable[func.Function]) -> None:
    """Refuse the app, as the worker does, if it would not load one of ``functions``.

    Raises:
        FunctionRefusedError: naming each refused function, its binding and the worker's message.
    """
    refusals = app_refusals(functions)
    if refusals:
        raise FunctionRefusedError(refusal_message(refusals), tuple(r.function_name for r in refusals))
