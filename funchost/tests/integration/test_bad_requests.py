"""Requests that cannot be served get a JSON 4xx that says why, on management and app routes alike.

One test per kind of bad request the HTTP fuzz (test_http_fuzz.py) found answered with a 5xx or in
plain text: JSON that parses but cannot be used, text that cannot be decoded, bodies that are not what
their Content-Encoding says, a bad Host header, continuation tokens this host never issued, ids a task
hub cannot hold, protocol errors aiohttp answers itself, and bodies or outputs over the size limit.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import zlib
from urllib.parse import quote

import pytest

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from tests.integration._raw_http import RawAnswer, error_shape_problem, expect_json_error, send, send_raw

APP = "bad_requests"
DURABLE = "/runtime/webhooks/durabletask"
# Every management route that takes a body, on an instance or entity nothing else uses.
BODY_ROUTES = [
    f"{DURABLE}/orchestrators/echo",
    f"{DURABLE}/instances/no-such-instance/raiseEvent/go",
    f"{DURABLE}/entities/Tally/k1?op=add",
    "/durabletask/orchestrators/echo",  # the SDK client's RPC address
]


@pytest.fixture
def host(start_host: StartHost) -> FunchostProcess:
    return start_host(APP)


def _instance_count(host: FunchostProcess) -> int:
    res = host.get(f"{DURABLE}/instances")
    assert res.status == 200, res.text
    return len(res.json())


UNUSABLE_JSON = [
    (b"[" * 100_000 + b"]" * 100_000, "more than 64 levels deep"),
    (b"[" * 65 + b"]" * 65, "more than 64 levels deep"),
    (b'{"a": ' + b"7" * 5000 + b"}", "integer of 5000 digits"),
    (b"[1e999]", "too large"),
    (b"NaN", "NaN is not a JSON value"),
    (b"{not json", "must be JSON"),
]


def test_json_that_cannot_be_used_is_400_on_every_body_route(host: FunchostProcess) -> None:
    for body, says in UNUSABLE_JSON:
        for route in BODY_ROUTES:
            answer = send(host.port, "POST", route, body, {"Content-Type": "application/json"})
            expect_json_error(answer, 400, says)
    assert _instance_count(host) == 0


def test_json_nested_64_levels_is_accepted(host: FunchostProcess) -> None:
    deep = b"[" * 64 + b"]" * 64
    answer = send(host.port, "POST", f"{DURABLE}/orchestrators/echo", deep, {"Content-Type": "application/json"})
    assert answer.status == 202, answer.body


UNDECODABLE = [
    (b'"caf\xe9"', "application/json", "not valid utf-8"),
    (b'"\xff\xfe\xfd"', "application/json; charset=utf-8", "not valid utf-8"),
    (b'"x"', "application/json; charset=no-such-charset", "not a known text encoding"),
    (b'"x"', "application/json; charset=base64", "not a text encoding"),
]


def test_body_text_that_cannot_be_decoded_is_400(host: FunchostProcess) -> None:
    for body, content_type, says in UNDECODABLE:
        for route in BODY_ROUTES:
            expect_json_error(send(host.port, "POST", route, body, {"Content-Type": content_type}), 400, says)


def test_a_body_in_another_charset_is_decoded(host: FunchostProcess) -> None:
    answer = send(host.port, "POST", f"{DURABLE}/orchestrators/echo/latin1-input", '"café"'.encode("latin-1"),
                  {"Content-Type": "application/json; charset=latin-1"})
    assert answer.status == 202, answer.body
    assert host.wait_for_status("latin1-input")["output"] == "CAFÉ"


NOT_THEIR_ENCODING = [
    (b'{"plain": true}', "gzip"),
    (b'{"plain": true}', "deflate"),
    (b"\x1f\x8b\x08\x00 not deflate data", "gzip"),
    (b"x", "br"),
    (zlib.compress(b'{"a": 1}')[:-3], "deflate"),
]


def test_a_body_that_is_not_its_content_encoding_is_400(host: FunchostProcess) -> None:
    for (body, encoding), route in itertools.product(NOT_THEIR_ENCODING,
                                                     [*BODY_ROUTES, "/api/start/echo", "/api/echo/word"]):
        answer = send(host.port, "POST", route, body, {"Content-Type": "application/json",
                                                       "Content-Encoding": encoding}, timeout=10)
        assert not answer.timed_out, f"POST {route} with a broken {encoding} body got no answer"
        expect_json_error(answer, 400)
    assert _instance_count(host) == 0


def test_a_gzip_body_is_read(host: FunchostProcess) -> None:
    answer = send(host.port, "POST", f"{DURABLE}/orchestrators/echo/gzipped", gzip.compress(b'"quiet"'),
                  {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert answer.status == 202, answer.body
    assert host.wait_for_status("gzipped")["output"] == "QUIET"


def test_a_host_header_that_is_no_host_and_port_is_400(host: FunchostProcess) -> None:
    for host_header in ["127.0.0.1:99999", "127.0.0.1:port", "127.0.0.1:-1", "127.0.0.1:7071:1"]:
        for method, route in [("GET", f"{DURABLE}/instances"), ("POST", f"{DURABLE}/orchestrators/echo"),
                              ("GET", "/api/echo/word"), ("POST", "/api/start/echo")]:
            expect_json_error(send(host.port, method, route, b"1", {"Host": host_header}), 400, "Host header")


def _token(value: object) -> str:
    return quote(base64.urlsafe_b64encode(json.dumps(value).encode()).decode())


BAD_TOKENS = [
    "not-base64!", _token(5), _token([1]), _token([1, 2, 3]), _token([{}, "x"]), _token(["t", "x"]),
    _token([True, "x"]), _token({"PartitionKey": 5}), _token({"PartitionKey": "a\nb", "RowKey": "x"}),
    _token({"other": "x"}), _token(None), quote(base64.urlsafe_b64encode(b"[" * 5000).decode()),
    quote(base64.urlsafe_b64encode(b"\xff\xfe").decode()), quote("é"),
]


def test_a_continuation_token_this_host_never_issued_is_400(host: FunchostProcess) -> None:
    for token, route in itertools.product(BAD_TOKENS, (f"{DURABLE}/instances", f"{DURABLE}/entities",
                                                       f"{DURABLE}/entities/Tally")):
        expect_json_error(send(host.port, "GET", f"{route}?continuationToken={token}"), 400, "continuation token")


def test_a_continuation_token_in_the_header_is_checked_too(host: FunchostProcess) -> None:
    answer = send(host.port, "GET", f"{DURABLE}/instances", headers={"x-ms-continuation-token": _token(7)})
    expect_json_error(answer, 400, "continuation token")


BAD_INSTANCE_IDS = [
    (".", "'.' and '..'"), ("..", "'.' and '..'"), ("a/b", "cannot store"), ("a\\b", "cannot store"),
    ("a#b", "cannot store"), ("a?b", "cannot store"), ("a\tb", "cannot store"), ("a\x7fb", "cannot store"),
    ("x" * 257, "between 1 and 256"), ("@entity@like", "must not start with '@'"),
]


def _instance_routes(iid: str) -> list[tuple[str, str]]:
    return [("POST", f"{DURABLE}/orchestrators/echo/{iid}"), ("GET", f"{DURABLE}/instances/{iid}"),
              ("DELETE", f"{DURABLE}/instances/{iid}"), ("POST", f"{DURABLE}/instances/{iid}/raiseEvent/go"),
              ("POST", f"{DURABLE}/instances/{iid}/terminate"), ("POST", f"{DURABLE}/instances/{iid}/suspend"),
              ("POST", f"{DURABLE}/instances/{iid}/resume"), ("POST", f"{DURABLE}/instances/{iid}/restart"),
              ("POST", f"{DURABLE}/instances/{iid}/rewind")]


def test_an_instance_id_the_task_hub_cannot_hold_is_400_on_every_instance_route(host: FunchostProcess) -> None:
    for instance_id, says in BAD_INSTANCE_IDS:
        for method, route in _instance_routes(quote(instance_id, safe="")):
            expect_json_error(send(host.port, method, route, b"1"), 400, says)
    assert _instance_count(host) == 0


BAD_ENTITY_IDS = [
    ("Tally", "a/b", "cannot store"), ("Tally", ".", "'.' and '..'"), ("Tally", "..", "'.' and '..'"),
    ("Tally", "k#1", "cannot store"), ("Tally", "k\x01", "cannot store"), ("Tally", "k" * 300, "at most 256"),
    ("Ta@lly", "k", "must not contain '@'"),
]


def test_an_entity_id_the_task_hub_cannot_hold_is_400(host: FunchostProcess) -> None:
    for name, key, says in BAD_ENTITY_IDS:
        path = f"{DURABLE}/entities/{quote(name, safe='')}/{quote(key, safe='')}"
        expect_json_error(send(host.port, "POST", f"{path}?op=add", b"1"), 400, says)
        expect_json_error(send(host.port, "GET", path), 400, says)
    listed = host.get(f"{DURABLE}/entities")
    assert listed.status == 200 and listed.json() == [], listed.text


def test_an_orchestration_calling_an_entity_the_task_hub_cannot_hold_fails_with_the_reason(
        host: FunchostProcess) -> None:
    res = host.post(f"{DURABLE}/orchestrators/call_entity_named/bad-entity-call", {"name": "Tally", "key": "a/b"})
    assert res.status == 202, res.text
    status = host.wait_for_status("bad-entity-call")
    assert status["runtimeStatus"] == "Failed", status
    assert "contains characters a task hub cannot store" in json.dumps(status["output"]), status
    # The entity route still works: nothing was queued for an entity no store can hold.
    res = host.post(f"{DURABLE}/orchestrators/call_entity_named/good-entity-call", {"name": "Tally", "key": "ok"})
    assert res.status == 202, res.text
    assert host.wait_for_status("good-entity-call")["output"] == 1


def test_an_orchestration_naming_a_sub_orchestration_id_the_task_hub_cannot_hold_fails_with_the_reason(
        host: FunchostProcess) -> None:
    for parent, child, says in (("bad-sub", "a/b", "cannot store"), ("dot-sub", "..", "'.' and '..'")):
        res = host.post(f"{DURABLE}/orchestrators/sub_named/{parent}", child)
        assert res.status == 202, res.text
        status = host.wait_for_status(parent)
        assert status["runtimeStatus"] == "Failed", status
        assert says in json.dumps(status["output"]), status
    res = host.post(f"{DURABLE}/orchestrators/sub_named/good-sub", "child-ok")
    assert res.status == 202, res.text
    assert host.wait_for_status("good-sub")["output"] == "SUB"


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /api/echo/x HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /api/echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /api/echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n",
    b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
]


def test_protocol_errors_aiohttp_answers_are_json(host: FunchostProcess) -> None:
    for raw in MALFORMED:
        answer: RawAnswer = send_raw(host.port, raw)
        assert 400 <= answer.status < 500, (raw[:40], answer.status, answer.body[:300])
        assert error_shape_problem(answer) is None, (raw[:40], error_shape_problem(answer))


def test_the_body_limit_is_the_functions_setting_and_answers_413(start_host: StartHost) -> None:
    host = start_host(APP, env={"FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": "2000"})
    big = json.dumps({"text": "x" * 3000}).encode()
    small = json.dumps({"text": "x" * 100}).encode()
    for route in [*BODY_ROUTES, "/api/start/echo", "/api/echo/word"]:
        expect_json_error(send(host.port, "POST", route, big, {"Content-Type": "application/json"}), 413, "2000")
    # A body that arrives in chunks, without a Content-Length, is counted as it comes.
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)
    for route in BODY_ROUTES:
        answer = send(host.port, "POST", route, chunked, {"Content-Length": None, "Transfer-Encoding": "chunked"})
        expect_json_error(answer, 413, "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT")
    # The limit counts the body as it is after Content-Encoding: a small gzip body cannot unpack past it.
    packed = gzip.compress(big)
    assert len(packed) < 2000
    answer = send(host.port, "POST", BODY_ROUTES[0], packed, {"Content-Encoding": "gzip"})
    expect_json_error(answer, 413, "2000")
    assert _instance_count(host) == 0
    answer = send(host.port, "POST", f"{DURABLE}/orchestrators/echo/small", small)
    assert answer.status == 202, answer.body


def test_an_output_over_the_limit_fails_the_orchestration_with_the_reason(start_host: StartHost) -> None:
    host = start_host(APP, env={"FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": "2000"})
    for instance_id, chars in (("big-output", 3000), ("small-output", 1000)):
        res = host.post(f"{DURABLE}/orchestrators/echo/{instance_id}", {"output_chars": chars})
        assert res.status == 202, res.text
    failed = host.wait_for_status("big-output")
    assert failed["runtimeStatus"] == "Failed", failed
    assert "3002 bytes of JSON; the limit is 2000 bytes (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT)" in failed["output"]
    assert host.wait_for_status("small-output")["output"] == "x" * 1000
