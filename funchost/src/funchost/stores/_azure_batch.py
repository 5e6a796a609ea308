"""Table transactions (entity group transactions) encoded and decoded here, sent through the SDK's pipeline.

A checkpoint's history write is one transaction, on the path of every orchestration step. The tables
SDK builds a transaction's multipart body and parses the answer with the standard library's e-mail
package, which costs more CPU than Azurite takes to serve the call (``bench/azure_table_transactions.py``
measures both ways). The format is small and fixed (an OData batch holding one changeset), so it is
written and read here; the request still goes through the table client's own pipeline, which signs
it (shared key or Microsoft Entra token) and applies its policies.

Only what the history table needs: insert-or-replace, insert, and replace guarded by an ETag, on
entities of strings, booleans, 32-bit integers, floats and datetimes.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.data.tables.aio import TableClient

Row = dict[str, Any]

INT32 = range(-(2**31), 2**31)
_STATUS_LINE = re.compile(r"^HTTP/1\.[01] (\d{3})")


@dataclass(frozen=True)
class Operation:
    """``upsert``: insert or replace; ``create``: insert (409 if the row exists); ``replace``: replace the
    row only if it still has ``etag`` (412 if it changed, 404 if it is gone)."""

    kind: Literal["upsert", "create", "replace"]
    row: Row
    etag: str | None = None


class TransactionError(HttpResponseError):
    """One operation of a transaction failed, so none was applied; ``status_code`` is that operation's."""

    def __init__(self, status: int, error_code: str | None, message: str, index: int | None) -> None:
        super().__init__(message=message)
        self.status_code = status
        self.error_code = error_code
        self.index = index


async def submit(table: TableClient, operations: list[Operation]) -> list[str | None]:
    """Apply ``operations`` (one partition, at most 100) all or none; the new ETag of each row, in order.

    Raises:
        TransactionError: an operation was refused (the status of that operation, e.g. 409 or 412).
        HttpResponseError: the whole request was refused.
    """
    base = _account_url(table)
    changeset = f"changeset_{uuid.uuid4()}"
    batch = f"batch_{uuid.uuid4()}"
    parts = [_part(base, table.table_name, n, op) for n, op in enumerate(operations)]
    inner = "".join(f"--{changeset}\r\n{part}" for part in parts) + f"--{changeset}--\r\n"
    body = (f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n{inner}\r\n"
            f"--{batch}--\r\n").encode()
    request = HttpRequest("POST", f"{base}/$batch", content=body, headers={
        "x-ms-version": table.api_version,
        "DataServiceVersion": "3.0",
        "MaxDataServiceVersion": "3.0;NetFx",
        "Content-Type": f"multipart/mixed; boundary={batch}",
        "Accept": "application/json",
    })
    # The table client's generated client: its pipeline signs the request and runs the client's policies.
    response = await table._client.send_request(request, stream=True)  # unread: the pipeline would try to decode it
    await response.read()
    if response.status_code != 202:
        raise HttpResponseError(response=response)
    return _results(response.text(), len(operations))


def _account_url(table: TableClient) -> str:
    """``https://account.table.core.windows.net`` (or ``http://127.0.0.1:10002/devstoreaccount1``)."""
    url = urlsplit(table.url)  # the account's table endpoint (with a SAS, its query: not part of the base)
    return f"{url.scheme}://{url.netloc}{url.path.rstrip('/')}"


def _part(base: str, table_name: str, n: int, op: Operation) -> str:
    payload = json.dumps(_entity(op.row))
    if op.kind == "create":
        line = f"POST {base}/{table_name} HTTP/1.1"
        extra = "Prefer: return-no-content\r\n"
    else:
        keys = f"PartitionKey='{_key(op.row['PartitionKey'])}',RowKey='{_key(op.row['RowKey'])}'"
        line = f"PUT {base}/{table_name}({keys}) HTTP/1.1"
        extra = f"If-Match: {op.etag}\r\n" if op.kind == "replace" else ""
    return ("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: {n}\r\n\r\n{line}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json;odata=minimalmetadata\r\nDataServiceVersion: 3.0\r\n{extra}"
            f"Content-Length: {len(payload.encode())}\r\n\r\n{payload}\r\n")


def _key(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("PartitionKey and RowKey must be strings")
    return quote(value.replace("'", "''"), safe="")


def _entity(row: Row) -> dict[str, Any]:
    """The row as the Table service's JSON: a type annotation where JSON alone would lose the type."""
    entity: dict[str, Any] = {}
    for name, value in row.items():
        if value is None:
            continue  # an absent property (the SDK does the same)
        if isinstance(value, (bool, str)):
            entity[name] = value
        elif isinstance(value, int):
            if value not in INT32:
                raise TypeError(f"property {name}: {value} does not fit a 32-bit integer")
            entity[name] = value
        elif isinstance(value, float):
            entity[name] = value
            entity[f"{name}@odata.type"] = "Edm.Double"
        elif isinstance(value, datetime):
            entity[name] = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            entity[f"{name}@odata.type"] = "Edm.DateTime"
        else:
            raise TypeError(f"property {name}: {type(value).__name__} is not a table property type")
    return entity


def _results(text: str, count: int) -> list[str | None]:
    """Each operation's ETag, from the changeset's answer; raise for the failed operation, if any."""
    statuses: list[int] = []
    etags: list[str | None] = []
    lines = text.splitlines()
    for n, line in enumerate(lines):
        match = _STATUS_LINE.match(line)
        if match is None:
            continue
        status = int(match.group(1))
        headers: dict[str, str] = {}
        body_at = n + 1
        for body_at in range(n + 1, len(lines)):
            if not lines[body_at].strip():
                break
            name, _, value = lines[body_at].partition(":")
            headers[name.strip().lower()] = value.strip()
        if not 200 <= status < 300:
            raise _failure(status, lines[body_at + 1:])
        statuses.append(status)
        etags.append(headers.get("etag"))
    if len(statuses) != count:
        raise HttpResponseError(message=f"a table transaction of {count} operations was answered for "
                                        f"{len(statuses)} of them")
    return etags


def _failure(status: int, rest: list[str]) -> TransactionError:
    body = next((line for line in rest if line.startswith("{")), "")
    code: str | None = None
    message = f"HTTP {status}"
    index: int | None = None
    try:
        error = json.loads(body)["odata.error"]
        code = str(error.get("code")) or None
        value = str(error.get("message", {}).get("value", ""))
        head, _, tail = value.partition(":")
        if head.isdigit():  # "1:The update condition ..." names the operation that failed
            index, value = int(head), tail
        message = value.splitlines()[0] if value else message
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return TransactionError(status, code, message, index)
