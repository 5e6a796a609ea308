"""An HTTP fuzz of funchost: 10,000 seeded malformed requests across every route, on both stores.

Management routes (both prefixes), the app's routes and the admin routes get bad JSON, JSON nested too
deep, huge integers, bad UTF-8, unknown charsets, bodies that are not their Content-Encoding, bad Host
headers, continuation tokens this host never issued, odd ids and query parameters, and raw malformed
request lines over a socket. None may get a 5xx or no answer, every 4xx must be the JSON error shape
``{"error": {"code", "message"}}``, and the host's resident memory after the run must be within 20% of
what it was after a warm-up. The generator is seeded: a failure names the request that caused it, and the
same seed sends the same requests again.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import threading
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from tests.integration._raw_http import RawAnswer, error_shape_problem, request_bytes, send_raw

pytestmark = [pytest.mark.soak, pytest.mark.timeout(600)]

SEED = 20261203
REQUESTS = 10_000
WARM_UP = 1_000
CLIENTS = 4
MAX_RSS_GROWTH = 0.20
PREFIXES = ("/runtime/webhooks/durabletask", "/durabletask")
ODD_IDS = [".", "..", "%2F", "a%2Fb", "a%5Cb", "a%23b", "a%3Fb", "%00", "a%09b", "%7F", "@x@y", "x" * 300,
           "%C3%A9", "%F0%9F%98%80", "%FF", "a%20b", "%25", "...", "-", "_", "a:b", "a;b", "%2E", "%2E%2E"]
BAD_TOKENS = ["!!!", "NQ==", "W10=", "W3t9LCJ4Il0=", "eyJ4IjoxfQ==", "bnVsbA==", "%FF", "W1tbW1tbW1s=",
              base64.b64encode(json.dumps({"PartitionKey": "a\nb", "RowKey": 1}).encode()).decode(), "x" * 3000]
BAD_QUERIES = ["top=-1", "top=abc", "top=99999999999999999999", "timeout=abc", "timeout=-5", "timeout=1e999",
               "runtimeStatus=Nope", "createdTimeFrom=yesterday", "createdTimeTo=%FF", "showHistory=maybe",
               "showInput=2", "op=", "restartWithNewInstanceId=perhaps", "instanceIdPrefix=%00",
               "fetchState=x", "returnInternalServerErrorOnFailure=q", "version=%00%01"]


def _routes(rng: random.Random) -> tuple[str, str]:
    """A method and a path on some route of the host, with an odd id now and then."""
    iid = rng.choice(ODD_IDS) if rng.random() < 0.5 else f"fuzz-{rng.randrange(50)}"
    key = rng.choice(ODD_IDS) if rng.random() < 0.5 else f"k{rng.randrange(10)}"
    name = rng.choice(["echo", "Tally", "nope", "call_entity_named", quote("x/y", safe=""), "%40"])
    prefix = rng.choice(PREFIXES)
    method, path = rng.choice([
        ("POST", f"{prefix}/orchestrators/{name}"), ("POST", f"{prefix}/orchestrators/{name}/{iid}"),
        ("GET", f"{prefix}/instances"), ("DELETE", f"{prefix}/instances"), ("GET", f"{prefix}/instances/{iid}"),
        ("DELETE", f"{prefix}/instances/{iid}"), ("POST", f"{prefix}/instances/{iid}/raiseEvent/{name}"),
        ("POST", f"{prefix}/instances/{iid}/terminate"), ("POST", f"{prefix}/instances/{iid}/suspend"),
        ("POST", f"{prefix}/instances/{iid}/resume"), ("POST", f"{prefix}/instances/{iid}/restart"),
        ("POST", f"{prefix}/instances/{iid}/rewind"), ("POST", f"{prefix}/entities/{name}/{key}?op=add"),
        ("GET", f"{prefix}/entities/{name}/{key}"), ("GET", f"{prefix}/entities/{name}"),
        ("GET", f"{prefix}/entities"), ("POST", f"/api/start/{name}"), ("GET", f"/api/echo/{iid}"),
        ("POST", f"/api/echo/{key}"), ("GET", "/admin/host/status"), ("PUT", f"{prefix}/instances/{iid}"),
        ("GET", f"/api/nowhere/{iid}"),
    ])
    if rng.random() < 0.3:
        path += ("&" if "?" in path else "?") + rng.choice(BAD_QUERIES)
    return method, path


def _json_body(rng: random.Random) -> bytes:
    depth = rng.choice([65, 100, 1000, 100_000])
    return rng.choice([
        b"[" * depth + b"]" * depth,
        b'{"a":' * depth + b"1" + b"}" * depth,
        b"1" * rng.choice([4301, 5000, 50_000]),
        b'{"n": -' + b"9" * 5000 + b"}",
        b"[1e400]", b"NaN", b"[Infinity]", b"-Infinity",
        b'{"a": 1', b"[1, 2,,]", b"{'a': 1}", b'"unterminated', b"\x00\x01\x02", b"{}" * 50, b"tru",
        json.dumps({"text": "x" * rng.randrange(1, 100)}).encode()[: rng.randrange(1, 30)],
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))),
    ])


def _malformed(rng: random.Random, port: int) -> bytes:
    """One malformed request as bytes."""
    method, path = _routes(rng)
    headers: dict[str, str] = {"Content-Type": "application/json"}
    kind = rng.randrange(9)
    body = b""
    if kind == 0:
        body = _json_body(rng)
    elif kind == 1:
        body = rng.choice([b'"caf\xe9"', b'"\xff\xfe"', b'{"a": "\xc3\x28"}', b'\xed\xa0\x80', b'"\xf0\x28\x8c"'])
    elif kind == 2:
        body = b'"x"'
        headers["Content-Type"] = "application/json; charset=" + rng.choice(
            ["nope", "base64", "rot13", "utf-99", "hex", "", "utf-16", "utf-32", "x" * 200, "zlib_codec"])
    elif kind == 3:
        packed = rng.choice([b'{"plain": 1}', gzip.compress(b"1")[:-9], zlib.compress(b'{"a": 1}')[:-4],
                             b"\x1f\x8b\x08\x00junk", b"\x78\x9c", zlib.compress(b"1" * 50)[:6], b"x"])
        body = packed
        headers["Content-Encoding"] = rng.choice(["gzip", "deflate", "br", "zstd", "gzip, deflate", "x-gzip"])
        if rng.random() < 0.3:  # the same, in chunks
            headers["Content-Length"] = None  # type: ignore[assignment]
            headers["Transfer-Encoding"] = "chunked"
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(packed), packed)
    elif kind == 4:
        headers["Host"] = rng.choice(["127.0.0.1:99999", "h:port", "h:-1", "h:1:2", "h:65536", ":", "h:0x50"])
        body = b"1"
    elif kind == 5:
        token = rng.choice(BAD_TOKENS)
        if rng.random() < 0.5:
            headers["x-ms-continuation-token"] = token
        else:
            path += ("&" if "?" in path else "?") + "continuationToken=" + quote(token, safe="%")
    elif kind == 6:  # a raw malformed request line or header block
        return rng.choice([
            b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET\r\n\r\n", b" / HTTP/1.1\r\n\r\n",
            b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n\r\n",
            b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: " + b"b" * 20_000 + b"\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"G\xe9T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n",
        ])
    elif kind == 7:
        body = b"1"
    else:  # a body that would be fine, to routes and ids that are not
        body = json.dumps(rng.choice([None, 1, "text", {"output_chars": 3}, {"name": "Tally", "key": "a/b"}])).encode()
    return request_bytes(method, path, port, body, headers)


def _problem(request: bytes, answer: RawAnswer) -> str | None:
    if answer.status == 0:
        return "no answer" + (" (timed out)" if answer.timed_out else "")
    if answer.status >= 500:
        return f"{answer.status}: {answer.body[:200]!r}"
    if 400 <= answer.status < 500:
        return error_shape_problem(answer)
    return None


def _fire(host: FunchostProcess, requests: list[bytes]) -> tuple[Counter[int], list[str]]:
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    lock = threading.Lock()

    def one(request: bytes) -> None:
        answer = send_raw(host.port, request, timeout=15)
        problem = _problem(request, answer)
        with lock:
            statuses[answer.status] += 1
            if problem:
                problems.append(f"{problem} <- {request[:160]!r}")

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, requests))
    return statuses, problems


def test_ten_thousand_malformed_requests_get_json_4xx_and_no_5xx(start_host: StartHost) -> None:
    host = start_host("bad_requests")
    rng = random.Random(SEED)
    warm_up = [_malformed(rng, host.port) for _ in range(WARM_UP)]
    requests = [_malformed(rng, host.port) for _ in range(REQUESTS)]
    statuses, problems = _fire(host, warm_up)
    rss_after_warm_up = host.rss_bytes() // 1024
    more, later = _fire(host, requests)
    statuses.update(more)
    problems.extend(later)
    rss_at_end = host.rss_bytes() // 1024
    print(f"\nstatuses: {dict(sorted(statuses.items()))}; RSS after warm-up {rss_after_warm_up} KiB, "
          f"at the end {rss_at_end} KiB")
    assert not problems, f"{len(problems)} bad answers of {WARM_UP + REQUESTS}; first ones:\n" + \
        "\n".join(problems[:20])
    assert sum(n for s, n in statuses.items() if 400 <= s < 500) > REQUESTS // 2  # the fuzz reached the checks
    assert rss_at_end <= rss_after_warm_up * (1 + MAX_RSS_GROWTH), (rss_after_warm_up, rss_at_end)
