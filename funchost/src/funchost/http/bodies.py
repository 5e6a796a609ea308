"""Request bodies read safely: a size limit, the content encoding, the charset, and JSON that can be used.

Every management route reads its body here, so a body that is too large is a 413 and one that cannot be
read, decoded or used as JSON is a 400, each with a message that says what was wrong, never a 500:

- The size limit is the Functions host's (``funchost.limits``). It counts the bytes after
  ``Content-Encoding`` is undone, so a small gzip body cannot unpack into a huge one.
- JSON nested deeper than 64 levels is refused: Json.NET's default ``MaxDepth``, which is what the Durable
  extension reads request bodies with. Python's own parser would otherwise fail at about 1000 levels with a
  RecursionError, and an input nested nearly that deep fails later, in the orchestrator.
- An integer of more than 4300 digits (Python's ``int`` conversion limit), a number that overflows a double,
  and the non-JSON constants ``NaN`` and ``Infinity`` are refused.
"""

from __future__ import annotations

import codecs
import json
import math
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from funchost.errors import ManagementError
from funchost.limits import BODY_LIMIT_SETTING, DEFAULT_BODY_LIMIT

MAX_JSON_DEPTH = 64
MAX_INT_DIGITS = 4300
BODY_LIMIT_KEY = web.AppKey("funchost_body_limit", int)
_READ_CHUNK = 64 * 1024


def body_limit_of(request: web.Request) -> int:
    """The limit the application was built with (sub-applications see their parent's)."""
    return request.config_dict.get(BODY_LIMIT_KEY, DEFAULT_BODY_LIMIT)


def too_large(what: str, size: int | None, limit: int) -> ManagementError:
    told = f" is {size} bytes;" if size is not None else " is larger than"
    return ManagementError(413, f"{what}{told} the limit is {limit} bytes ({BODY_LIMIT_SETTING}).")


async def read_body(request: web.Request, what: str) -> bytes:
    """The whole body, its ``Content-Encoding`` undone, at most the body limit."""
    limit = body_limit_of(request)
    if request.content_length is not None and request.content_length > limit:
        raise too_large(what, request.content_length, limit)
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await request.content.read(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large(what, None, limit)
            chunks.append(chunk)
    except (HttpProcessingError, web.RequestPayloadError) as err:
        # aiohttp undoes gzip/deflate/br while it reads; a body that is not what its header says fails here.
        raise ManagementError(400, unreadable_body_message(request, err, what)) from err
    return b"".join(chunks)


def unreadable_body_message(request: web.BaseRequest, err: Exception, what: str = "The request body") -> str:
    """Why a body could not be read (its Content-Encoding, chunking or length did not hold)."""
    encoding = request.headers.get("Content-Encoding", "")
    detail = f" as its Content-Encoding '{encoding}' says" if encoding else ""
    cause = err.__cause__ if isinstance(err, web.RequestPayloadError) and err.__cause__ else err
    reason = getattr(cause, "message", None) or str(cause).strip() or type(cause).__name__
    return f"{what} could not be read{detail}: {' '.join(str(reason).split())}."


def decode_text(request: web.Request, body: bytes, what: str) -> str:
    """``body`` as text, in the charset of its Content-Type (UTF-8 when it names none)."""
    charset = request.charset or "utf-8"
    try:
        known = codecs.lookup(charset)
    except (LookupError, ValueError) as err:
        raise ManagementError(400, f"{what} names charset {charset!r}, which is not a known text encoding.") \
            from err
    if not getattr(known, "_is_text_encoding", True):
        raise ManagementError(400, f"{what} names charset {charset!r}, which is not a text encoding.")
    try:
        return body.decode(known.name)
    except (UnicodeError, ValueError) as err:
        raise ManagementError(400, f"{what} is not valid {charset} text.") from err


class _UnusableJson(ValueError):
    """JSON that parses but cannot be used; the message says why."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _UnusableJson(f"it holds an integer of {digits} digits; at most {MAX_INT_DIGITS} are allowed")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _UnusableJson(f"the number {text[:30]}{'...' if len(text) > 30 else ''} is too large")
    return value


def _parse_constant(name: str) -> Any:
    raise _UnusableJson(f"{name} is not a JSON value")


def _depth(value: Any) -> int:
    """How deeply ``value`` nests arrays and objects, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse_json(text: str, what: str) -> Any:
    """``text`` as a JSON value that funchost and the app can use; ManagementError 400 otherwise."""
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except RecursionError as err:
        raise ManagementError(400, f"{what} nests arrays or objects more than {MAX_JSON_DEPTH} levels deep.") \
            from err
    except _UnusableJson as err:
        raise ManagementError(400, f"{what} cannot be used: {err}.") from err
    except json.JSONDecodeError as err:
        raise ManagementError(400, f"{what} must be JSON: {err.msg} at position {err.pos}.") from err
    if _depth(value) > MAX_JSON_DEPTH:
        raise ManagementError(400, f"{what} nests arrays or objects more than {MAX_JSON_DEPTH} levels deep.")
    return value
