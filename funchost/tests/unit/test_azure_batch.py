"""The table-transaction codec of the Azure store: what it writes, and how it reads the service's answer.

The same code runs against Azurite in tests/integration/test_azure_store.py; these pin the format and
the error handling without a server.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from funchost.stores._azure_batch import Operation, TransactionError, _entity, _part, _results

BASE = "http://127.0.0.1:10002/devstoreaccount1"


def answer(*parts: str) -> str:
    """A changeset answer as the Table service writes it (CRLF line ends)."""
    text = "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
    for part in parts:
        text += ("--changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
                 f"\r\n{part}\r\n")
    return text + "--changesetresponse_2--\r\n--batchresponse_1--\r\n"


def test_entities_keep_their_types() -> None:
    when = datetime(2026, 11, 22, 19, 58, 5, 803186, tzinfo=timezone(timedelta(hours=2)))
    entity = _entity({"PartitionKey": "p", "RowKey": "r", "S": "x", "I": 7, "B": True, "F": 1.5, "D": when,
                      "Gone": None})
    assert entity == {"PartitionKey": "p", "RowKey": "r", "S": "x", "I": 7, "B": True, "F": 1.5,
                      "F@odata.type": "Edm.Double", "D": "2026-11-22T17:58:05.803186Z", "D@odata.type": "Edm.DateTime"}


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1])
def test_an_integer_beyond_32_bits_is_refused(value: int) -> None:
    with pytest.raises(TypeError, match="32-bit"):
        _entity({"PartitionKey": "p", "RowKey": "r", "N": value})


def test_a_value_of_another_type_is_refused() -> None:
    with pytest.raises(TypeError, match="list"):
        _entity({"PartitionKey": "p", "RowKey": "r", "L": [1]})


def test_keys_are_escaped_in_the_address_of_a_row() -> None:
    part = _part(BASE, "Hist", 0, Operation("upsert", {"PartitionKey": "it's a/b", "RowKey": "é"}))
    assert f"PUT {BASE}/Hist(PartitionKey='it%27%27s%20a%2Fb',RowKey='%C3%A9') HTTP/1.1\r\n" in part
    assert "If-Match" not in part


def test_a_guarded_replace_carries_the_etag_and_an_insert_posts_to_the_table() -> None:
    etag = "W/\"datetime'2026-11-22T19%3A58%3A05.8102620Z'\""
    replace = _part(BASE, "Hist", 1, Operation("replace", {"PartitionKey": "p", "RowKey": "s"}, etag))
    assert f"If-Match: {etag}\r\n" in replace and "Content-ID: 1\r\n" in replace
    create = _part(BASE, "Hist", 2, Operation("create", {"PartitionKey": "p", "RowKey": "s", "N": 1}))
    assert f"POST {BASE}/Hist HTTP/1.1\r\n" in create
    payload = create.rsplit("\r\n\r\n", 1)[1].strip()
    assert json.loads(payload) == {"PartitionKey": "p", "RowKey": "s", "N": 1}
    assert f"Content-Length: {len(payload.encode())}\r\n" in create


def test_the_etags_of_a_successful_transaction_are_read_in_order() -> None:
    text = answer("HTTP/1.1 204 No Content\r\nDataServiceVersion: 3.0;\r\nETag: W/\"one\"\r\n",
                  "HTTP/1.1 201 Created\r\nLocation: x\r\nETag: W/\"two\"\r\n")
    assert _results(text, 2) == ['W/"one"', 'W/"two"']


def test_a_refused_operation_raises_with_its_status_code_and_index() -> None:
    error = {"odata.error": {"code": "UpdateConditionNotSatisfied", "message": {
        "lang": "en-US", "value": "1:The update condition specified in the request was not satisfied.\nRequestId:x"}}}
    text = answer("HTTP/1.1 412 Precondition Failed\r\nContent-ID: 2\r\n"
                  "Content-Type: application/json;odata=minimalmetadata;charset=utf-8\r\n\r\n" + json.dumps(error))
    with pytest.raises(TransactionError) as raised:
        _results(text, 2)
    err = raised.value
    assert (err.status_code, err.error_code, err.index) == (412, "UpdateConditionNotSatisfied", 1)
    assert "update condition" in str(err)


def test_an_answer_for_fewer_operations_than_sent_is_an_error() -> None:
    with pytest.raises(Exception, match="2 operations was answered for 1"):
        _results(answer("HTTP/1.1 204 No Content\r\nETag: W/\"one\"\r\n"), 2)
