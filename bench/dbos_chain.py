"""DBOS (PyPI `dbos`) on SQLite running the benchmark's 3-step chain, measured like funchost's.

The same three trivial steps as the funchost bench app's activities (``app/chain_steps.py``), as
``@DBOS.step`` functions inside one ``@DBOS.workflow``. Figures:

- sequential: ``DBOS.start_workflow`` then ``handle.get_result()``, one workflow at a time, after a warm-up;
- concurrent: ``DBOS.start_workflow`` for N workflows, then wait for every handle.

DBOS runs in this process with its default SQLite settings and a fresh system database in a temp dir.
``chain_and_fanout.py`` runs this script as a child process with ``--json``; run alone it prints a
short report.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR / "app")]

import chain_steps  # noqa: E402
from _timing import LatencySummary, Throughput, summarize  # noqa: E402
from dbos import DBOS, DBOSConfig  # noqa: E402


@DBOS.step()
def shout_step(text: str) -> str:
    return chain_steps.shout(text)


@DBOS.step()
def reverse_step(text: str) -> str:
    return chain_steps.reverse(text)


@DBOS.step()
def tag_length_step(text: str) -> str:
    return chain_steps.tag_length(text)


@DBOS.workflow()
def run_chain(text: str) -> str:
    return tag_length_step(reverse_step(shout_step(text)))


@dataclass(frozen=True)
class DbosFigures:
    """What one DBOS run measured."""

    dbos_version: str
    sequential: LatencySummary
    concurrent: Throughput


class WrongResultError(Exception):
    """A workflow returned something other than what its steps compute."""


def _check(text: str, output: object) -> None:
    expected = chain_steps.chain_output(text)
    if output != expected:
        raise WrongResultError(f"chain({text!r}) returned {output!r}, expected {expected!r}")


def measure(runs: int, warmup: int, concurrent: int, workdir: Path) -> DbosFigures:
    """Launch DBOS on a fresh SQLite file under `workdir`, measure, and shut it down."""
    config: DBOSConfig = {
        "name": "bench-dbos-chain",
        "system_database_url": f"sqlite:///{workdir / 'dbos.sqlite'}",
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    try:
        for i in range(warmup):
            _check(f"warm-{i}", DBOS.start_workflow(run_chain, f"warm-{i}").get_result())

        latencies: list[float] = []
        for i in range(runs):
            text = f"seq-{i}"
            started = time.perf_counter()
            output = DBOS.start_workflow(run_chain, text).get_result()
            latencies.append(time.perf_counter() - started)
            _check(text, output)

        texts = [f"par-{i}" for i in range(concurrent)]
        started = time.perf_counter()
        handles = [DBOS.start_workflow(run_chain, text) for text in texts]
        outputs = [handle.get_result() for handle in handles]
        elapsed = time.perf_counter() - started
        for text, output in zip(texts, outputs, strict=True):
            _check(text, output)
    finally:
        DBOS.destroy(destroy_registry=False)

    from importlib.metadata import version

    return DbosFigures(
        dbos_version=version("dbos"),
        sequential=summarize(latencies),
        concurrent=Throughput(count=concurrent, seconds=elapsed),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200, help="sequential start-and-await runs (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="runs before measuring (default 20)")
    parser.add_argument("--concurrent", type=int, default=500, help="workflows started at once (default 500)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-dbos-") as tmp:
        figures = measure(args.runs, args.warmup, args.concurrent, Path(tmp))

    if args.json:
        print(json.dumps(asdict(figures)))
        return 0
    seq, conc = figures.sequential, figures.concurrent
    print(f"DBOS {figures.dbos_version} on SQLite")
    print(
        f"  sequential chain, {seq.count} runs: p50 {seq.p50_ms:.2f} ms, p95 {seq.p95_ms:.2f} ms "
        f"(mean {seq.mean_ms:.2f}, min {seq.min_ms:.2f}, max {seq.max_ms:.2f})"
    )
    print(f"  {conc.count} concurrent chains: {conc.seconds:.2f} s, {conc.per_second:.1f} workflows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
