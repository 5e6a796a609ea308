"""CPU and wall time of one table transaction on Azurite: the tables SDK's own, and funchost's codec.

A checkpoint's history write is a table transaction (two operations for a chain step: a history row and
the ETag-guarded sentinel). ``funchost/stores/_azure_batch.py`` encodes and decodes it instead of the SDK's
``submit_transaction``; this prints what that saves, measured the same way for both, one after the other,
on an Azurite started for the run (``funchost.testing.azurite``, stopped with SIGTERM at the end).

Run from the repository root: ``.venv/bin/python bench/azure_table_transactions.py [--count N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from azure.core.pipeline.transport import AioHttpTransport  # noqa: E402
from azure.data.tables import UpdateMode  # noqa: E402
from azure.data.tables.aio import TableClient, TableServiceClient  # noqa: E402
from funchost.stores._azure_batch import Operation, submit  # noqa: E402
from funchost.testing.azurite import Azurite, unavailable_reason  # noqa: E402


def rows(n: int) -> tuple[dict[str, object], dict[str, object]]:
    """A chain step's transaction: one history row (an event of a few hundred characters) and the sentinel."""
    event = {"PartitionKey": "bench", "RowKey": f"{n:016x}", "ExecutionId": "e1", "EventType": 4, "Event": "x" * 300}
    sentinel = {"PartitionKey": "bench", "RowKey": "sentinel", "HistoryEventCount": n + 1, "RuntimeStatus": "Running"}
    return event, sentinel


async def timed(count: int, one: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    """(median wall ms, mean CPU ms of this process) over ``count`` calls, after 20 unmeasured ones."""
    for n in range(20):
        await one(n)
    walls: list[float] = []
    cpu = time.process_time()
    for n in range(20, 20 + count):
        started = time.perf_counter()
        await one(n)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls) * 1000, (time.process_time() - cpu) / count * 1000


async def measure(connection_string: str, count: int) -> dict[str, tuple[float, float]]:
    transport = AioHttpTransport(use_env_settings=False)  # as the store builds its clients
    async with TableServiceClient.from_connection_string(connection_string, transport=transport) as service:
        sdk_table: TableClient = await service.create_table("benchsdk")
        own_table: TableClient = await service.create_table("benchown")

        async def with_sdk(n: int) -> object:
            event, sentinel = rows(n)
            return await sdk_table.submit_transaction([("upsert", event, {"mode": UpdateMode.REPLACE}),
                                                       ("upsert", sentinel, {"mode": UpdateMode.REPLACE})])

        async def with_codec(n: int) -> object:
            event, sentinel = rows(n)
            return await submit(own_table, [Operation("upsert", event), Operation("upsert", sentinel)])

        return {"tables SDK submit_transaction": await timed(count, with_sdk),
                "funchost _azure_batch.submit": await timed(count, with_codec)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=200, help="transactions measured per way (default 200)")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        print(f"not measured: {reason}")
        return 1
    with tempfile.TemporaryDirectory() as folder:
        azurite = Azurite(location=Path(folder) / "data", log_path=Path(folder) / "azurite.log").start()
        try:
            figures = asyncio.run(measure(azurite.connection_string, args.count))
        finally:
            azurite.stop()
    print(f"one 2-operation table transaction on Azurite, {args.count} in a row each way")
    print(f"{'':32} {'wall p50 ms':>12} {'client CPU ms':>14}")
    for name, (wall, cpu) in figures.items():
        print(f"{name:32} {wall:12.2f} {cpu:14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
