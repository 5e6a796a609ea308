"""Small timing helpers shared by the benchmark scripts: latency percentiles and throughput."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of a set of latencies, in milliseconds."""

    count: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float


def summarize(seconds: Sequence[float]) -> LatencySummary:
    """Summarize latencies measured in seconds (at least two of them)."""
    if len(seconds) < 2:
        raise ValueError("need at least two samples to compute percentiles")
    ms = [s * 1000.0 for s in seconds]
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return LatencySummary(
        count=len(ms), p50_ms=cuts[49], p95_ms=cuts[94], mean_ms=statistics.fmean(ms), min_ms=min(ms), max_ms=max(ms)
    )


@dataclass(frozen=True)
class Throughput:
    """`count` workflows that all finished `seconds` after the first was started."""

    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")
