"""HTTP triggers as the Python worker serves them, for tests/integration/test_http_triggers.py.

Covers route templates (plain, optional and constrained parameters), methods, a route that defaults
to the function name, request headers/query/route params/body, custom responses, sync and async
handlers, a plain-string `$return`, an exception in user code, environment values loaded from
local.settings.json, and one orchestrator that makes durable HTTP calls back into this app.
"""

import asyncio
import json
import os

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# The one piece of user-code text the 500 test checks never reaches the HTTP client.
SECRET_ERROR_TEXT = "kaboom-4f2a-internal-detail"


def _json(payload, status_code=200):
    return func.HttpResponse(json.dumps(payload), status_code=status_code, mimetype="application/json")


@app.route(route="echo/{name}", methods=["GET", "POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body()
    return _json(
        {
            "method": req.method,
            "route": dict(req.route_params),
            "query": dict(req.params),
            "header": req.headers.get("x-test-header"),
            "json": req.get_json() if body else None,
            "url": req.url,
        }
    )


@app.route(route="bytes", methods=["POST"])
def raw_bytes(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body()
    return _json({"length": len(body), "hex": body.hex(), "contentType": req.headers.get("content-type")})


@app.route(route="optional/{name?}", methods=["GET"])
def optional_param(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"name": req.route_params.get("name") or None})


@app.route(route="items/{id:int}", methods=["GET"])
def item_by_int(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"doubled": int(req.route_params["id"]) * 2})


@app.route(route="users/{uid:guid}", methods=["GET"])
def user_by_guid(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"uid": req.route_params["uid"]})


@app.route(route="words/{word:alpha}", methods=["GET"])
def word_by_alpha(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"upper": req.route_params["word"].upper()})


@app.route(route="flags/{flag:bool}", methods=["GET"])
def flag_by_bool(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"flag": req.route_params["flag"].lower() == "true"})


@app.route(route="get_only", methods=["GET"])
def get_only(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"ok": True})


@app.route(methods=["GET"])
def plain_hello(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"hello": "from the function name"})


@app.function_name(name="renamed_fn")
@app.route(methods=["GET"])
def python_name_not_used(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"hello": "from function_name"})


@app.route(route="custom", methods=["GET"])
def custom_response(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("<p>made</p>", status_code=201, headers={"X-Custom": "yes"}, mimetype="text/html")


@app.route(route="plain_text", methods=["GET"])
def plain_text(req: func.HttpRequest) -> str:
    return "just text"


@app.route(route="async_echo", methods=["GET", "POST"])
async def async_echo(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0.01)
    body = req.get_body()
    return _json({"async": True, "query": dict(req.params), "json": req.get_json() if body else None})


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError(SECRET_ERROR_TEXT)


@app.route(route="async_boom", methods=["GET"])
async def async_boom(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    raise ValueError(SECRET_ERROR_TEXT)


@app.route(route="env", methods=["GET"])
def read_env(req: func.HttpRequest) -> func.HttpResponse:
    names = req.params.get("names", "").split(",")
    return _json({name: os.environ.get(name) for name in names if name})


@app.route(route="status/{code:int}", methods=["GET", "POST"])
def status_code(req: func.HttpRequest) -> func.HttpResponse:
    code = int(req.route_params["code"])
    body = req.get_body()
    return _json({"code": code, "method": req.method, "json": req.get_json() if body else None}, status_code=code)


@app.route(route="orchestrators/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_orchestration(req: func.HttpRequest, client) -> func.HttpResponse:
    payload = req.get_json() if req.get_body() else None
    instance_id = await client.start_new(req.route_params["name"], client_input=payload)
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def fetch_urls(context: df.DurableOrchestrationContext):
    """Durable HTTP calls (call_http) to the URLs in the input, in order: [[method, url, content], ...]."""
    responses = []
    for method, url, content in context.get_input()["calls"]:
        response = yield context.call_http(method, url, content=content)
        responses.append(response)
    return responses
