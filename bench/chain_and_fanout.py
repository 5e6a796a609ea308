"""funchost on its embedded SQLite task hub against DBOS on SQLite: chain latency, chain throughput, fan-out.

Prints, on funchost's embedded SQLite store (issue 2, point 8):

(a) p50/p95 latency of a 3-activity chain started and awaited one at a time;
(b) throughput of N concurrent 3-activity chains (started all at once, measured until all are completed);
(c) wall time of one orchestration that fans out to 1,000 activities and fans in;

and DBOS (``dbos_chain.py``) running the same 3-step chain measured the same way, the ratios, and
each target with PASS or MISS. Timings are printed, never asserted.

funchost runs as a child process (``tests/support/funchost_process.py``) on ``bench/app`` with a
fresh SQLite task hub in a temp dir; this process drives it over HTTP through keep-alive aiohttp
connections, starting instances through the app's HTTP starters (which use the SDK's own client)
and polling the public status endpoint. DBOS runs in a second child process. Both children are
stopped by PID before the script exits.

Run from the repository root: ``.venv/bin/python bench/chain_and_fanout.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR), str(BENCH_DIR / "app")]

import aiohttp  # noqa: E402
import chain_steps  # noqa: E402
from _timing import LatencySummary, Throughput, summarize  # noqa: E402

from tests.support.funchost_process import FunchostProcess  # noqa: E402

INSTANCES = "/runtime/webhooks/durabletask/instances"
TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})

# Targets of issue 2, point 8, on a 2-core machine.
TARGET_CHAINS_PER_SECOND = 100.0
TARGET_FAN_OUT_SECONDS = 5.0

# Upper bounds that keep the whole run within a few minutes even when something is slow or stuck.
HOST_START_TIMEOUT = 60.0
SEQUENTIAL_TIMEOUT = 60.0
CONCURRENT_TIMEOUT = 90.0
FAN_OUT_TIMEOUT = 60.0
DBOS_TIMEOUT = 90.0

T = TypeVar("T")


class BenchError(Exception):
    """A run could not be measured: the host answered something unexpected, or an instance did not complete."""


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- figures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sequential:
    """(a): each chain's latency from the client's POST to the poll that first sees it Completed."""

    client: LatencySummary
    # createdTime -> lastUpdatedTime of each instance; None when the host's timestamps have 1 s resolution.
    server: LatencySummary | None


@dataclass(frozen=True)
class Concurrent:
    """(b): all chains started at once, from the first POST until the host lists none unfinished."""

    client: Throughput
    all_started_seconds: float
    # Earliest createdTime -> latest lastUpdatedTime; None when the timestamps have 1 s resolution.
    server: Throughput | None


@dataclass(frozen=True)
class FanOut:
    """(c): one fan-out/fan-in orchestration, from the client's POST to the poll that sees it Completed."""

    branches: int
    client_seconds: float
    server_seconds: float | None


@dataclass(frozen=True)
class DbosResult:
    version: str
    sequential: LatencySummary
    concurrent: Throughput


@dataclass
class Outcome:
    """Each figure, or why it is missing."""

    sequential: Sequential | str = "not run"
    concurrent: Concurrent | str = "not run"
    fan_out: FanOut | str = "not run"
    dbos: DbosResult | str = "not run"


# --- talking to funchost -----------------------------------------------------------------------


def _timestamp(value: Any) -> datetime | None:
    """A status timestamp, or None when it is absent or has no sub-second part (too coarse to time with)."""
    if not isinstance(value, str) or "." not in value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _server_seconds(status: dict[str, Any]) -> float | None:
    created, updated = _timestamp(status.get("createdTime")), _timestamp(status.get("lastUpdatedTime"))
    if created is None or updated is None:
        return None
    return (updated - created).total_seconds()


class FunchostClient:
    """The HTTP calls the benchmark makes, on one keep-alive aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url

    async def start(self, route: str, body: dict[str, Any]) -> str:
        """POST to one of the bench app's starters; they answer 202 {"id": instance_id}."""
        async with self._session.post(f"{self._base}/api/{route}", json=body) as resp:
            text = await resp.text()
            if resp.status != 202:
                raise BenchError(f"POST /api/{route} answered {resp.status}: {text[:300]}")
        instance_id = json.loads(text).get("id")
        if not isinstance(instance_id, str):
            raise BenchError(f"POST /api/{route} answered without an instance id: {text[:300]}")
        return instance_id

    async def status(self, instance_id: str) -> dict[str, Any]:
        async with self._session.get(f"{self._base}{INSTANCES}/{instance_id}") as resp:
            text = await resp.text()
            if resp.status not in (200, 202):
                raise BenchError(f"GET instances/{instance_id} answered {resp.status}: {text[:300]}")
        body = json.loads(text)
        if not isinstance(body, dict):
            raise BenchError(f"GET instances/{instance_id} answered a non-object: {text[:300]}")
        return body

    async def wait_terminal(self, instance_id: str, poll_interval: float) -> dict[str, Any]:
        """Poll the status endpoint until the instance is terminal (callers bound the time)."""
        while True:
            status = await self.status(instance_id)
            if status.get("runtimeStatus") in TERMINAL:
                return status
            await asyncio.sleep(poll_interval)

    async def any_unfinished(self) -> bool:
        """Whether the host lists any Pending or Running instance.

        `top=1` (a parameter of the Durable HTTP API) keeps each poll's answer to one status, so
        polling costs the host little while it runs the chains.
        """
        url = f"{self._base}{INSTANCES}?runtimeStatus=Pending,Running&top=1"
        async with self._session.get(url) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise BenchError(f"GET instances?runtimeStatus=Pending,Running answered {resp.status}: {text[:300]}")
        listed = json.loads(text)
        if not isinstance(listed, list):
            raise BenchError(f"GET instances?runtimeStatus=... answered a non-list: {text[:300]}")
        return bool(listed)


def _check_completed(status: dict[str, Any], expected: Any) -> None:
    instance_id = status.get("instanceId")
    if status.get("runtimeStatus") != "Completed":
        raise BenchError(
            f"instance {instance_id} ended {status.get('runtimeStatus')}: {str(status.get('output'))[:300]}"
        )
    if status.get("output") != expected:
        raise BenchError(f"instance {instance_id} returned {status.get('output')!r}, expected {expected!r}")


async def measure_sequential(client: FunchostClient, runs: int, warmup: int, poll_interval: float) -> Sequential:
    async def one(text: str) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        instance_id = await client.start("chain", {"text": text})
        status = await client.wait_terminal(instance_id, poll_interval)
        elapsed = time.perf_counter() - started
        _check_completed(status, chain_steps.chain_output(text))
        return elapsed, status

    for i in range(warmup):
        await one(f"warm-{i}")
    client_latencies: list[float] = []
    server_latencies: list[float | None] = []
    for i in range(runs):
        elapsed, status = await one(f"seq-{i}")
        client_latencies.append(elapsed)
        server_latencies.append(_server_seconds(status))
    server_known = [s for s in server_latencies if s is not None]
    server = summarize(server_known) if len(server_known) == len(server_latencies) else None
    return Sequential(client=summarize(client_latencies), server=server)


async def measure_concurrent(client: FunchostClient, count: int, poll_interval: float) -> Concurrent:
    texts = [f"par-{i}" for i in range(count)]
    started = time.perf_counter()
    instance_ids = await asyncio.gather(*(client.start("chain", {"text": text}) for text in texts))
    all_started = time.perf_counter() - started
    while await client.any_unfinished():
        await asyncio.sleep(poll_interval)
    elapsed = time.perf_counter() - started

    # Outside the timed window: every chain must have completed with the right output.
    limit = asyncio.Semaphore(50)

    async def fetch(instance_id: str) -> dict[str, Any]:
        async with limit:
            return await client.status(instance_id)

    statuses = await asyncio.gather(*(fetch(instance_id) for instance_id in instance_ids))
    for text, status in zip(texts, statuses, strict=True):
        _check_completed(status, chain_steps.chain_output(text))

    created = [_timestamp(s.get("createdTime")) for s in statuses]
    updated = [_timestamp(s.get("lastUpdatedTime")) for s in statuses]
    server: Throughput | None = None
    if all(c is not None for c in created) and all(u is not None for u in updated):
        first = min(c for c in created if c is not None)
        last = max(u for u in updated if u is not None)
        server = Throughput(count=count, seconds=(last - first).total_seconds())
    return Concurrent(client=Throughput(count=count, seconds=elapsed), all_started_seconds=all_started, server=server)


async def measure_fan_out(client: FunchostClient, branches: int, poll_interval: float) -> FanOut:
    started = time.perf_counter()
    instance_id = await client.start("fan-out", {"count": branches})
    status = await client.wait_terminal(instance_id, poll_interval)
    elapsed = time.perf_counter() - started
    _check_completed(status, chain_steps.fan_in_output(branches))
    return FanOut(branches=branches, client_seconds=elapsed, server_seconds=_server_seconds(status))


async def _bounded(name: str, timeout: float, make: Callable[[], Awaitable[T]]) -> T | str:
    progress(f"{name} (at most {timeout:.0f} s)")
    try:
        return await asyncio.wait_for(make(), timeout)
    except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
        return f"timed out after {timeout:.0f} s"
    except (BenchError, aiohttp.ClientError, ValueError) as err:
        return f"failed: {err}"


async def measure_funchost(base_url: str, args: argparse.Namespace, outcome: Outcome) -> None:
    """Run (a), (b), (c) in order; once one fails, the later ones are not run (the host is suspect)."""
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = FunchostClient(session, base_url)
        outcome.sequential = await _bounded(
            f"funchost (a): {args.warmup} warm-up + {args.runs} sequential chains",
            SEQUENTIAL_TIMEOUT,
            lambda: measure_sequential(client, args.runs, args.warmup, args.poll_ms / 1000.0),
        )
        if isinstance(outcome.sequential, str):
            return
        outcome.concurrent = await _bounded(
            f"funchost (b): {args.concurrent} concurrent chains",
            CONCURRENT_TIMEOUT,
            lambda: measure_concurrent(client, args.concurrent, 0.01),
        )
        if isinstance(outcome.concurrent, str):
            return
        outcome.fan_out = await _bounded(
            f"funchost (c): fan-out/fan-in over {args.fan_out} activities",
            FAN_OUT_TIMEOUT,
            lambda: measure_fan_out(client, args.fan_out, 0.005),
        )


def run_funchost(workdir: Path, args: argparse.Namespace, outcome: Outcome) -> None:
    host = FunchostProcess(
        app_dir=BENCH_DIR / "app", store=f"sqlite:{workdir / 'bench.sqlite'}", log_path=workdir / "funchost.log"
    )
    try:
        progress(f"starting funchost on port {host.port} (store {host.store})")
        try:
            host.start(timeout=HOST_START_TIMEOUT)
        except (RuntimeError, TimeoutError) as err:
            outcome.sequential = f"funchost did not start ({type(err).__name__}); its log is on stderr above"
            progress(f"funchost log tail:\n{host.log()[-3000:]}")
            return
        asyncio.run(measure_funchost(host.base_url, args, outcome))
        if any(isinstance(figure, str) for figure in (outcome.sequential, outcome.concurrent, outcome.fan_out)):
            progress("funchost log tail:\n" + host.log()[-3000:])
    finally:
        code = host.stop()
        progress(f"funchost stopped (exit code {code})")


# --- DBOS --------------------------------------------------------------------------------------


def run_dbos(args: argparse.Namespace) -> DbosResult | str:
    cmd = [
        sys.executable,
        str(BENCH_DIR / "dbos_chain.py"),
        "--json",
        "--runs",
        str(args.runs),
        "--warmup",
        str(args.warmup),
        "--concurrent",
        str(args.concurrent),
    ]
    progress(
        f"DBOS: {args.warmup} warm-up + {args.runs} sequential, {args.concurrent} concurrent "
        f"(at most {DBOS_TIMEOUT:.0f} s)"
    )
    proc = subprocess.Popen(cmd, cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=DBOS_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return f"timed out after {DBOS_TIMEOUT:.0f} s"
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    if proc.returncode != 0:
        return f"failed (exit {proc.returncode}): {err.decode(errors='replace').strip()[-500:]}"
    data = json.loads(out.decode().strip().splitlines()[-1])
    return DbosResult(
        version=data["dbos_version"],
        sequential=LatencySummary(**data["sequential"]),
        concurrent=Throughput(**data["concurrent"]),
    )


# --- report ------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _verdict(ok: bool | None) -> str:
    """A target not measured is not met."""
    return "PASS" if ok else "MISS"


def report(outcome: Outcome, args: argparse.Namespace, load: list[float]) -> str:
    """The printed report; `load` is the 1-minute load average at start, after DBOS, after funchost."""
    seq = outcome.sequential if isinstance(outcome.sequential, Sequential) else None
    conc = outcome.concurrent if isinstance(outcome.concurrent, Concurrent) else None
    fan = outcome.fan_out if isinstance(outcome.fan_out, FanOut) else None
    dbos = outcome.dbos if isinstance(outcome.dbos, DbosResult) else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    fh_p50 = seq.client.p50_ms if seq else None
    fh_p95 = seq.client.p95_ms if seq else None
    fh_rate = conc.client.per_second if conc else None
    db_p50 = dbos.sequential.p50_ms if dbos else None
    db_p95 = dbos.sequential.p95_ms if dbos else None
    db_rate = dbos.concurrent.per_second if dbos else None

    rows: list[tuple[str, str, str, str]] = [
        (f"(a) chain, sequential p50 ms ({args.runs} runs)", _fmt(fh_p50), _fmt(db_p50), _fmt(ratio(fh_p50, db_p50))),
        ("(a) chain, sequential p95 ms", _fmt(fh_p95), _fmt(db_p95), _fmt(ratio(fh_p95, db_p95))),
        (
            "(a) chain, mean ms",
            _fmt(seq.client.mean_ms if seq else None),
            _fmt(dbos.sequential.mean_ms if dbos else None),
            "",
        ),
        ("(a) server-side p50 ms (created->updated)", _fmt(seq.server.p50_ms if seq and seq.server else None), "", ""),
        ("(a) server-side p95 ms (created->updated)", _fmt(seq.server.p95_ms if seq and seq.server else None), "", ""),
        (
            f"(b) {args.concurrent} concurrent chains, per s",
            _fmt(fh_rate, 1),
            _fmt(db_rate, 1),
            _fmt(ratio(fh_rate, db_rate)),
        ),
        (
            f"(b) {args.concurrent} concurrent chains, wall s",
            _fmt(conc.client.seconds if conc else None),
            _fmt(dbos.concurrent.seconds if dbos else None),
            "",
        ),
        ("(b) time until all starts acknowledged s", _fmt(conc.all_started_seconds if conc else None), "", ""),
        (
            "(b) server-side, per s (first created->last updated)",
            _fmt(conc.server.per_second if conc and conc.server else None, 1),
            "",
            "",
        ),
        (f"(c) fan-out/fan-in of {args.fan_out}, wall s", _fmt(fan.client_seconds if fan else None), "", ""),
        ("(c) server-side s (created->updated)", _fmt(fan.server_seconds if fan else None), "", ""),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [
        "Chain and fan-out benchmark (issue 2, point 8)",
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "1-min load average: " + " / ".join(f"{x:.2f}" for x in load) + " (start / after DBOS / after funchost;"
        " other work on the machine skews the figures)",
        f"funchost: embedded SQLite task hub, driven over HTTP (poll every {args.poll_ms:g} ms for (a))",
        f"DBOS: {dbos.version + ' on SQLite, in process (start_workflow + get_result)' if dbos else 'not measured'}",
        "",
        f"{'figure':<{width}}  {'funchost':>10}  {'DBOS':>10}  {'ratio':>7}",
        f"{'-' * width}  {'-' * 10}  {'-' * 10}  {'-' * 7}",
        *(f"{label:<{width}}  {fh:>10}  {db:>10}  {r:>7}" for label, fh, db, r in rows),
        "",
        "ratio = funchost / DBOS (latency: lower is better for funchost; throughput: higher is better)",
        "",
        "targets",
    ]
    p50_ratio = ratio(fh_p50, db_p50)
    lines += [
        f"  {_verdict(None if p50_ratio is None else p50_ratio <= 1.0)}  (a) funchost p50 <= DBOS p50: "
        f"{_fmt(fh_p50)} ms vs {_fmt(db_p50)} ms, ratio {_fmt(p50_ratio)}",
        f"  {_verdict(None if fh_rate is None else fh_rate >= TARGET_CHAINS_PER_SECOND)}  (b) >= "
        f"{TARGET_CHAINS_PER_SECOND:.0f} chains/s: {_fmt(fh_rate, 1)} chains/s "
        f"(DBOS {_fmt(db_rate, 1)} workflows/s, ratio {_fmt(ratio(fh_rate, db_rate))})",
        f"  {_verdict(None if fan is None else fan.client_seconds <= TARGET_FAN_OUT_SECONDS)}  (c) fan-out of "
        f"{args.fan_out} <= {TARGET_FAN_OUT_SECONDS:.0f} s: {_fmt(fan.client_seconds if fan else None)} s",
    ]
    problems = [
        (name, figure)
        for name, figure in (
            ("funchost (a)", outcome.sequential),
            ("funchost (b)", outcome.concurrent),
            ("funchost (c)", outcome.fan_out),
            ("DBOS", outcome.dbos),
        )
        if isinstance(figure, str)
    ]
    if problems:
        lines += ["", "not measured", *(f"  {name}: {why}" for name, why in problems)]
    return "\n".join(lines)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200, help="sequential chains measured for (a) (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="chains run before (a) is measured (default 20)")
    parser.add_argument("--concurrent", type=int, default=500, help="chains started at once for (b) (default 500)")
    parser.add_argument("--fan-out", type=int, default=1000, help="activities of the fan-out for (c) (default 1000)")
    parser.add_argument("--poll-ms", type=float, default=1.0, help="status poll interval for (a) (default 1 ms)")
    parser.add_argument("--skip-dbos", action="store_true", help="measure funchost only")
    args = parser.parse_args(argv)
    if args.runs < 2 or args.concurrent < 1 or args.fan_out < 1:
        parser.error("--runs must be at least 2, --concurrent and --fan-out at least 1")

    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the `finally` blocks stop both children.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    outcome = Outcome()
    load = [os.getloadavg()[0]]
    outcome.dbos = "skipped (--skip-dbos)" if args.skip_dbos else run_dbos(args)
    load.append(os.getloadavg()[0])
    with tempfile.TemporaryDirectory(prefix="bench-funchost-") as tmp:
        run_funchost(Path(tmp), args, outcome)
    load.append(os.getloadavg()[0])
    print(report(outcome, args, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
