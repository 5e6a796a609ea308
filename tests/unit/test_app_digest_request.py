"""Validation of `POST /api/documents/digest` input, at the HTTP boundary (starters/documents.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrators.document_digest import DigestRequest
from starters._http import BadRequestError
from starters.documents import MAX_TEXT_CHARS, parse_digest_request, parse_wait


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_valid_request_with_and_without_max_sentences() -> None:
    assert parse_digest_request(body({"text": "Hello there."})) == DigestRequest("Hello there.", 3)
    assert parse_digest_request(body({"text": "Hi.", "max_sentences": 20})) == DigestRequest("Hi.", 20)
    assert parse_digest_request(body({"text": "x" * MAX_TEXT_CHARS, "max_sentences": 1})).max_sentences == 1


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"", "invalid_json"),
        (body(["text"]), "invalid_json"),
        (body({}), "missing_text"),
        (body({"text": None}), "missing_text"),
        (body({"text": " \n\t "}), "missing_text"),
        (body({"text": 42}), "invalid_text"),
        (body({"text": "x" * (MAX_TEXT_CHARS + 1)}), "text_too_long"),
        (body({"text": "Hi.", "max_sentences": 0}), "invalid_max_sentences"),
        (body({"text": "Hi.", "max_sentences": 21}), "invalid_max_sentences"),
        (body({"text": "Hi.", "max_sentences": "3"}), "invalid_max_sentences"),
        (body({"text": "Hi.", "max_sentences": 2.5}), "invalid_max_sentences"),
        (body({"text": "Hi.", "max_sentences": True}), "invalid_max_sentences"),
        (body({"text": "Hi.", "max_sentences": None}), "invalid_max_sentences"),
    ],
)
def test_invalid_request_is_rejected_with_a_code(raw: bytes, code: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_digest_request(raw)

    assert caught.value.code == code
    assert caught.value.message


@pytest.mark.parametrize(("value", "seconds"), [(None, None), ("10", 10.0), ("0.5", 0.5), ("60", 60.0)])
def test_wait_accepts_seconds_up_to_a_minute(value: str | None, seconds: float | None) -> None:
    assert parse_wait(value) == seconds


@pytest.mark.parametrize("value", ["0", "-1", "60.5", "abc", "", "nan", "inf"])
def test_wait_rejects_other_values(value: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_wait(value)

    assert caught.value.code == "invalid_wait"
