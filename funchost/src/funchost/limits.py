"""Size limits of request bodies and orchestration outputs: the Functions host's request body limit.

The limit is the ``FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`` app setting in bytes, 104857600 (100 MiB) when it is
unset or not a whole number, as azure-functions-host reads it (``HttpRequestBodySizeMiddleware``,
``ScriptConstants.DefaultMaxRequestBodySize``). funchost holds every HTTP request body to it (a 413 above),
the orchestration input of a start and the data of a raised event to it after they are decoded, and an
orchestration's output to it (a larger one fails the orchestration instead of being stored).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

BODY_LIMIT_SETTING = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"
DEFAULT_BODY_LIMIT = 104_857_600


def body_limit_from(environ: Mapping[str, str]) -> int:
    """The limit in bytes: the setting when it is a whole number above 0 (the host parses it as a long)."""
    raw = environ.get(BODY_LIMIT_SETTING, "").strip()
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_BODY_LIMIT
    return value if value > 0 else DEFAULT_BODY_LIMIT


def body_limit() -> int:
    return body_limit_from(os.environ)
