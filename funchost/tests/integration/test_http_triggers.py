"""HTTP triggers served by funchost: routing, requests and responses, errors, the route prefix, call_http.

Every test drives the `http_routes` test app (tests/apps/http_routes) over real HTTP.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from funchost.testing.process import FunchostProcess, HttpResult
from funchost.testing.pytest_plugin import StartHost
from tests.paths import TEST_APPS

SECRET_ERROR_TEXT = "kaboom-4f2a-internal-detail"  # raised by tests/apps/http_routes `boom` and `async_boom`


@pytest.fixture
def host(start_host: StartHost) -> FunchostProcess:
    return start_host("http_routes")


def copy_app_with_prefix(tmp_path: Path, route_prefix: str) -> Path:
    """A copy of http_routes whose host.json sets `extensions.http.routePrefix`."""
    app_dir = tmp_path / f"http_routes_prefix_{route_prefix or 'empty'}"
    shutil.copytree(TEST_APPS / "http_routes", app_dir, ignore=shutil.ignore_patterns(".funchost", "__pycache__"))
    host_json = json.loads((app_dir / "host.json").read_text())
    host_json["extensions"]["http"]["routePrefix"] = route_prefix
    (app_dir / "host.json").write_text(json.dumps(host_json))
    return app_dir


def header(result: HttpResult, name: str) -> str | None:
    """A response header, looked up case-insensitively as HTTP defines it."""
    return next((value for key, value in result.headers.items() if key.lower() == name.lower()), None)


def assert_json_error(result: HttpResult, status: int) -> Any:
    """The host's own error responses are JSON with a JSON content type."""
    assert result.status == status, (result.status, result.text)
    assert (header(result, "Content-Type") or "").startswith("application/json"), result.headers
    return result.json()


# --- route templates ------------------------------------------------------------------------------


def test_route_param_query_and_headers_reach_the_function(host: FunchostProcess) -> None:
    res = host.get("/api/echo/alice?x=1&y=two", headers={"X-Test-Header": "hello"})

    assert res.status == 200, res.text
    body = res.json()
    assert body["method"] == "GET"
    assert body["route"] == {"name": "alice"}
    assert body["query"] == {"x": "1", "y": "two"}
    assert body["header"] == "hello"
    assert body["json"] is None
    assert body["url"].startswith(f"{host.base_url}/api/echo/alice")


def test_json_body_is_read_with_get_json(host: FunchostProcess) -> None:
    res = host.post("/api/echo/bob", {"items": [1, 2, 3], "nested": {"ok": True}})

    assert res.status == 200, res.text
    body = res.json()
    assert body["method"] == "POST"
    assert body["route"] == {"name": "bob"}
    assert body["json"] == {"items": [1, 2, 3], "nested": {"ok": True}}


def test_binary_body_is_read_with_get_body(host: FunchostProcess) -> None:
    payload = bytes([0, 1, 2, 255, 254]) + b"tail"

    res = host.post("/api/bytes", raw=payload, headers={"Content-Type": "application/octet-stream"})

    assert res.status == 200, res.text
    assert res.json() == {"length": len(payload), "hex": payload.hex(), "contentType": "application/octet-stream"}


@pytest.mark.parametrize(("path", "expected"), [("/api/optional/zed", "zed"), ("/api/optional", None)])
def test_optional_route_param(host: FunchostProcess, path: str, expected: str | None) -> None:
    res = host.get(path)

    assert res.status == 200, res.text
    assert res.json() == {"name": expected}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/items/21", {"doubled": 42}),
        ("/api/users/6f9619ff-8b86-d011-b42d-00cf4fc964ff", {"uid": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"}),
        ("/api/words/Hello", {"upper": "HELLO"}),
        ("/api/flags/true", {"flag": True}),
        ("/api/flags/False", {"flag": False}),
    ],
)
def test_constrained_route_param_matches(host: FunchostProcess, path: str, expected: dict[str, Any]) -> None:
    res = host.get(path)

    assert res.status == 200, res.text
    assert res.json() == expected


@pytest.mark.parametrize(
    "path",
    ["/api/items/abc", "/api/items/4.5", "/api/users/not-a-guid", "/api/words/abc123", "/api/flags/yes"],
)
def test_constrained_route_param_mismatch_is_404_json(host: FunchostProcess, path: str) -> None:
    assert_json_error(host.get(path), 404)


def test_route_defaults_to_function_name(host: FunchostProcess) -> None:
    plain = host.get("/api/plain_hello")
    renamed = host.get("/api/renamed_fn")

    assert plain.status == 200, plain.text
    assert plain.json() == {"hello": "from the function name"}
    assert renamed.status == 200, renamed.text
    assert renamed.json() == {"hello": "from function_name"}
    # The Python name of a function renamed with @function_name is not a route.
    assert_json_error(host.get("/api/python_name_not_used"), 404)


# --- methods and unmatched routes -----------------------------------------------------------------


def test_get_only_route_accepts_get(host: FunchostProcess) -> None:
    res = host.get("/api/get_only")

    assert res.status == 200, res.text
    assert res.json() == {"ok": True}


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/get_only"), ("DELETE", "/api/echo/x"), ("PUT", "/api/custom")]
)
def test_wrong_method_is_405_json(host: FunchostProcess, method: str, path: str) -> None:
    assert_json_error(host.request(method, path, raw=b"{}"), 405)


@pytest.mark.parametrize("path", ["/api/does/not/exist", "/api/echo", "/api/echo/a/b", "/not-under-prefix"])
def test_unmatched_route_is_404_json(host: FunchostProcess, path: str) -> None:
    assert_json_error(host.get(path), 404)


# --- responses ------------------------------------------------------------------------------------


def test_http_response_status_headers_and_mimetype(host: FunchostProcess) -> None:
    res = host.get("/api/custom")

    assert res.status == 201
    assert res.text == "<p>made</p>"
    assert header(res, "X-Custom") == "yes"
    assert (header(res, "Content-Type") or "").startswith("text/html")


def test_return_value_string_becomes_the_body(host: FunchostProcess) -> None:
    res = host.get("/api/plain_text")

    assert res.status == 200
    assert res.text == "just text"


def test_async_handler(host: FunchostProcess) -> None:
    res = host.post("/api/async_echo?mode=async", {"n": 7})

    assert res.status == 200, res.text
    assert res.json() == {"async": True, "query": {"mode": "async"}, "json": {"n": 7}}


def test_sync_and_async_handlers_serve_concurrent_requests(host: FunchostProcess) -> None:
    paths = [f"/api/echo/n{i}?i={i}" if i % 2 else f"/api/async_echo?i={i}" for i in range(20)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(host.get, paths))

    assert [r.status for r in results] == [200] * 20
    assert [r.json()["query"] for r in results] == [{"i": str(i)} for i in range(20)]


def test_user_status_code_is_passed_through(host: FunchostProcess) -> None:
    res = host.get("/api/status/418")

    assert res.status == 418
    assert res.json() == {"code": 418, "method": "GET", "json": None}


# --- errors in user code --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/boom", "/api/async_boom"])
def test_exception_in_user_code_is_generic_500_and_logged(host: FunchostProcess, path: str) -> None:
    res = host.get(path)

    assert_json_error(res, 500)
    assert SECRET_ERROR_TEXT not in res.text
    assert "Traceback" not in res.text

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and SECRET_ERROR_TEXT not in host.log():
        time.sleep(0.05)
    log = host.log()
    assert "Traceback (most recent call last)" in log
    assert SECRET_ERROR_TEXT in log
    # The host keeps serving after a user exception.
    assert host.get("/api/get_only").status == 200


# --- route prefix ---------------------------------------------------------------------------------


def test_route_prefix_from_host_json(start_host: StartHost, tmp_path: Path) -> None:
    host = start_host(copy_app_with_prefix(tmp_path, "v1"))

    res = host.get("/v1/echo/pre?q=1")

    assert res.status == 200, res.text
    assert res.json()["route"] == {"name": "pre"}
    assert res.json()["query"] == {"q": "1"}
    assert host.get("/v1/plain_hello").status == 200
    assert_json_error(host.get("/api/echo/pre"), 404)


def test_empty_route_prefix(start_host: StartHost, tmp_path: Path) -> None:
    host = start_host(copy_app_with_prefix(tmp_path, ""))

    res = host.get("/echo/root")

    assert res.status == 200, res.text
    assert res.json()["route"] == {"name": "root"}
    assert host.get("/items/5").json() == {"doubled": 10}
    assert_json_error(host.get("/api/echo/root"), 404)
    # The host's own routes are not shadowed by an empty prefix.
    assert host.get("/admin/host/status").json()["state"] == "Running"
    assert host.status(uuid.uuid4().hex).status == 404


# --- call_http (the durable HTTP action) ----------------------------------------------------------


def test_call_http_from_an_orchestration(host: FunchostProcess) -> None:
    calls = [
        ["GET", f"{host.base_url}/api/echo/durable?via=call_http", None],
        ["POST", f"{host.base_url}/api/status/201", {"posted": [1, 2]}],
        ["GET", f"{host.base_url}/api/no/such/route", None],
    ]
    started = host.post("/api/orchestrators/fetch_urls", {"calls": calls})
    assert started.status == 202, started.text

    status = host.wait_for_status(started.json()["id"])

    assert status["runtimeStatus"] == "Completed", status
    get_resp, post_resp, missing_resp = status["output"]
    for response in (get_resp, post_resp, missing_resp):
        assert {"statusCode", "headers", "content"} <= set(response), response
    assert get_resp["statusCode"] == 200
    echoed = json.loads(get_resp["content"])
    assert echoed["method"] == "GET"
    assert echoed["route"] == {"name": "durable"}
    assert echoed["query"] == {"via": "call_http"}
    assert post_resp["statusCode"] == 201
    assert json.loads(post_resp["content"]) == {"code": 201, "method": "POST", "json": {"posted": [1, 2]}}
    # A non-2xx answer is a result, not a failure of the orchestration.
    assert missing_resp["statusCode"] == 404
