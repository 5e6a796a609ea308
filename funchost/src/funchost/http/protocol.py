"""aiohttp's own protocol errors (a bad request line, bad headers, ...) answered in the JSON error shape.

aiohttp answers a request it cannot parse before any application code or middleware runs, from
``RequestHandler.handle_error``, in text/plain. That method is the documented place for such answers, so
funchost's runner makes its connections with a ``RequestHandler`` whose ``handle_error`` keeps aiohttp's
logging and connection handling and only swaps the body for ``{"error": {"code", "message"}}``.

aiohttp's ``Server`` always builds the stock ``RequestHandler``, so ``JsonErrorsAppRunner`` builds the
server of its application as ``AppRunner`` does and then hands out the subclass. Checked on aiohttp
3.14; ``tests/integration/test_bad_requests.py`` sends raw malformed requests to catch a change.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from aiohttp.web_request import BaseRequest

from funchost.http.triggers import json_error

_CODES = {400: "bad_request", 413: "payload_too_large", 414: "uri_too_long", 431: "headers_too_large",
          500: "internal_error", 504: "timeout"}


def protocol_error_message(status: int, exc: BaseException | None, message: str | None) -> str:
    """What the client is told: aiohttp's reason for a parse error, a generic sentence otherwise."""
    if isinstance(exc, ContentEncodingError):
        return f"The request body is not what its Content-Encoding says ({' '.join(str(exc.message).split())})."
    if isinstance(exc, HttpProcessingError) and exc.message:
        return f"The request could not be parsed: {' '.join(str(exc.message).split())}"
    if message and status < 500:
        return f"The request could not be parsed: {message}"
    if status == 500:
        return "The host failed to handle this request; see its log."
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return "The request failed."


class JsonErrorRequestHandler(web.RequestHandler):
    """A connection whose protocol-level error answers are JSON, like every other answer of funchost."""

    __slots__ = ()

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)  # logs, and refuses if a reply started
        response = json_error(plain.status, _CODES.get(plain.status, "error"),
                              protocol_error_message(plain.status, exc, message))
        response.force_close()  # as aiohttp does: after a parse error the connection's framing is lost
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorsAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer protocol errors in JSON (see the module docstring)."""

    async def _make_server(self) -> web.Server:
        stock = await super()._make_server()  # starts the application up and freezes it, as AppRunner does
        kwargs: dict[str, Any] = dict(stock._kwargs)
        return _JsonErrorServer(stock.request_handler, request_factory=stock.request_factory,
                                handler_cancellation=stock.handler_cancellation, **kwargs)
