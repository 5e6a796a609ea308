"""Retry policies of agent steps, computed deterministically so orchestrators can replay them.

The SDK's ``RetryOptions`` has a fixed interval only; agent steps need exponential backoff with
jitter, presets and a cap, and must never retry an error that cannot succeed later. Jitter comes
from a hash of the run id, the step and the attempt, so a replay computes the same delay.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MAX_ATTEMPTS_CAP = 10
MAX_DELAY_CAP_S = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before trying a failed step again.

    Attributes:
        max_attempts: Attempts in all, the first included (1 means no retry); at most 10.
        initial_delay_s: Delay before the second attempt.
        backoff_coefficient: Growth of the delay per attempt (1.0: fixed delay).
        max_delay_s: Upper bound of one delay; at most an hour.
        jitter: Spread of each delay, as a fraction (0.25: ±25%).
        linear: Grow the delay linearly (initial × attempt) instead of exponentially.
    """

    max_attempts: int = 4
    initial_delay_s: float = 1.0
    backoff_coefficient: float = 2.0
    max_delay_s: float = 60.0
    jitter: float = 0.25
    linear: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS_CAP:
            raise ValueError(f"max_attempts must be between 1 and {MAX_ATTEMPTS_CAP}")
        if self.initial_delay_s < 0 or not 0 <= self.max_delay_s <= MAX_DELAY_CAP_S:
            raise ValueError("delays must be positive and at most an hour")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be a fraction below 1")

    def delay_s(self, attempt: int, key: str, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based) of the step named ``key``.

        A provider's ``Retry-After`` is a floor: waiting less would only be refused again.
        """
        if self.linear:
            base = self.initial_delay_s * attempt
        else:
            base = self.initial_delay_s * self.backoff_coefficient ** (attempt - 1)
        base = min(base, self.max_delay_s)
        digest = hashlib.sha256(f"{key}#{attempt}".encode()).digest()
        unit = int.from_bytes(digest[:8], "big") / 2**64  # deterministic in [0, 1)
        delay = base * (1 + self.jitter * (2 * unit - 1))
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return round(min(delay, MAX_DELAY_CAP_S), 3)


PRESETS: dict[str, RetryPolicy] = {
    "exponential_backoff": RetryPolicy(),
    "fixed_delay": RetryPolicy(max_attempts=4, initial_delay_s=5.0, backoff_coefficient=1.0, jitter=0.0),
    "linear_backoff": RetryPolicy(max_attempts=5, initial_delay_s=1.0, linear=True),
    "no_retry": RetryPolicy(max_attempts=1),
}


def policy_named(name: str | None) -> RetryPolicy:
    """The preset ``name`` (None: exponential_backoff); unknown names raise ValueError listing the presets."""
    if name is None:
        return PRESETS["exponential_backoff"]
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown retry preset {name!r}; use one of {', '.join(PRESETS)}") from None
