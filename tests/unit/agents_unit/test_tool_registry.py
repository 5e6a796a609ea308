"""Tool schemas come from typed signatures and docstrings; arguments from a model are validated before a tool runs."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import pytest

from agents.errors import ToolArgumentError, ToolNotFoundError
from agents.tools.context import ToolContext, ToolServices
from agents.tools.registry import ToolRegistry, tool
from tests.unit.agents_unit.conftest import FIXED_NOW, fixed_clock


@tool
def book_room(
    room: str,
    people: int,
    hours: float,
    projector: bool,
    attendees: list[str],
    size: Literal["small", "large"],
    note: str | None,
    floor: int = 1,
) -> dict[str, Any]:
    """Book a meeting room.

    Longer explanation that is not part of the description.

    Args:
        room: The room's name.
        people: How many people come.
        hours: Length of the booking,
            in hours.
        projector: Whether a projector is needed.
        attendees: Names of the attendees.
        size: Room size.
        note: A note for the reception.
        floor: Preferred floor.

    Returns:
        The booking.
    """
    return {"room": room, "people": people, "hours": hours, "floor": floor}


def test_schema_from_signature_and_docstring() -> None:
    assert book_room.schema() == {
        "type": "function",
        "function": {
            "name": "book_room",
            "description": "Book a meeting room.",
            "parameters": {
                "type": "object",
                "properties": {
                    "room": {"type": "string", "description": "The room's name."},
                    "people": {"type": "integer", "description": "How many people come."},
                    "hours": {"type": "number", "description": "Length of the booking, in hours."},
                    "projector": {"type": "boolean", "description": "Whether a projector is needed."},
                    "attendees": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Names of the attendees.",
                    },
                    "size": {"type": "string", "enum": ["small", "large"], "description": "Room size."},
                    "note": {"type": "string", "description": "A note for the reception."},
                    "floor": {"type": "integer", "description": "Preferred floor.", "default": 1},
                },
                "required": ["room", "people", "hours", "projector", "attendees", "size"],
                "additionalProperties": False,
            },
        },
    }


def test_options_of_the_decorator_and_the_context_parameter_is_hidden() -> None:
    @tool(name="ping-tool", description="Answers pong.", requires_approval=True)
    def ping(context: ToolContext) -> str:
        return "pong"

    assert ping.name == "ping-tool" and ping.requires_approval and ping.takes_context
    assert ping.schema()["function"]["parameters"]["properties"] == {}
    assert ping.schema()["function"]["description"] == "Answers pong."


def test_unsupported_signatures_are_refused_when_the_tool_is_defined() -> None:
    with pytest.raises(TypeError, match="needs a type annotation"):

        @tool
        def untyped(x) -> None:  # type: ignore[no-untyped-def]
            """x"""

    with pytest.raises(TypeError, match="unsupported type"):

        @tool
        def nested(x: dict[str, int]) -> None:
            """x"""

    with pytest.raises(TypeError, match="only `X \\| None` unions"):

        @tool
        def union(x: int | str) -> None:
            """x"""

    with pytest.raises(ValueError, match="must be 1-64 letters"):
        tool(name="has space")(book_room.function)


REGISTRY = ToolRegistry([book_room])
VALID = {
    "room": "Blue",
    "people": 4,
    "hours": 1.5,
    "projector": False,
    "attendees": ["a", "b"],
    "size": "small",
    "note": None,
}


def test_valid_arguments_are_returned_normalised() -> None:
    assert REGISTRY.validate("book_room", VALID) == VALID
    # A whole float for an integer is accepted as the integer; an int for a number stays an int.
    assert REGISTRY.validate("book_room", {**VALID, "people": 4.0, "hours": 2})["people"] == 4
    assert REGISTRY.validate("book_room", {k: v for k, v in VALID.items() if k != "note"}) is not None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {k: v for k, v in VALID.items() if k != "room"},
            "missing required argument 'room' (a string) for tool 'book_room'",
        ),
        (
            {k: v for k, v in VALID.items() if k not in ("room", "size")},
            "missing required arguments 'room' (a string), 'size' (one of \"small\", \"large\") for tool 'book_room'",
        ),
        (
            {**VALID, "colour": "red"},
            "unknown argument 'colour' for tool 'book_room'; "
            "expected: room, people, hours, projector, attendees, size, note, floor",
        ),
        ({**VALID, "people": "four"}, "argument 'people' of tool 'book_room' must be an integer, got string"),
        ({**VALID, "people": 4.5}, "argument 'people' of tool 'book_room' must be an integer, got number"),
        ({**VALID, "people": True}, "argument 'people' of tool 'book_room' must be an integer, got boolean"),
        ({**VALID, "hours": "1"}, "argument 'hours' of tool 'book_room' must be a number, got string"),
        ({**VALID, "projector": "yes"}, "argument 'projector' of tool 'book_room' must be true or false, got string"),
        (
            {**VALID, "attendees": "a"},
            "argument 'attendees' of tool 'book_room' must be an array of strings, got string",
        ),
        (
            {**VALID, "attendees": ["a", 2]},
            "argument 'attendees' of tool 'book_room': item 1 must be a string, got integer",
        ),
        (
            {**VALID, "size": "medium"},
            'argument \'size\' of tool \'book_room\' must be one of "small", "large", got "medium"',
        ),
        ({**VALID, "room": None}, "argument 'room' of tool 'book_room' must be a string, got null"),
        ([1, 2], "arguments of 'book_room' must be a JSON object, got array"),
    ],
)
def test_invalid_arguments_get_a_message_the_model_can_act_on(arguments: object, message: str) -> None:
    with pytest.raises(ToolArgumentError) as caught:
        REGISTRY.validate("book_room", arguments)
    assert str(caught.value) == message


def test_unknown_tool() -> None:
    with pytest.raises(ToolNotFoundError, match="there is no tool named 'fly'; available tools: book_room"):
        REGISTRY.validate("fly", {})


def test_run_passes_context_awaits_async_tools_and_checks_results_are_json() -> None:
    seen: list[ToolContext] = []

    @tool
    async def stamp(label: str, context: ToolContext) -> dict[str, str]:
        """Stamp a label with the time."""
        seen.append(context)
        return {"label": label, "at": context.now().isoformat()}

    @tool
    def opaque() -> object:
        """Returns something that is not JSON."""
        return object()

    registry = ToolRegistry([stamp, opaque], services=ToolServices(clock=fixed_clock))
    result = asyncio.run(registry.run("stamp", {"label": "x"}, "call-1", idempotency_key="run-1:call-1"))
    assert result == {"label": "x", "at": FIXED_NOW.isoformat()}
    assert (seen[0].call_id, seen[0].idempotency_key) == ("call-1", "run-1:call-1")
    asyncio.run(registry.run("stamp", {"label": "y"}, "call-2"))
    assert seen[1].idempotency_key == "call-2"  # defaults to the call id
    with pytest.raises(ToolArgumentError):
        asyncio.run(registry.run("stamp", {}, "call-3"))
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        asyncio.run(registry.run("opaque", {}, "call-4"))


def test_registry_lookup_and_schemas() -> None:
    with pytest.raises(ValueError, match="already registered"):
        ToolRegistry([book_room, book_room])
    assert REGISTRY.names() == ["book_room"] and "book_room" in REGISTRY
    assert REGISTRY.schemas() == [book_room.schema()]
    with pytest.raises(ToolNotFoundError):
        REGISTRY.schemas(["book_room", "missing"])
