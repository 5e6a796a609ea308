"""The request body limit is read as the Functions host reads FUNCTIONS_REQUEST_BODY_SIZE_LIMIT."""

from __future__ import annotations

import pytest

from funchost.limits import BODY_LIMIT_SETTING, DEFAULT_BODY_LIMIT, body_limit_from


def test_the_default_is_the_hosts_100_mib() -> None:
    assert DEFAULT_BODY_LIMIT == 100 * 1024 * 1024
    assert body_limit_from({}) == DEFAULT_BODY_LIMIT


@pytest.mark.parametrize(("raw", "limit"), [("2000", 2000), (" 4096 ", 4096), ("", DEFAULT_BODY_LIMIT),
                                            ("10MB", DEFAULT_BODY_LIMIT), ("1.5", DEFAULT_BODY_LIMIT),
                                            ("0", DEFAULT_BODY_LIMIT), ("-1", DEFAULT_BODY_LIMIT)])
def test_a_whole_number_of_bytes_sets_it_and_anything_else_keeps_the_default(raw: str, limit: int) -> None:
    assert body_limit_from({BODY_LIMIT_SETTING: raw}) == limit
