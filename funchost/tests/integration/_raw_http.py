"""Raw HTTP/1.1 over a socket, for requests no HTTP client library will send (bad request lines, bad
headers, bodies that lie about their encoding), and the check of the JSON error shape
``{"error": {"code", "message"}}`` that every 4xx answer of funchost has."""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class RawAnswer:
    status: int  # 0: the connection closed (or timed out) without a status line
    headers: dict[str, str]
    body: bytes
    timed_out: bool = False

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


def _parse(data: bytes, timed_out: bool) -> RawAnswer:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2) if lines and lines[0] else []
    status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return RawAnswer(status, headers, body, timed_out)


def send_raw(port: int, data: bytes, timeout: float = 10.0) -> RawAnswer:
    """Send ``data`` as is and read one answer (up to its Content-Length, or until the peer closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        # The host may answer and close before it read everything we meant to send.
        with contextlib.suppress(OSError):
            sock.sendall(data)
        received = b""
        timed_out = False
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
                head, sep, body = received.partition(b"\r\n\r\n")
                if sep:
                    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                                   if line.lower().startswith(b"content-length:")), None)
                    if length is not None and len(body) >= length:
                        break
        except TimeoutError:
            timed_out = True
        except ConnectionResetError:
            pass
    return _parse(received, timed_out)


def request_bytes(method: str, target: str, port: int, body: bytes = b"",
                  headers: dict[str, str] | None = None) -> bytes:
    """One request as bytes; ``headers`` may override Host and Content-Length (None values drop a header)."""
    fields: dict[str, str | None] = {"Host": f"127.0.0.1:{port}", "Content-Length": str(len(body)),
                                     "Connection": "close"}
    fields.update(headers or {})
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v is not None)
    return head.encode("latin-1") + b"\r\n" + body


def send(port: int, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None,
         timeout: float = 10.0) -> RawAnswer:
    return send_raw(port, request_bytes(method, target, port, body, headers), timeout)


def error_shape_problem(answer: RawAnswer) -> str | None:
    """What is wrong with a 4xx answer's body (JSON ``{"error": {"code", "message"}}``), or None."""
    if "application/json" not in answer.headers.get("content-type", ""):
        return f"{answer.status} with Content-Type {answer.headers.get('content-type')!r}: {answer.body[:200]!r}"
    try:
        error = answer.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{answer.status} without the error shape: {answer.body[:200]!r}"
    if not isinstance(error, dict) or not isinstance(error.get("code"), str) \
            or not isinstance(error.get("message"), str) or not error["message"].strip():
        return f"{answer.status} with an incomplete error: {answer.body[:200]!r}"
    return None


def expect_json_error(answer: RawAnswer, status: int, says: str | None = None) -> str:
    """Assert a ``status`` answer in the error shape (whose message contains ``says``); returns the message."""
    assert answer.status == status, f"expected {status}, got {answer.status}: {answer.body[:300]!r}"
    problem = error_shape_problem(answer)
    assert problem is None, problem
    message = str(answer.json()["error"]["message"])
    if says is not None:
        assert says.lower() in message.lower(), f"{message!r} does not say {says!r}"
    return message
