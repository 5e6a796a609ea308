"""The aiohttp application: admin routes, the durable API and the app's HTTP triggers.

Every answer is JSON, errors included (``{"error": {"code", "message"}}``): a request that cannot be served
is a 4xx saying why, whatever route it was for; only a fault of funchost itself is a 500. Protocol errors
that aiohttp answers before the application sees the request are made JSON in ``http.protocol``.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from funchost.app_loader import FunctionIndex, HttpFunction
from funchost.durable.api import DurableApi, client_binding
from funchost.durable.engine import Engine
from funchost.http.bodies import BODY_LIMIT_KEY, unreadable_body_message
from funchost.http.routing import RouteTemplate
from funchost.http.triggers import HttpInvoker, json_error
from funchost.limits import BODY_LIMIT_SETTING, body_limit
from funchost.worker import Worker

logger = logging.getLogger(__name__)


class TriggerRouter:
    """Finds the HTTP function for a path and method, telling 404 from 405 apart."""

    def __init__(self, functions: list[HttpFunction], route_prefix: str) -> None:
        self.prefix = route_prefix.strip("/")
        self.routes = sorted(((RouteTemplate(f.route), f) for f in functions),
                             key=lambda pair: pair[0].specificity, reverse=True)

    def url_of(self, fn: HttpFunction, base: str) -> str:
        path = "/".join(p for p in (self.prefix, fn.route.strip("/")) if p)
        return f"{base}/{path}"

    def resolve(self, path: str, method: str) -> tuple[HttpFunction, dict[str, str]] | int:
        """The function and route params, or the status to answer: 404 or 405."""
        path = path.strip("/")
        if self.prefix:
            if path.lower() != self.prefix.lower() and not path.lower().startswith(self.prefix.lower() + "/"):
                return 404
            path = path[len(self.prefix):]
        wrong_method = False
        for template, fn in self.routes:
            params = template.match(path)
            if params is None:
                continue
            if fn.methods is None or method.upper() in fn.methods:
                return fn, params
            wrong_method = True
        return 405 if wrong_method else 404


def build_app(functions: FunctionIndex, engine: Engine, *, hub: str, route_prefix: str, rpc_base: str,
              worker: Worker) -> web.Application:
    # The Functions host's request body limit holds for every route (``http.bodies``).
    limit = body_limit()
    app = web.Application(client_max_size=limit)
    app[BODY_LIMIT_KEY] = limit
    router = TriggerRouter(functions.http, route_prefix)

    def binding_for(request: web.Request) -> str:
        return client_binding(f"{request.scheme}://{request.host}", rpc_base, hub)

    invoker = HttpInvoker(worker, binding_for)

    async def host_status(request: web.Request) -> web.Response:
        return web.json_response({"state": "Running", "id": "funchost", "processUptime": 0,
                                  "extensionBundle": None, "version": "funchost"})

    async def dispatch(request: web.Request) -> web.StreamResponse:
        found = router.resolve(request.path, request.method)
        if found == 404:
            return json_error(404, "not_found", f"No function matches {request.method} {request.path}.")
        if found == 405:
            return json_error(405, "method_not_allowed", f"{request.method} is not allowed on {request.path}.")
        assert not isinstance(found, int)
        fn, params = found
        return await invoker.invoke(fn, request, params)

    app.router.add_get("/admin/host/status", host_status)
    app.router.add_get("/admin/host/ping", host_status)
    DurableApi(engine, hub).add_routes(app)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    app.middlewares.append(_json_errors)
    app.middlewares.append(_valid_host)
    app["router"] = router
    return app


@web.middleware
async def _json_errors(request: web.Request, handler: object) -> web.StreamResponse:
    """aiohttp's own 404/405 pages are plain text; clients of this host always get JSON."""
    try:
        return await handler(request)  # type: ignore[operator, no-any-return]
    except web.HTTPMethodNotAllowed:
        return json_error(405, "method_not_allowed", f"{request.method} is not allowed on {request.path}.")
    except web.HTTPNotFound:
        return json_error(404, "not_found", f"No route matches {request.method} {request.path}.")
    except web.HTTPRequestEntityTooLarge as exc:
        limit = request.config_dict.get(BODY_LIMIT_KEY)
        return json_error(413, "payload_too_large", f"The request body is larger than the limit of {limit} bytes "
                                                    f"({BODY_LIMIT_SETTING}).") if limit else \
            json_error(413, "payload_too_large", exc.reason)
    except web.HTTPException as exc:
        return json_error(exc.status, "bad_request", exc.reason)
    except (HttpProcessingError, web.RequestPayloadError) as exc:
        # The body could not be read as its headers describe it (Content-Encoding, chunking, length).
        return json_error(400, "bad_request", unreadable_body_message(request, exc))
    except Exception:
        logger.exception("unhandled error serving %s %s", request.method, request.path)
        return json_error(500, "internal_error", "The host failed to handle this request; see its log.")


@web.middleware
async def _valid_host(request: web.Request, handler: object) -> web.StreamResponse:
    """A Host header that is no host[:port] (a port that is no number, or above 65535) is the client's error;
    the request's URL, which routes and the client binding are built from, cannot be made from it."""
    try:
        request.url  # noqa: B018 - building it is the check
    except ValueError:
        return json_error(400, "bad_host", f"The Host header {request.headers.get('Host', '')[:200]!r} is not a "
                                           "valid host[:port].")
    return await handler(request)  # type: ignore[operator, no-any-return]
