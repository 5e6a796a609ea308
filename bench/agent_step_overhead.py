"""Durable overhead per agent step: the same agent runs through funchost and as a plain Python loop.

Both sides run the catalogue's ``assistant`` with the offline model on the same inputs, each run
three steps (model call → calculator → model call). The plain side is ``agents.loop.run_agent_loop``
in this process; the durable side is the ``agent_run`` orchestration of the app at the repository
root, served by funchost on its SQLite task hub and timed from the host's own timestamps (created →
last updated), so HTTP client latency is not counted. Overhead per step = (durable − plain) / steps.

Run: ``.venv/bin/python bench/agent_step_overhead.py [--runs 100]``. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from funchost.testing.process import FunchostProcess  # noqa: E402

from agents.catalogue import get_agent  # noqa: E402
from agents.loop import run_agent_loop  # noqa: E402
from agents.models.offline import OfflineModel  # noqa: E402
from agents.tools.builtin import builtin_registry, services_from_env  # noqa: E402

TARGET_MS = 5.0
WEBHOOKS = "/runtime/webhooks/durabletask"


def questions(count: int) -> list[str]:
    return [f"what is {i}*(3+{i % 7})?" for i in range(count)]


async def plain_runs(inputs: list[str], outbox: Path) -> tuple[list[float], int]:
    spec = get_agent("assistant")
    tools = builtin_registry(services_from_env({"OUTBOX_DIR": str(outbox)}))
    model = OfflineModel()
    seconds, steps = [], 0
    for text in inputs:
        started = time.perf_counter()
        result = await run_agent_loop(spec, text, model, tools)
        seconds.append(time.perf_counter() - started)
        if result.status != "completed":
            raise RuntimeError(f"plain run of {text!r} ended {result.status}: {result.error}")
        steps += result.turns + sum(1 for m in result.messages if m.get("role") == "tool")
    return seconds, steps


def _get(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")


def _post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")


def _server_seconds(status: dict[str, Any]) -> float:
    created = datetime.fromisoformat(status["createdTime"].replace("Z", "+00:00"))
    updated = datetime.fromisoformat(status["lastUpdatedTime"].replace("Z", "+00:00"))
    return (updated - created).total_seconds()


def durable_runs(base: str, inputs: list[str]) -> tuple[list[float], int]:
    seconds, steps = [], 0
    for index, text in enumerate(inputs):
        run_id = f"bench-{index}-{time.time_ns()}"
        _post(f"{base}{WEBHOOKS}/orchestrators/agent_run/{run_id}", {"agent": "assistant", "input": text})
        deadline = time.monotonic() + 30
        while True:
            code, status = _get(f"{base}{WEBHOOKS}/instances/{run_id}")
            if status["runtimeStatus"] in ("Completed", "Failed", "Terminated"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} did not finish: {status}")
            time.sleep(0.001)
        output = status["output"]
        if status["runtimeStatus"] != "Completed" or output["status"] != "completed":
            raise RuntimeError(f"durable run {run_id} ended {status['runtimeStatus']}: {output}")
        seconds.append(_server_seconds(status))
        steps += output["turns"] + sum(1 for m in output["messages"] if m.get("role") == "tool")
    return seconds, steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="measured runs per side (default 100)")
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args(argv)
    inputs = questions(args.warmup + args.runs)
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        outbox = Path(tmp) / "outbox"
        asyncio.run(plain_runs(inputs[: args.warmup], outbox))
        plain, plain_steps = asyncio.run(plain_runs(inputs[args.warmup:], outbox))
        host = FunchostProcess(app_dir=REPO_ROOT, store=f"sqlite:{tmp}/bench.sqlite",
                               env={"OUTBOX_DIR": str(outbox), "AGENT_MODEL_PROVIDER": "offline"},
                               log_path=Path(tmp) / "funchost.log")
        host.start(timeout=60)
        try:
            durable_runs(host.base_url, inputs[: args.warmup])
            durable, durable_steps = durable_runs(host.base_url, inputs[args.warmup:])
        finally:
            host.stop()
    plain_per_step = sum(plain) / plain_steps * 1000
    durable_per_step = sum(durable) / durable_steps * 1000
    overhead = durable_per_step - plain_per_step
    print("Agent step overhead (issue 3): assistant + offline model, 3 steps per run "
          "(model, calculator, model)")
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    print(f"{'':38s}{'plain loop':>14s}{'funchost':>14s}")
    print(f"{'runs':38s}{len(plain):>14d}{len(durable):>14d}")
    print(f"{'steps':38s}{plain_steps:>14d}{durable_steps:>14d}")
    print(f"{'run p50 ms':38s}{statistics.median(plain) * 1000:>14.2f}{statistics.median(durable) * 1000:>14.2f}")
    print(f"{'per step ms':38s}{plain_per_step:>14.3f}{durable_per_step:>14.3f}")
    verdict = "PASS" if overhead <= TARGET_MS else "MISS"
    print(f"durable overhead per step: {overhead:.2f} ms (target <= {TARGET_MS:g} ms): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
