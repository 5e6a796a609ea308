"""The tool registry: tool definitions built from typed Python functions, argument validation, execution.

A tool is a plain function (sync or async) decorated with `@tool`. Its JSON schema, in the
chat-completions function-tool format, comes from the signature and the Google-style docstring:

    @tool
    def search_knowledge(query: str, top_k: int = 3) -> list[dict[str, Any]]:
        '''Search the knowledge base.

        Args:
            query: Words to look for.
            top_k: How many documents to return.
        '''

Supported parameter types: `str`, `int`, `float`, `bool`, `list[str]` (and lists of the other scalars),
`Literal[...]` of strings or ints, and `X | None`. A parameter with a default, or typed `X | None`, is
optional. A parameter named `context` annotated `ToolContext` is not part of the schema: the registry
passes the call's id, idempotency key and services (clock, outbox, knowledge base) through it, so a test
can fix the clock and swap the outbox, and a tool never reaches for globals.

Arguments from a model are untrusted: `validate` checks them against the schema and raises
`ToolArgumentError` with a message the model can act on (which argument, what was expected).
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, overload

from agents.errors import ToolArgumentError, ToolNotFoundError
from agents.tools.context import ToolContext, ToolServices

logger = logging.getLogger(__name__)

ToolFunction = Callable[..., Any]


@dataclass(frozen=True)
class Parameter:
    """One parameter of a tool, as validated: its JSON schema and how to check a value against it."""

    name: str
    schema: dict[str, Any]
    required: bool
    kind: str  # "string" | "integer" | "number" | "boolean" | "array" | "enum"
    item_kind: str | None = None
    choices: tuple[Any, ...] = ()
    nullable: bool = False


@dataclass(frozen=True)
class Tool:
    """A registered tool: its name, description, parameters and the function that runs it."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    function: ToolFunction
    requires_approval: bool = False
    takes_context: bool = False

    def schema(self) -> dict[str, Any]:
        """The chat-completions function-tool definition of this tool."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {
                    "type": "object",
                    "properties": {p.name: dict(p.schema) for p in self.parameters},
                    "required": [p.name for p in self.parameters if p.required],
                    "additionalProperties": False,
                },
            },
        }


_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@overload
def tool(function: ToolFunction, /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, requires_approval: bool = False
) -> Callable[[ToolFunction], Tool]: ...


def tool(
    function: ToolFunction | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    requires_approval: bool = False,
) -> Tool | Callable[[ToolFunction], Tool]:
    """Make a `Tool` of a typed function; usable bare (`@tool`) or with options (`@tool(requires_approval=True)`).

    Args:
        function: The function; its signature gives the parameters, its docstring the descriptions.
        name: Tool name; defaults to the function's name.
        description: Tool description; defaults to the docstring's first paragraph.
        requires_approval: True when a human must approve each call before it runs.

    Raises:
        TypeError: A parameter has no annotation or a type the schema builder does not support.
    """

    def build(fn: ToolFunction) -> Tool:
        return _build_tool(fn, name=name, description=description, requires_approval=requires_approval)

    return build(function) if function is not None else build


def _build_tool(fn: ToolFunction, *, name: str | None, description: str | None, requires_approval: bool) -> Tool:
    tool_name = name or fn.__name__
    if not _TOOL_NAME.match(tool_name):
        raise ValueError(f"tool name {tool_name!r} must be 1-64 letters, digits, '_' or '-'")
    summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
    hints = typing.get_type_hints(fn)
    parameters: list[Parameter] = []
    takes_context = False
    for param in inspect.signature(fn).parameters.values():
        annotation = hints.get(param.name)
        if param.name == "context" and annotation is ToolContext:
            takes_context = True
            continue
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"tool {tool_name!r}: *args/**kwargs cannot be described to a model")
        if annotation is None:
            raise TypeError(f"tool {tool_name!r}: parameter {param.name!r} needs a type annotation")
        parameters.append(_parameter(tool_name, param, annotation, arg_docs.get(param.name)))
    return Tool(
        name=tool_name,
        description=description or summary or tool_name,
        parameters=tuple(parameters),
        function=fn,
        requires_approval=requires_approval,
        takes_context=takes_context,
    )


_SCALARS: dict[Any, tuple[str, str]] = {
    str: ("string", "string"),
    int: ("integer", "integer"),
    float: ("number", "number"),
    bool: ("boolean", "boolean"),
}


def _parameter(tool_name: str, param: inspect.Parameter, annotation: Any, doc: str | None) -> Parameter:
    nullable = False
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1 or len(typing.get_args(annotation)) != 2:
            raise TypeError(f"tool {tool_name!r}: parameter {param.name!r}: only `X | None` unions are supported")
        nullable = True
        annotation = members[0]
        origin = typing.get_origin(annotation)

    schema: dict[str, Any]
    item_kind: str | None = None
    choices: tuple[Any, ...] = ()
    if annotation in _SCALARS:
        kind = _SCALARS[annotation][0]
        schema = {"type": kind}
    elif origin is list and len(typing.get_args(annotation)) == 1 and typing.get_args(annotation)[0] in _SCALARS:
        kind = "array"
        item_kind = _SCALARS[typing.get_args(annotation)[0]][0]
        schema = {"type": "array", "items": {"type": item_kind}}
    elif origin is Literal:
        choices = typing.get_args(annotation)
        if not choices or not all(type(c) in (str, int) for c in choices) or len({type(c) for c in choices}) != 1:
            raise TypeError(f"tool {tool_name!r}: parameter {param.name!r}: Literal of strings or of ints only")
        kind = "enum"
        schema = {"type": "string" if isinstance(choices[0], str) else "integer", "enum": list(choices)}
    else:
        raise TypeError(f"tool {tool_name!r}: parameter {param.name!r}: unsupported type {annotation!r}")

    has_default = param.default is not inspect.Parameter.empty
    if doc:
        schema["description"] = doc
    if has_default and param.default is not None:
        schema["default"] = param.default
    return Parameter(
        name=param.name,
        schema=schema,
        required=not has_default and not nullable,
        kind=kind,
        item_kind=item_kind,
        choices=choices,
        nullable=nullable,
    )


_ARGS_HEADER = re.compile(r"^(Args|Arguments|Parameters):\s*$")
_SECTION_HEADER = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")
_ARG_LINE = re.compile(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph of a Google-style docstring, and the descriptions of its `Args:` entries."""
    lines = doc.splitlines()
    summary_lines: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION_HEADER.match(line.strip()):
            break
        summary_lines.append(line.strip())
    args: dict[str, str] = {}
    in_args = False
    current: str | None = None
    args_indent: int | None = None
    for line in lines:
        stripped = line.strip()
        if _ARGS_HEADER.match(stripped):
            in_args, current, args_indent = True, None, None
            continue
        if not in_args:
            continue
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0 and _SECTION_HEADER.match(stripped):
            in_args = False
            continue
        if args_indent is None:
            args_indent = indent
        match = _ARG_LINE.match(stripped)
        if indent == args_indent and match:
            current = match.group(1)
            args[current] = match.group(2).strip()
        elif current is not None and indent > args_indent:
            args[current] = f"{args[current]} {stripped}".strip()
    return " ".join(summary_lines), args


class ToolRegistry:
    """The tools an app offers, looked up by name, validated and run.

    Args:
        tools: Tools to register.
        services: Clock, outbox and knowledge base handed to tools through `ToolContext`. A registry used
            only for schemas and validation (the run orchestration's) needs none.
    """

    def __init__(self, tools: Iterable[Tool] = (), *, services: ToolServices | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self.services = services or ToolServices()
        for item in tools:
            self.register(item)

    def register(self, item: Tool) -> None:
        if item.name in self._tools:
            raise ValueError(f"a tool named {item.name!r} is already registered")
        self._tools[item.name] = item

    def with_services(self, services: ToolServices) -> ToolRegistry:
        """The same tools, bound to other services."""
        return ToolRegistry(self._tools.values(), services=services)

    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool:
        """The tool called `name`.

        Raises:
            ToolNotFoundError: No such tool; the message lists the tools there are.
        """
        try:
            return self._tools[name]
        except KeyError:
            raise ToolNotFoundError(
                f"there is no tool named {name!r}; available tools: {', '.join(sorted(self._tools)) or 'none'}"
            ) from None

    def schemas(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Function-tool definitions of the named tools (all tools when `names` is None), in the order given."""
        selected = self._tools.keys() if names is None else names
        return [self.get(n).schema() for n in selected]

    def requires_approval(self, name: str) -> bool:
        return self.get(name).requires_approval

    def validate(self, name: str, arguments: object) -> dict[str, Any]:
        """Check a model's arguments for tool `name`; returns them normalised (ints given as 3.0 become 3).

        Raises:
            ToolNotFoundError: No such tool.
            ToolArgumentError: Not an object, an unknown or missing argument, or a value of the wrong type;
                the message names the argument and says what is expected.
        """
        spec = self.get(name)
        if not isinstance(arguments, Mapping):
            raise ToolArgumentError(f"arguments of {name!r} must be a JSON object, got {_json_type(arguments)}")
        by_name = {p.name: p for p in spec.parameters}
        unknown = sorted(str(k) for k in arguments if k not in by_name)
        if unknown:
            expected = ", ".join(by_name) or "no arguments"
            raise ToolArgumentError(
                f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                f"for tool {name!r}; expected: {expected}"
            )
        missing = [p for p in spec.parameters if p.required and p.name not in arguments]
        if missing:
            listing = ", ".join(f"{p.name!r} ({_describe(p)})" for p in missing)
            raise ToolArgumentError(
                f"missing required argument{'s' if len(missing) > 1 else ''} {listing} for tool {name!r}"
            )
        return {key: _check(name, by_name[key], value) for key, value in arguments.items()}

    async def run(
        self,
        name: str,
        arguments: object,
        call_id: str,
        *,
        idempotency_key: str | None = None,
    ) -> Any:
        """Validate `arguments` and run tool `name`; returns its JSON-serialisable result.

        Args:
            name: Tool name.
            arguments: The model's arguments (a JSON object).
            call_id: The model's id of this call.
            idempotency_key: Key of the call's side effect; defaults to `call_id`.

        Raises:
            ToolNotFoundError, ToolArgumentError: The call cannot run as asked.
            ToolError: The tool refused (raised by the tool itself).
            Exception: Anything else a tool raises is an infrastructure fault and propagates as it is.
        """
        spec = self.get(name)
        kwargs = self.validate(name, arguments)
        if spec.takes_context:
            kwargs["context"] = ToolContext(
                call_id=call_id, idempotency_key=idempotency_key or call_id, services=self.services
            )
        logger.debug("running tool %s (call %s)", name, call_id)
        result = spec.function(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"tool {name!r} returned a value that is not JSON-serialisable: {exc}") from exc


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _describe(param: Parameter) -> str:
    if param.kind == "enum":
        return "one of " + ", ".join(json.dumps(c) for c in param.choices)
    if param.kind == "array":
        return f"an array of {param.item_kind}s"
    return {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false"}[param.kind]


def _check_scalar(kind: str, value: object) -> tuple[bool, object]:
    if kind == "string":
        return isinstance(value, str), value
    if kind == "boolean":
        return isinstance(value, bool), value
    if isinstance(value, bool):  # bool is an int in Python, never in JSON Schema
        return False, value
    if kind == "integer":
        if isinstance(value, int):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return False, value
    if kind == "number":
        return isinstance(value, (int, float)), value
    return False, value


def _check(tool_name: str, param: Parameter, value: object) -> object:
    if value is None:
        if param.nullable or not param.required:
            return None
        raise ToolArgumentError(f"argument {param.name!r} of tool {tool_name!r} must be {_describe(param)}, got null")
    if param.kind == "enum":
        if value in param.choices and type(value) is type(param.choices[0]):
            return value
        raise ToolArgumentError(
            f"argument {param.name!r} of tool {tool_name!r} must be {_describe(param)}, got {json.dumps(value)}"
        )
    if param.kind == "array":
        if not isinstance(value, list):
            raise ToolArgumentError(
                f"argument {param.name!r} of tool {tool_name!r} must be {_describe(param)}, got {_json_type(value)}"
            )
        items: list[object] = []
        for index, item in enumerate(value):
            ok, normalised = _check_scalar(param.item_kind or "", item)
            if not ok:
                raise ToolArgumentError(
                    f"argument {param.name!r} of tool {tool_name!r}: item {index} must be a {param.item_kind}, "
                    f"got {_json_type(item)}"
                )
            items.append(normalised)
        return items
    ok, normalised = _check_scalar(param.kind, value)
    if not ok:
        raise ToolArgumentError(
            f"argument {param.name!r} of tool {tool_name!r} must be {_describe(param)}, got {_json_type(value)}"
        )
    return normalised
