"""The Durable Functions HTTP API (protocol spec section 5), served by aiohttp.

The same handlers answer under ``/runtime/webhooks/durabletask/`` (the public webhooks, as
``func start`` serves them) and under ``/durabletask/`` (the ``rpcBaseUrl`` the SDK's client
calls). Every response is JSON or empty: the SDK's client breaks on plain text.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from funchost.durable.engine import Engine, check_entity_id
from funchost.durable.entities import entity_id, split_entity_id
from funchost.durable.history import format_api_time, parse_time
from funchost.durable.ids import instance_id_problem
from funchost.durable.status import instance_status, parse_json_text
from funchost.errors import ManagementError
from funchost.http.bodies import body_limit_of, decode_text, parse_json, read_body, too_large
from funchost.stores.base import ALL_STATUSES, COMPLETED, TERMINAL_STATUSES, InstanceQuery, InstanceRecord

WEBHOOK_PREFIX = "/runtime/webhooks/durabletask"
RPC_PREFIX = "/durabletask"
PAGE_SIZE = 100
CONTINUATION_HEADER = "x-ms-continuation-token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, message: str, summary: str | None = None) -> web.Response:
    """The extension's error shape, which the SDK's client reads (``ExceptionMessage``)."""
    return web.json_response({"Message": summary or message, "ExceptionMessage": message,
                              "error": {"code": _code_for(status), "message": message}}, status=status)


def _code_for(status: int) -> str:
    return {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
            410: "gone", 413: "payload_too_large", 500: "internal_error"}.get(status, "error")


def management_urls(base: str, hub: str, instance_id: str) -> dict[str, str]:
    """The check-status payload for one instance, under the public webhook base URL."""
    iid = quote(instance_id, safe="")
    qs = f"taskHub={quote(hub)}&connection=Storage"
    root = f"{base}/instances/{iid}"
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{root}?{qs}",
        "sendEventPostUri": f"{root}/raiseEvent/{{eventName}}?{qs}",
        "terminatePostUri": f"{root}/terminate?reason={{text}}&{qs}",
        "rewindPostUri": f"{root}/rewind?reason={{text}}&{qs}",
        "purgeHistoryDeleteUri": f"{root}?{qs}",
        "restartPostUri": f"{root}/restart?{qs}",
        "suspendPostUri": f"{root}/suspend?reason={{text}}&{qs}",
        "resumePostUri": f"{root}/resume?reason={{text}}&{qs}",
    }


def client_binding(public_base: str, rpc_base: str, hub: str) -> str:
    """The JSON string a ``durable_client_input`` parameter receives."""
    webhook = f"{public_base}{WEBHOOK_PREFIX}"
    qs = f"taskHub={quote(hub)}&connection=Storage"
    return json.dumps({
        "taskHubName": hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]?{qs}",
            "createAndWaitOnNewInstancePostUri":
                f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]?timeout={{timeoutInSeconds}}"
                f"&pollingInterval={{intervalInSeconds}}&{qs}",
        },
        "managementUrls": management_urls(webhook, hub, "INSTANCEID"),
        "baseUrl": webhook,
        "requiredQueryStringParameters": qs,
        "rpcBaseUrl": f"{rpc_base}{RPC_PREFIX}/",
        "httpBaseUrl": "",
    })


class DurableApi:
    """Request handlers over one engine."""

    def __init__(self, engine: Engine, hub: str) -> None:
        self.engine = engine
        self.hub = hub

    def add_routes(self, app: web.Application) -> None:
        """Mount the API under both prefixes; as sub-apps, a wrong method there is a 405, not a trigger."""
        for prefix in (WEBHOOK_PREFIX, RPC_PREFIX):
            sub = web.Application()
            routes: list[tuple[str, str, Handler]] = [
                ("POST", "/orchestrators/{name}", self.start),
                ("POST", "/orchestrators/{name}/{instance_id}", self.start),
                ("GET", "/instances", self.list_instances),
                ("GET", "/instances/", self.list_instances),
                ("DELETE", "/instances", self.purge_by),
                ("DELETE", "/instances/", self.purge_by),
                ("GET", "/instances/{instance_id}", self.get_status),
                ("DELETE", "/instances/{instance_id}", self.purge_one),
                ("POST", "/instances/{instance_id}/raiseEvent/{event}", self.raise_event),
                ("POST", "/instances/{instance_id}/terminate", self.terminate),
                ("POST", "/instances/{instance_id}/suspend", self.suspend),
                ("POST", "/instances/{instance_id}/resume", self.resume),
                ("POST", "/instances/{instance_id}/restart", self.restart),
                ("POST", "/instances/{instance_id}/rewind", self.rewind),
                ("POST", "/entities/{name}/{key}", self.signal_entity),
                ("GET", "/entities/{name}/{key}", self.read_entity),
                ("GET", "/entities/{name}", self.list_entities),
                ("GET", "/entities", self.list_entities),
                ("GET", "/entities/", self.list_entities),
            ]
            for method, path, handler in routes:
                sub.router.add_route(method, path, _guarded(handler))
            app.add_subapp(prefix, sub)

    # --- helpers --------------------------------------------------------------------------------

    def _public_base(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}{WEBHOOK_PREFIX}"

    def _check_status_response(self, request: web.Request, record: InstanceRecord) -> web.Response:
        payload = management_urls(self._public_base(request), self.hub, record.instance_id)
        return web.json_response(payload, status=202, headers={"Location": payload["statusQueryGetUri"],
                                                               "Retry-After": "1"})

    # --- orchestrations -------------------------------------------------------------------------

    async def start(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        input_text = await _start_input(request, "The orchestration input")
        # ?version= (how the SDK's start_new passes one, HttpApiHandler's VersionParameter); absent means
        # defaultVersion, an empty one means no version.
        record = await self.engine.start_new(name, request.match_info.get("instance_id"), input_text,
                                             version=request.query.get("version"))
        timeout = request.query.get("timeout")
        if timeout is None:
            return self._check_status_response(request, record)
        seconds = _bounded_number(timeout, "timeout", 0, 3600)
        done = await self.engine.wait_until_done(record.instance_id, seconds)
        return self._completion_or_check_status(request, record, done)

    def _completion_or_check_status(self, request: web.Request, started: InstanceRecord,
                                    done: InstanceRecord | None) -> web.Response:
        """What HttpApiHandler's WaitForCompletionOrCreateCheckStatusResponseAsync answers once the wait is
        over: 200 with the output for Completed; for Failed, Terminated or Canceled the status body a status
        request gives (200: the start route never asks for a 500 on failure), never the output alone, which for
        a failure is only its message; 202 with the check-status links while it still runs."""
        if done is None or not done.is_terminal:
            return self._check_status_response(request, started)
        if done.status == COMPLETED:
            return web.json_response(parse_json_text(done.output), status=200)
        return web.json_response(instance_status(done, show_input=_flag(request, "showInput", True)), status=200)

    async def get_status(self, request: web.Request) -> web.Response:
        instance_id = _instance_id(request)
        loaded = await self.engine.get(instance_id)
        if loaded is None:
            raise ManagementError(404, f"No instance with ID '{instance_id}' found.")
        record, history = loaded
        show_history = _flag(request, "showHistory", False)
        body = instance_status(record, show_input=_flag(request, "showInput", True),
                               history=history if show_history else None,
                               show_history_output=_flag(request, "showHistoryOutput", False))
        if record.status in TERMINAL_STATUSES:
            failed = record.status == "Failed" and _flag(request, "returnInternalServerErrorOnFailure", False)
            return web.json_response(body, status=500 if failed else 200)
        location = f"{self._public_base(request)}/instances/{quote(instance_id, safe='')}"
        return web.json_response(body, status=202, headers={"Location": location, "Retry-After": "1"})

    def _query(self, request: web.Request, *, paged: bool) -> InstanceQuery:
        statuses: tuple[str, ...] = ()
        raw_status = request.query.get("runtimeStatus")
        if raw_status:
            by_lower = {s.lower(): s for s in ALL_STATUSES}
            parts = [p.strip() for p in raw_status.split(",") if p.strip()]
            unknown = [p for p in parts if p.lower() not in by_lower]
            if unknown:
                raise ManagementError(400, f"Unknown runtimeStatus {', '.join(unknown)}; use any of "
                                           f"{', '.join(ALL_STATUSES)}.")
            statuses = tuple(by_lower[p.lower()] for p in parts)
        top = PAGE_SIZE
        if paged and "top" in request.query:
            top = int(_bounded_number(request.query["top"], "top", 1, 1000, integer=True))
        continuation = request.headers.get(CONTINUATION_HEADER) or request.query.get("continuationToken") or None
        return InstanceQuery(
            created_from=_time_param(request, "createdTimeFrom"),
            created_to=_time_param(request, "createdTimeTo"),
            statuses=statuses,
            prefix=request.query.get("instanceIdPrefix") or None,
            top=top if paged else 1_000_000,
            continuation=continuation if paged else None,
        )

    async def list_instances(self, request: web.Request) -> web.Response:
        query = self._query(request, paged=True)
        try:
            records, token = await self.engine.store.query_instances(query)
        except ValueError as err:
            raise ManagementError(400, str(err)) from err
        show_input = _flag(request, "showInput", False)
        body = [instance_status(r, show_input=show_input) for r in records]
        headers = {CONTINUATION_HEADER: token} if token else {}
        return web.json_response(body, status=200, headers=headers)

    async def purge_one(self, request: web.Request) -> web.Response:
        # HttpApiHandler: 404 for an unknown id; otherwise 200 with what was deleted, which is 0 for an
        # instance that still runs (only finished instances are purged, see Engine.purge).
        instance_id = _instance_id(request)
        if await self.engine.get(instance_id) is None:
            raise ManagementError(404, f"No instance with ID '{instance_id}' found.")
        deleted = await self.engine.purge([instance_id])
        return web.json_response({"instancesDeleted": deleted}, status=200)

    async def purge_by(self, request: web.Request) -> web.Response:
        # HttpApiHandler: 400 without createdTimeFrom, 404 when nothing was deleted. Whatever runtimeStatus
        # asks for, only finished instances go (DurableTask.AzureStorage keeps only the terminal statuses of
        # the filter; durabletask-dotnet purges only finished instances).
        query = self._query(request, paged=False)
        if query.created_from is None:
            raise ManagementError(400, "Purging by filter needs createdTimeFrom.")
        records, _ = await self.engine.store.query_instances(query)
        targets = [r.instance_id for r in records if r.is_terminal]
        deleted = await self.engine.purge(targets) if targets else 0
        if not deleted:
            raise ManagementError(404, "No instances matched the purge filter.")
        return web.json_response({"instancesDeleted": deleted}, status=200)

    async def raise_event(self, request: web.Request) -> web.Response:
        instance_id = _instance_id(request)
        text = await _event_data(request)
        event = request.match_info["event"]
        await self.engine.raise_event(instance_id, event, text)
        return web.Response(status=202)

    async def terminate(self, request: web.Request) -> web.Response:
        await self.engine.terminate(_instance_id(request), request.query.get("reason"))
        return web.Response(status=202)

    async def suspend(self, request: web.Request) -> web.Response:
        await self.engine.suspend(_instance_id(request), request.query.get("reason"))
        return web.Response(status=202)

    async def resume(self, request: web.Request) -> web.Response:
        await self.engine.resume(_instance_id(request), request.query.get("reason"))
        return web.Response(status=202)

    async def restart(self, request: web.Request) -> web.Response:
        new_id = _flag(request, "restartWithNewInstanceId", True)
        record = await self.engine.restart(_instance_id(request), new_id)
        timeout = request.query.get("timeout")
        if timeout is None:
            return self._check_status_response(request, record)
        # HttpApiHandler's restart waits like its start does.
        done = await self.engine.wait_until_done(record.instance_id, _bounded_number(timeout, "timeout", 0, 3600))
        return self._completion_or_check_status(request, record, done)

    async def rewind(self, request: web.Request) -> web.Response:
        await self.engine.rewind(_instance_id(request), request.query.get("reason"))
        return web.Response(status=202)

    # --- entities -------------------------------------------------------------------------------

    async def signal_entity(self, request: web.Request) -> web.Response:
        operation = request.query.get("op")
        if not operation:
            raise ManagementError(400, "Signalling an entity needs the operation name in ?op=.")
        name, key = _entity_params(request)
        input_text = await _start_input(request, "The operation input")
        await self.engine.signal_entity(name, key, operation, input_text)
        return web.Response(status=202)

    async def read_entity(self, request: web.Request) -> web.Response:
        name, key = _entity_params(request)
        record = await self.engine.store.load_entity(entity_id(name, key))
        if record is None:
            raise ManagementError(404, f"Entity @{name.lower()}@{key} does not exist.")
        return web.json_response(parse_json_text(record.state), status=200)

    async def list_entities(self, request: web.Request) -> web.Response:
        top = PAGE_SIZE
        if "top" in request.query:
            top = int(_bounded_number(request.query["top"], "top", 1, 1000, integer=True))
        token = request.headers.get(CONTINUATION_HEADER) or request.query.get("continuationToken") or None
        try:
            records, more = await self.engine.store.list_entities(request.match_info.get("name"), top, token)
        except ValueError as err:
            raise ManagementError(400, str(err)) from err
        fetch_state = _flag(request, "fetchState", False)
        body = []
        for rec in records:
            name, key = split_entity_id(rec.entity_id)
            item = {"entityId": {"name": name, "key": key}, "lastOperationTime": format_api_time(rec.last_modified)}
            if fetch_state:
                item["state"] = parse_json_text(rec.state)
            body.append(item)
        return web.json_response(body, status=200, headers={CONTINUATION_HEADER: more} if more else {})


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ManagementError as err:
            return error_response(err.status, err.message, err.summary)

    return guarded


def _flag(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", ""):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ManagementError(400, f"Query parameter {name} must be true or false, not {value!r}.")


def _bounded_number(value: str, name: str, low: float, high: float, *, integer: bool = False) -> float:
    try:
        number = int(value) if integer else float(value)
    except ValueError as err:
        raise ManagementError(400, f"Query parameter {name} must be a number, not {value!r}.") from err
    if not low <= number <= high:
        raise ManagementError(400, f"Query parameter {name} must be between {low:g} and {high:g}.")
    return number


def _time_param(request: web.Request, name: str) -> float | None:
    value = request.query.get(name)
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError as err:
        raise ManagementError(400, f"Query parameter {name} must be an ISO 8601 time, not {value!r}.") from err


def _instance_id(request: web.Request) -> str:
    """The route's instance id; one the task hub cannot hold is a 400 saying why (``durable.ids``)."""
    instance_id = request.match_info["instance_id"]
    problem = instance_id_problem(instance_id)
    if problem:
        raise ManagementError(400, problem)
    return instance_id


def _entity_params(request: web.Request) -> tuple[str, str]:
    """The route's entity name and key, refused as the engine refuses them."""
    name, key = request.match_info["name"], request.match_info["key"]
    check_entity_id(name, key)
    return name, key


async def _body_text(request: web.Request, what: str) -> str:
    """The body as text, stripped; every management route reads its body here (``http.bodies``)."""
    return decode_text(request, await read_body(request, what), what).strip()


def _within_limit(request: web.Request, text: str, what: str) -> str:
    limit = body_limit_of(request)
    size = len(text.encode())
    if size > limit:
        raise too_large(what, size, limit)
    return text


async def _event_data(request: web.Request) -> str | None:
    """The event data JSON text of a raise-event body, as sent; None for an empty body."""
    text = await _body_text(request, "The event data")
    if not text:
        return None
    parse_json(text, "The event data")
    return text


async def _start_input(request: web.Request, what: str) -> str | None:
    """Input JSON text from a start or signal body.

    The SDK's client sends JSON text as a JSON string (double-encoded); a person with curl sends
    the value itself. Both mean the same input.
    """
    raw = await _body_text(request, what)
    if not raw:
        return None
    value: Any = parse_json(raw, what)
    if isinstance(value, str):
        try:
            parse_json(value, what)
        except ManagementError:
            return _within_limit(request, json.dumps(value), what)
        return _within_limit(request, value, what)
    return _within_limit(request, json.dumps(value), what)
