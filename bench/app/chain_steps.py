"""The trivial work done by every step of the benchmark, shared by the funchost activities and the DBOS steps.

Both engines import these functions, so the benchmark compares orchestration overhead, not the work.
"""

from __future__ import annotations


def shout(text: str) -> str:
    """Step 1 of the chain."""
    return text.upper()


def reverse(text: str) -> str:
    """Step 2 of the chain."""
    return text[::-1]


def tag_length(text: str) -> str:
    """Step 3 of the chain."""
    return f"{text}:{len(text)}"


def add_one(number: int) -> int:
    """The work of one fan-out branch."""
    return number + 1


def chain_output(text: str) -> str:
    """What a chain started with `text` returns, to check each engine's result."""
    return tag_length(reverse(shout(text)))


def fan_in_output(count: int) -> int:
    """What the fan-out/fan-in over `count` branches returns."""
    return sum(add_one(i) for i in range(count))
