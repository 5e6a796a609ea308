"""Invokes an HTTP-triggered function as the worker does: ``func.HttpRequest`` in, response out."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import azure.functions as func
from aiohttp import web

from funchost.app_loader import HttpFunction
from funchost.invocation import InvocationContext
from funchost.worker import Worker

logger = logging.getLogger(__name__)


def json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


async def to_function_request(request: web.Request, route_params: dict[str, str]) -> func.HttpRequest:
    body = await request.read()
    headers = {k: v for k, v in request.headers.items()}
    return func.HttpRequest(method=request.method, url=str(request.url), headers=headers,
                            params=dict(request.query.items()), route_params=route_params, body=body)


def to_web_response(result: Any) -> web.Response:
    """The function's return value (its ``$return`` binding) as an HTTP response."""
    if isinstance(result, func.HttpResponse):
        response = web.Response(status=result.status_code, body=result.get_body())
        for key, value in result.headers.items():
            if key.lower() == "content-length":
                continue
            response.headers[key] = value
        if result.mimetype and "Content-Type" not in response.headers:
            charset = f"; charset={result.charset}" if result.charset and result.mimetype.startswith("text") else ""
            response.headers["Content-Type"] = f"{result.mimetype}{charset}"
        return response
    if result is None:
        return web.Response(status=204)
    if isinstance(result, (str, bytes)):
        return web.Response(status=200, body=result.encode() if isinstance(result, str) else result,
                            content_type="text/plain")
    if isinstance(result, (dict, list)):
        return web.Response(status=200, text=json.dumps(result), content_type="application/json")
    raise TypeError(f"an HTTP function must return func.HttpResponse, str or bytes, not {type(result).__name__}")


class HttpInvoker:
    """Calls user HTTP functions through the worker: sync ones in its pool, async ones on its loop."""

    def __init__(self, worker: Worker, client_binding: functools.partial[str] | Any) -> None:
        self.worker = worker
        self.client_binding = client_binding

    async def invoke(self, fn: HttpFunction, request: web.Request, route_params: dict[str, str]) -> web.Response:
        req = await to_function_request(request, route_params)
        kwargs: dict[str, Any] = {fn.request_param: req}
        if fn.client_param:
            kwargs[fn.client_param] = self.client_binding(request)
        context = InvocationContext(fn.name)
        if fn.wants_context:
            kwargs["context"] = context
        try:
            result = await self.worker.call(fn.user_fn, kwargs, context.invocation_id)
            return to_web_response(result)
        except Exception:
            logger.exception("Executed 'Functions.%s' (Failed, Id=%s)", fn.name, context.invocation_id)
            return json_error(500, "internal_error",
                              f"The function '{fn.name}' failed; see the host log for invocation "
                              f"{context.invocation_id}.")
