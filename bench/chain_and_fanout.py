"""funchost on its SQLite and Azure Storage task hubs, and DBOS on SQLite: chain latency, throughput, fan-out.

Prints, for each funchost store chosen with ``--stores`` (default both: the embedded SQLite task hub,
issue 2 point 8, and the Azure Storage task hub on Azurite, issue 4 point 7):

(a) p50/p95 latency of a 3-activity chain started and awaited one at a time, seen by the client and
    from the instance's own createdTime/lastUpdatedTime;
(b) throughput of N concurrent 3-activity chains (started all at once, measured until all are completed);
(c) wall time of one orchestration that fans out to many activities and fans in;

and DBOS (``dbos_chain.py``) running the same 3-step chain measured the same way, the SQLite/DBOS
ratios, and each target with PASS or MISS. Timings are printed, never asserted.

funchost runs as a child process (``funchost.testing.process``) on ``bench/app``, on a fresh
SQLite file in a temp dir, then on a task hub with a name of its own in an Azurite started for the run
(``funchost.testing.azurite``; its data in the same temp dir). This process drives the host over HTTP
through keep-alive aiohttp connections, starting instances through the app's HTTP starters (which use
the SDK's own client) and polling the public status endpoint. DBOS runs in another child process.
Every child is stopped by PID before the script exits (Azurite with SIGTERM only: it saves its data on
the way out). Where Azurite cannot run, the Azure figures are reported as not measured, with the reason.

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
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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
from funchost.testing.process import FunchostProcess  # noqa: E402

INSTANCES = "/runtime/webhooks/durabletask/instances"
TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
STORES = ("sqlite", "azure")
STORE_TITLES = {"sqlite": "SQLite", "azure": "Azurite"}

# Targets of issue 2, point 8 (SQLite store), on a 2-core machine.
TARGET_CHAINS_PER_SECOND = 100.0
TARGET_FAN_OUT_SECONDS = 5.0
# Target of issue 4, point 7: median started-to-completed of a 3-activity chain on Azurite.
TARGET_AZURE_CHAIN_MS = 100.0

# Upper bounds that keep the whole run within a few minutes even when something is slow or stuck.
AZURITE_START_TIMEOUT = 30.0
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
    # The starter POST alone (the app's starter, the SDK client's call, the instance's creation): part of `client`.
    start: LatencySummary


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


@dataclass(frozen=True)
class Counts:
    """How much one store is given to do: (a) warm-up and measured chains, (b) chains, (c) branches."""

    runs: int
    warmup: int
    concurrent: int
    fan_out: int
    poll_ms: float


@dataclass
class StoreOutcome:
    """One store's figures, or why each is missing; `unavailable` when the store could not be run at all."""

    store: str
    counts: Counts
    unavailable: str | None = None
    # Azure only: single storage calls to Azurite (table read, queue send), the floor under each of the host's.
    round_trips: tuple[LatencySummary, LatencySummary] | None = None
    sequential: Sequential | str = "not run"
    concurrent: Concurrent | str = "not run"
    fan_out: FanOut | str = "not run"

    @property
    def title(self) -> str:
        return STORE_TITLES[self.store]


# Azurite answers each storage call in a few ms and a chain makes about two dozen, so the Azure store is
# given fewer chains by default than the SQLite store; the report prints the counts used.
SQLITE_DEFAULTS = Counts(runs=200, warmup=20, concurrent=500, fan_out=1000, poll_ms=1.0)
AZURE_DEFAULTS = Counts(runs=100, warmup=10, concurrent=200, fan_out=1000, poll_ms=1.0)


@dataclass
class Outcome:
    """Each figure, or why it is missing; only the stores chosen with --stores are in `stores`."""

    stores: dict[str, StoreOutcome] = field(default_factory=dict)
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
    async def one(text: str) -> tuple[float, float, dict[str, Any]]:
        started = time.perf_counter()
        instance_id = await client.start("chain", {"text": text})
        acknowledged = time.perf_counter()
        status = await client.wait_terminal(instance_id, poll_interval)
        elapsed = time.perf_counter() - started
        _check_completed(status, chain_steps.chain_output(text))
        return elapsed, acknowledged - started, status

    for i in range(warmup):
        await one(f"warm-{i}")
    client_latencies: list[float] = []
    start_latencies: list[float] = []
    server_latencies: list[float | None] = []
    for i in range(runs):
        elapsed, start, status = await one(f"seq-{i}")
        client_latencies.append(elapsed)
        start_latencies.append(start)
        server_latencies.append(_server_seconds(status))
    server_known = [s for s in server_latencies if s is not None]
    server = summarize(server_known) if len(server_known) == len(server_latencies) else None
    return Sequential(client=summarize(client_latencies), server=server, start=summarize(start_latencies))


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


async def measure_funchost(base_url: str, outcome: StoreOutcome) -> None:
    """Run (a), (b), (c) in order; once one fails, the later ones are not run (the host is suspect)."""
    counts, name = outcome.counts, f"funchost on {outcome.title}"
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = FunchostClient(session, base_url)
        outcome.sequential = await _bounded(
            f"{name} (a): {counts.warmup} warm-up + {counts.runs} sequential chains",
            SEQUENTIAL_TIMEOUT,
            lambda: measure_sequential(client, counts.runs, counts.warmup, counts.poll_ms / 1000.0),
        )
        if isinstance(outcome.sequential, str):
            return
        outcome.concurrent = await _bounded(
            f"{name} (b): {counts.concurrent} concurrent chains",
            CONCURRENT_TIMEOUT,
            lambda: measure_concurrent(client, counts.concurrent, 0.01),
        )
        if isinstance(outcome.concurrent, str):
            return
        outcome.fan_out = await _bounded(
            f"{name} (c): fan-out/fan-in over {counts.fan_out} activities",
            FAN_OUT_TIMEOUT,
            lambda: measure_fan_out(client, counts.fan_out, 0.005),
        )


def run_funchost(host: FunchostProcess, outcome: StoreOutcome) -> None:
    """Start the host, measure it, stop it (SIGTERM, by PID)."""
    try:
        progress(f"starting funchost on port {host.port} (store {host.store} {' '.join(host.extra_args)})")
        try:
            host.start(timeout=HOST_START_TIMEOUT)
        except (RuntimeError, TimeoutError) as err:
            outcome.unavailable = f"funchost did not start ({type(err).__name__}); its log is on stderr above"
            progress(f"funchost log tail:\n{host.log()[-3000:]}")
            return
        asyncio.run(measure_funchost(host.base_url, outcome))
        if any(isinstance(figure, str) for figure in (outcome.sequential, outcome.concurrent, outcome.fan_out)):
            progress("funchost log tail:\n" + host.log()[-3000:])
    finally:
        code = host.stop()
        progress(f"funchost stopped (exit code {code})")


def run_sqlite(workdir: Path, outcome: StoreOutcome) -> None:
    store = f"sqlite:{workdir / 'bench.sqlite'}"
    run_funchost(FunchostProcess(app_dir=BENCH_DIR / "app", store=store, log_path=workdir / "funchost.log"), outcome)


async def azurite_round_trips(connection_string: str, count: int = 50) -> tuple[LatencySummary, LatencySummary]:
    """`count` table reads, then `count` queue sends, one at a time, in a table and a queue of their own."""
    from azure.data.tables.aio import TableServiceClient
    from azure.storage.queue.aio import QueueServiceClient

    async def timed(call: Callable[[], Awaitable[Any]]) -> LatencySummary:
        seconds: list[float] = []
        for _ in range(count):
            started = time.perf_counter()
            await call()
            seconds.append(time.perf_counter() - started)
        return summarize(seconds)

    async with (
        TableServiceClient.from_connection_string(connection_string) as tables,
        QueueServiceClient.from_connection_string(connection_string) as queues,
    ):
        table = await tables.create_table("benchprobe")
        queue = queues.get_queue_client("bench-probe")
        await queue.create_queue()
        await table.upsert_entity({"PartitionKey": "probe", "RowKey": "row"})
        reads = await timed(lambda: table.get_entity("probe", "row"))
        sends = await timed(lambda: queue.send_message("probe"))
        await tables.delete_table("benchprobe")
        await queue.delete_queue()
    return reads, sends


def run_azure(workdir: Path, outcome: StoreOutcome) -> None:
    """Start an Azurite of this run's own, run funchost on a new task hub in it, stop both (host first)."""
    try:  # the test harness's Azurite module; it needs pytest, which the development requirements have
        from funchost.testing.azurite import Azurite, AzuriteError, unavailable_reason
    except ImportError as err:
        outcome.unavailable = f"cannot load funchost.testing.azurite ({err})"
        return
    reason = unavailable_reason()
    if reason:
        outcome.unavailable = reason
        return
    azurite = Azurite(location=workdir / "azurite", log_path=workdir / "azurite.log")
    try:
        progress(f"starting Azurite (at most {AZURITE_START_TIMEOUT:.0f} s)")
        try:
            azurite.start(timeout=AZURITE_START_TIMEOUT)
        except (AzuriteError, OSError) as err:
            outcome.unavailable = f"Azurite did not start: {(str(err).splitlines() or [type(err).__name__])[0]}"
            progress(f"Azurite log tail:\n{azurite.log()[-3000:]}")
            return
        progress(f"Azurite runs (pid {azurite.pid}, ports {azurite.ports})")
        try:
            outcome.round_trips = asyncio.run(asyncio.wait_for(azurite_round_trips(azurite.connection_string), 30))
        except Exception as err:  # a context figure only: the benchmark goes on without it
            progress(f"Azurite round trips not measured: {type(err).__name__}: {err}")
        # A task hub no earlier run used, so the figures never include reading someone else's instances.
        hub = f"bench{uuid.uuid4().hex[:12]}"
        host = FunchostProcess(
            app_dir=BENCH_DIR / "app",
            store="azure",
            extra_args=["--hub", hub],
            env={"AzureWebJobsStorage": azurite.connection_string},
            log_path=workdir / "funchost-azure.log",
        )
        run_funchost(host, outcome)
    finally:
        try:
            azurite.stop()  # SIGTERM, and wait: Azurite saves its data before it exits
            progress("Azurite stopped")
        except AzuriteError as err:  # never SIGKILL; say it is left running, with its pid
            progress(f"Azurite did not stop: {err}")


# --- DBOS --------------------------------------------------------------------------------------


def run_dbos(counts: Counts) -> DbosResult | str:
    cmd = [
        sys.executable,
        str(BENCH_DIR / "dbos_chain.py"),
        "--json",
        "--runs",
        str(counts.runs),
        "--warmup",
        str(counts.warmup),
        "--concurrent",
        str(counts.concurrent),
    ]
    progress(
        f"DBOS: {counts.warmup} warm-up + {counts.runs} sequential, {counts.concurrent} concurrent "
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


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# A cell of the table: a figure (None: not measured, printed "n/a"), or text such as a count.
Cell = float | str | None

# The rows: label, key of the column dicts below, decimals, whether the SQLite/DBOS ratio is printed.
_ROWS: list[tuple[str, str, int, bool]] = [
    ("one storage call p50 ms: table read (50 in a row)", "rt_read", 2, False),
    ("one storage call p50 ms: queue send (50 in a row)", "rt_send", 2, False),
    ("(a) chains measured one at a time (warm-up)", "a_count", 0, False),
    ("(a) status poll interval ms", "a_poll", 0, False),
    ("(a) chain p50 ms, client-observed", "a_p50", 2, True),
    ("(a) chain p95 ms, client-observed", "a_p95", 2, True),
    ("(a) chain mean ms, client-observed", "a_mean", 2, False),
    ("(a) of which the starter POST, p50 ms", "a_start_p50", 2, False),
    ("(a) chain p50 ms, server-side (created->updated)", "a_server_p50", 2, False),
    ("(a) chain p95 ms, server-side (created->updated)", "a_server_p95", 2, False),
    ("(b) chains started at once", "b_count", 0, False),
    ("(b) chains per s, client-observed", "b_rate", 1, True),
    ("(b) wall s, client-observed", "b_wall", 2, False),
    ("(b) time until all starts acknowledged s", "b_started", 2, False),
    ("(b) chains per s, server-side (first created->last updated)", "b_server_rate", 1, False),
    ("(c) activities fanned out and in", "c_count", 0, False),
    ("(c) fan-out/fan-in wall s, client-observed", "c_wall", 2, False),
    ("(c) fan-out/fan-in s, server-side (created->updated)", "c_server", 2, False),
]


def _store_column(store: StoreOutcome) -> dict[str, Cell]:
    seq = store.sequential if isinstance(store.sequential, Sequential) else None
    conc = store.concurrent if isinstance(store.concurrent, Concurrent) else None
    fan = store.fan_out if isinstance(store.fan_out, FanOut) else None
    counts = store.counts
    trips: dict[str, Cell] = {}
    if store.store == "azure":  # SQLite has no such call: its cells stay empty
        reads, sends = store.round_trips or (None, None)
        trips = {"rt_read": reads.p50_ms if reads else None, "rt_send": sends.p50_ms if sends else None}
    return {
        **trips,
        "a_count": f"{counts.runs} ({counts.warmup})",
        "a_poll": f"{counts.poll_ms:g}",
        "a_p50": seq.client.p50_ms if seq else None,
        "a_p95": seq.client.p95_ms if seq else None,
        "a_mean": seq.client.mean_ms if seq else None,
        "a_start_p50": seq.start.p50_ms if seq else None,
        "a_server_p50": seq.server.p50_ms if seq and seq.server else None,
        "a_server_p95": seq.server.p95_ms if seq and seq.server else None,
        "b_count": str(counts.concurrent),
        "b_rate": conc.client.per_second if conc else None,
        "b_wall": conc.client.seconds if conc else None,
        "b_started": conc.all_started_seconds if conc else None,
        "b_server_rate": conc.server.per_second if conc and conc.server else None,
        "c_count": str(counts.fan_out),
        "c_wall": fan.client_seconds if fan else None,
        "c_server": fan.server_seconds if fan and fan.server_seconds is not None else None,
    }


def _dbos_column(dbos: DbosResult | str, counts: Counts) -> dict[str, Cell]:
    """DBOS has no server side, poll interval or fan-out: those cells stay empty."""
    result = dbos if isinstance(dbos, DbosResult) else None
    return {
        "a_count": f"{counts.runs} ({counts.warmup})",
        "a_p50": result.sequential.p50_ms if result else None,
        "a_p95": result.sequential.p95_ms if result else None,
        "a_mean": result.sequential.mean_ms if result else None,
        "b_count": str(counts.concurrent),
        "b_rate": result.concurrent.per_second if result else None,
        "b_wall": result.concurrent.seconds if result else None,
    }


def _cell(columns: dict[str, Cell], key: str, digits: int) -> str:
    if key not in columns:
        return ""
    value = columns[key]
    return value if isinstance(value, str) else _fmt(value, digits)


def _number(columns: dict[str, Cell], key: str) -> float | None:
    value = columns.get(key)
    return value if isinstance(value, float) else None


def _table(outcome: Outcome) -> list[str]:
    """funchost on each store, then (with the SQLite store) DBOS and the SQLite/DBOS ratio."""
    headers = ["figure", *(f"funchost {s.title}" for s in outcome.stores.values())]
    columns = [_store_column(s) for s in outcome.stores.values()]
    sqlite = outcome.stores.get("sqlite")
    dbos = _dbos_column(outcome.dbos, sqlite.counts) if sqlite else None
    if sqlite and dbos is not None:
        headers += ["DBOS", "SQLite/DBOS"]
    rows: list[list[str]] = []
    for label, key, digits, with_ratio in _ROWS:
        row = [label, *(_cell(column, key, digits) for column in columns)]
        if sqlite and dbos is not None:
            ratio = _ratio(_number(_store_column(sqlite), key), _number(dbos, key)) if with_ratio else None
            row += [_cell(dbos, key, digits), _fmt(ratio) if with_ratio else ""]
        if any(row[1:]):  # e.g. the storage-call rows when Azurite is not among the stores
            rows.append(row)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join([cells[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _targets(outcome: Outcome) -> list[str]:
    lines: list[str] = []
    sqlite, azure = outcome.stores.get("sqlite"), outcome.stores.get("azure")
    if sqlite:
        fh, db = _store_column(sqlite), _dbos_column(outcome.dbos, sqlite.counts)
        fh_p50, db_p50 = _number(fh, "a_p50"), _number(db, "a_p50")
        fh_rate, db_rate, fan = _number(fh, "b_rate"), _number(db, "b_rate"), _number(fh, "c_wall")
        p50_ratio = _ratio(fh_p50, db_p50)
        lines += [
            f"  {_verdict(None if p50_ratio is None else p50_ratio <= 1.0)}  (a) SQLite: funchost p50 <= DBOS p50: "
            f"{_fmt(fh_p50)} ms vs {_fmt(db_p50)} ms, ratio {_fmt(p50_ratio)}",
            f"  {_verdict(None if fh_rate is None else fh_rate >= TARGET_CHAINS_PER_SECOND)}  (b) SQLite: >= "
            f"{TARGET_CHAINS_PER_SECOND:.0f} chains/s: {_fmt(fh_rate, 1)} chains/s "
            f"(DBOS {_fmt(db_rate, 1)} workflows/s, ratio {_fmt(_ratio(fh_rate, db_rate))})",
            f"  {_verdict(None if fan is None else fan <= TARGET_FAN_OUT_SECONDS)}  (c) SQLite: fan-out of "
            f"{sqlite.counts.fan_out} <= {TARGET_FAN_OUT_SECONDS:.0f} s: {_fmt(fan)} s",
        ]
    if azure:
        az = _store_column(azure)
        judged, server = _number(az, "a_p50"), _number(az, "a_server_p50")
        lines.append(
            f"  {_verdict(None if judged is None else judged <= TARGET_AZURE_CHAIN_MS)}  (a) Azurite: 3-activity "
            f"chain, median started-to-completed <= {TARGET_AZURE_CHAIN_MS:.0f} ms: client-observed p50 "
            f"{_fmt(judged)} ms (judged; server-side created->updated p50 {_fmt(server)} ms)"
        )
    return lines


def report(outcome: Outcome, load: list[tuple[str, float]]) -> str:
    """The printed report; `load` is the 1-minute load average at the start and after each engine."""
    stores = " and ".join(f"{s.title} (--store {s.store})" for s in outcome.stores.values())
    lines = [
        "Chain and fan-out benchmark (issue 2 point 8: SQLite store; issue 4 point 7: Azure Storage store)",
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, Python {platform.python_version()}",
        f"1-min load average: {' / '.join(f'{x:.2f}' for _, x in load)} ({' / '.join(n for n, _ in load)}; "
        "other work on the machine skews the figures)",
        f"funchost: driven over HTTP, on {stores}",
    ]
    if "azure" in outcome.stores:
        lines.append("Azurite: the Azure Storage emulator, started for this run, with a new task hub")
    if "sqlite" in outcome.stores:
        dbos = outcome.dbos if isinstance(outcome.dbos, DbosResult) else None
        lines.append(
            f"DBOS: {dbos.version} on SQLite, in process (start_workflow + get_result)"
            if dbos
            else "DBOS: not measured"
        )
    lines += ["", *_table(outcome)]
    if "sqlite" in outcome.stores:
        lines.append(
            "\nSQLite/DBOS = funchost on SQLite / DBOS (latency: lower is better for funchost; "
            "throughput: higher is better)"
        )
    lines += ["", "targets", *_targets(outcome)]
    problems: list[str] = []
    for store in outcome.stores.values():
        if store.unavailable is not None:
            problems.append(f"  funchost on {store.title}: not measured: {store.unavailable}")
            continue
        for name, figure in (("(a)", store.sequential), ("(b)", store.concurrent), ("(c)", store.fan_out)):
            if isinstance(figure, str):
                problems.append(f"  funchost on {store.title} {name}: not measured: {figure}")
    if "sqlite" in outcome.stores and isinstance(outcome.dbos, str):
        problems.append(f"  DBOS: not measured: {outcome.dbos}")
    if problems:
        lines += ["", "not measured", *problems]
    return "\n".join(line.rstrip() for line in lines)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _stores(value: str) -> list[str]:
    chosen = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in STORES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(STORES)} (comma-separated), not {value!r}")
    return [store for store in STORES if store in chosen]  # always SQLite first, then Azure


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--stores", type=_stores, default=list(STORES), help="funchost task hubs to measure: sqlite,azure (default)"
    )
    parser.add_argument("--skip-dbos", action="store_true", help="do not run DBOS")
    for prefix, defaults, title in (
        ("", SQLITE_DEFAULTS, "SQLite store (and DBOS)"),
        ("azure-", AZURE_DEFAULTS, "Azure Storage store on Azurite (smaller counts: each storage call costs ms)"),
    ):
        group = parser.add_argument_group(title)
        for name, kind, default, what in (
            ("runs", int, defaults.runs, "sequential chains measured for (a)"),
            ("warmup", int, defaults.warmup, "chains run before (a) is measured"),
            ("concurrent", int, defaults.concurrent, "chains started at once for (b)"),
            ("fan-out", int, defaults.fan_out, "activities of the fan-out for (c)"),
            ("poll-ms", float, defaults.poll_ms, "status poll interval for (a), in ms"),
        ):
            group.add_argument(f"--{prefix}{name}", type=kind, default=default, help=f"{what} (default {default:g})")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    counts = {
        store: Counts(
            *(getattr(args, f"{prefix}{name}") for name in ("runs", "warmup", "concurrent", "fan_out", "poll_ms"))
        )
        for store, prefix in (("sqlite", ""), ("azure", "azure_"))
    }
    for c in counts.values():
        if c.runs < 2 or c.warmup < 0 or c.concurrent < 1 or c.fan_out < 1 or c.poll_ms < 0:
            parser.error("runs must be at least 2, concurrent chains and fan-out branches at least 1")

    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the `finally` blocks stop every child.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    outcome = Outcome(stores={store: StoreOutcome(store, counts[store]) for store in args.stores})
    load = [("start", os.getloadavg()[0])]
    if "sqlite" in outcome.stores:  # DBOS is there to be compared with the SQLite store
        if args.skip_dbos:
            outcome.dbos = "skipped (--skip-dbos)"
        else:
            outcome.dbos = run_dbos(counts["sqlite"])
            load.append(("after DBOS", os.getloadavg()[0]))
    with tempfile.TemporaryDirectory(prefix="bench-funchost-") as tmp:
        for store, store_outcome in outcome.stores.items():
            workdir = Path(tmp) / store
            workdir.mkdir()
            (run_sqlite if store == "sqlite" else run_azure)(workdir, store_outcome)
            load.append((f"after {store_outcome.title}", os.getloadavg()[0]))
    print(report(outcome, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
