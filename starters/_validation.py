"""Validation of request bodies and query parameters at the HTTP boundary, shared by the starters.

Each helper reads one field of a decoded JSON object (or one query parameter) and either returns it
typed or raises `BadRequestError` with a message naming the field and what it must be, so a handler
answers 400 before it starts anything. JSON `true` is never accepted as a number (bool is an int in
Python), and NaN or infinite numbers are refused.

A body is JSON the app can use or a 400 that says why: nesting deeper than 64 levels (Json.NET's default
`MaxDepth`, what the Functions host and the Durable extension read JSON with; Python's parser would fail
at about 1000 with a RecursionError) and an integer of more than 4300 digits (Python's conversion limit)
are refused by name. `NaN`, `Infinity` and overflowing numbers parse, and the field helpers refuse them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from typing import Any

from starters._http import BadRequestError

# Ids a client may choose (run ids, session ids): safe in a URL path and in a Durable instance id, so
# neither '.' nor '..', which URL paths fold away.
IDENTIFIER = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9_.:-]{1,100}$")
IDENTIFIER_RULE = "1 to 100 characters of letters, digits, '_', '.', ':' and '-' (not '.' or '..')"
MAX_JSON_DEPTH = 64
MAX_INT_DIGITS = 4300


class _UnusableJson(ValueError):
    """JSON that parses but that the app cannot use; the message says why."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _UnusableJson(f"it holds an integer of {digits} digits; at most {MAX_INT_DIGITS} are allowed")
    return int(text)


def _too_deep(value: Any) -> bool:
    """Whether `value` nests arrays and objects more than `MAX_JSON_DEPTH` levels, found without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            if level > MAX_JSON_DEPTH:
                return True
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def json_value(body: bytes) -> Any:
    """The request body as a JSON value the app can use.

    Raises:
        BadRequestError: the body is not UTF-8 JSON text, or is JSON that cannot be used (see the module doc).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("invalid_json", "The request body must be UTF-8 JSON text.") from None
    too_deep = BadRequestError("invalid_json", f"The request body nests more than {MAX_JSON_DEPTH} levels deep.")
    try:
        data = json.loads(text, parse_int=_parse_int)
    except RecursionError:
        raise too_deep from None
    except _UnusableJson as err:
        raise BadRequestError("invalid_json", f"The request body cannot be used: {err}.") from None
    except json.JSONDecodeError:
        raise BadRequestError("invalid_json", "The request body must be a JSON object.") from None
    if _too_deep(data):
        raise too_deep
    return data


def route_identifier(value: str, what: str) -> BadRequestError | None:
    """The error for a route's id (`what`: "run", "workflow") that no id this app hands out can be, or None:
    such an id is a 400 that says so, not a lookup whose URL the Durable client would mangle."""
    if IDENTIFIER.match(value):
        return None
    return BadRequestError(f"invalid_{what}_id", f"The {what} id must be {IDENTIFIER_RULE}.")


def json_object(body: bytes, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object.

    Args:
        body: The raw body.
        allow_empty: An empty (or all-whitespace) body means `{}` instead of an error.

    Raises:
        BadRequestError: the body is not UTF-8 JSON text of an object the app can use (see `json_value`).
    """
    if allow_empty and not body.strip():
        return {}
    data = json_value(body)
    if not isinstance(data, dict):
        raise BadRequestError("invalid_json", "The request body must be a JSON object.")
    return data


def reject_unknown(data: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Refuse fields the route does not know: a misspelt option must not be silently ignored."""
    unknown = sorted(k for k in data if k not in allowed)
    if unknown:
        raise BadRequestError(
            "unknown_field",
            f"Unknown field(s) {', '.join(repr(k) for k in unknown)}; allowed: {', '.join(sorted(allowed))}.",
        )


def required_text(data: Mapping[str, Any], name: str, *, max_chars: int) -> str:
    """A required, non-blank string of at most `max_chars` characters."""
    value = data.get(name)
    if value is None:
        raise BadRequestError("missing_field", f"Field '{name}' is required.")
    if not isinstance(value, str):
        raise BadRequestError("invalid_field", f"Field '{name}' must be a string.")
    if not value.strip():
        raise BadRequestError("missing_field", f"Field '{name}' must not be empty.")
    if len(value) > max_chars:
        raise BadRequestError("invalid_field", f"Field '{name}' must be at most {max_chars} characters.")
    return value


def optional_text(data: Mapping[str, Any], name: str, *, max_chars: int) -> str | None:
    """An optional string of at most `max_chars` characters (absent or null: None)."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequestError("invalid_field", f"Field '{name}' must be a string.")
    if len(value) > max_chars:
        raise BadRequestError("invalid_field", f"Field '{name}' must be at most {max_chars} characters.")
    return value


def optional_identifier(data: Mapping[str, Any], name: str) -> str | None:
    """An optional id made of `IDENTIFIER` characters."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise BadRequestError("invalid_field", f"Field '{name}' must be {IDENTIFIER_RULE}.")
    return value


def optional_int(data: Mapping[str, Any], name: str, *, low: int, high: int) -> int | None:
    """An optional integer in [low, high]."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequestError("invalid_field", f"Field '{name}' must be an integer from {low} to {high}.")
    return value


def optional_number(data: Mapping[str, Any], name: str, *, low: float, high: float) -> float | None:
    """An optional finite number in [low, high]."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        # `not low <= nan <= high` is true, so NaN lands here too.
        raise BadRequestError("invalid_field", f"Field '{name}' must be a number from {low:g} to {high:g}.")
    return float(value)


def optional_choice(data: Mapping[str, Any], name: str, choices: Collection[str]) -> str | None:
    """An optional string that must be one of `choices`."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or value not in choices:
        raise BadRequestError("invalid_field", f"Field '{name}' must be one of {', '.join(choices)}.")
    return value


_TAG_KEY = re.compile(r"^[A-Za-z0-9_.\-/]{1,64}$")
MAX_TAG_VALUE_CHARS = 256


def optional_tags(data: Mapping[str, Any], name: str, *, max_tags: int) -> dict[str, str]:
    """An optional object of string tags (absent: `{}`).

    Keys are 1 to 64 characters of letters, digits, '_', '.', '-' and '/' (no ':', which separates key
    and value in the `tag=key:value` filter); values are strings of at most 256 characters.
    """
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequestError("invalid_field", f"Field '{name}' must be an object of string values.")
    if len(value) > max_tags:
        raise BadRequestError("invalid_field", f"Field '{name}' may hold at most {max_tags} tags.")
    for key, item in value.items():
        if not _TAG_KEY.match(key):
            raise BadRequestError(
                "invalid_field",
                f"Tag key {key!r} must be 1 to 64 characters of letters, digits, '_', '.', '-' and '/'.",
            )
        if not isinstance(item, str) or len(item) > MAX_TAG_VALUE_CHARS:
            raise BadRequestError(
                "invalid_field", f"Tag {key!r} must have a string value of at most {MAX_TAG_VALUE_CHARS} characters."
            )
    return dict(value)


def query_seconds(
    value: str | None, name: str, *, high: float, allow_zero: bool = False, default: float | None = None
) -> float | None:
    """A query parameter in seconds: in (0, high], or [0, high] with `allow_zero`; absent: `default`."""
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    low_ok = seconds >= 0 if allow_zero else seconds > 0
    if not (low_ok and seconds <= high):  # NaN fails both comparisons
        interval = f"[0, {high:g}]" if allow_zero else f"(0, {high:g}]"
        raise BadRequestError("invalid_query", f"Query parameter '{name}' must be a number of seconds in {interval}.")
    return seconds


def query_int(value: str | None, name: str, *, low: int, high: int, default: int) -> int:
    """An integer query parameter in [low, high]; absent: `default`."""
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise BadRequestError("invalid_query", f"Query parameter '{name}' must be an integer from {low} to {high}.")
    return number
