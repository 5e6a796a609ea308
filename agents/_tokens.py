"""A deterministic token estimate, for the offline model and for providers that report no usage.

It is not any provider's tokenizer; it only has to be stable and roughly proportional to text length:
every word piece of up to 6 characters and every punctuation mark is one token (so a 14-letter word is
three), and each message adds a fixed overhead for its role and framing, as chat formats do.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MESSAGE_OVERHEAD = 4
_PIECE = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str | None) -> int:
    """Tokens of a text."""
    if not text:
        return 0
    return sum(math.ceil(len(piece) / 6) for piece in _PIECE.findall(text))


def count_message_tokens(messages: Sequence[Mapping[str, Any]], tools: Iterable[Mapping[str, Any]] = ()) -> int:
    """Tokens of a prompt: every message's content and tool calls plus framing, and the tool definitions."""
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD + count_tokens(message.get("content"))
        for call in message.get("tool_calls") or []:
            total += count_tokens(call.get("name")) + count_tokens(json.dumps(call.get("arguments"), sort_keys=True))
    for tool in tools:
        total += count_tokens(json.dumps(tool, sort_keys=True))
    return total
