"""HTTP helpers shared by the starters: the JSON error shape and the error that maps to it."""

from __future__ import annotations

import json
from typing import Any, Literal

import azure.functions as func


class BadRequestError(Exception):
    """The request is malformed; answered with 400 and `{"error": {"code", "message"}}`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_response(status_code: int, code: str, message: str) -> func.HttpResponse:
    """A JSON error response in the shape every route of this app uses."""
    body = json.dumps({"error": {"code": code, "message": message}})
    return func.HttpResponse(body, status_code=status_code, mimetype="application/json")


def bad_request(err: BadRequestError) -> func.HttpResponse:
    return error_response(400, err.code, err.message)


async def raise_event(client: Any, instance_id: str, event: str, data: Any) -> Literal["raised", "finished", "missing"]:
    """Raise `event` on an instance the caller found live; "finished" or "missing" when it ended or vanished
    in between. The SDK raises bare Exceptions worded by status code (410: gone, 404: no instance)."""
    try:
        await client.raise_event(instance_id, event, data)
    except Exception as exc:
        text = str(exc)
        if "gone" in text:
            return "finished"
        if "No instance" in text:
            return "missing"
        raise
    return "raised"
