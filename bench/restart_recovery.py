"""Restart after a kill: how soon the new host moves existing work on, and which activities run again.

For each store (a SQLite file, and a task hub in an Azurite of the run's own), funchost runs the app in
`recovery_app/` (chains of activities that trace every run and every orchestrator episode to a file,
with the process id and the time). Each round starts a batch of chains, lets them run for a moment,
kills the host with SIGKILL and starts a new one on the same task hub at once. Figures, per store:

- restart to first step: from the kill to the first trace line the new host writes for an instance that
  existed before the kill (an orchestrator episode or an activity start); also each of the two apart.
  It includes the new process's start-up.
- activities run again: an activity of an earlier host that ran again on a later one, split into those
  cut off by the kill (started, not finished: at-least-once) and those that had finished before it (their
  result was not yet durable: carried in a work item still leased to the killed host, or its step not
  yet saved).

At the end every chain must complete, with the right output; a chain that does not is an error. It
prints figures and never asserts on them. Run from the repository root:

    .venv/bin/python bench/restart_recovery.py [--stores sqlite,azure] [--restarts 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR)]

from _timing import summarize  # noqa: E402
from funchost.testing.process import FunchostProcess  # noqa: E402

STORES = ("sqlite", "azure")
APP_DIR = BENCH_DIR / "recovery_app"
DURABLE = "/runtime/webhooks/durabletask"
FIRST_STEP_TIMEOUT = 60.0
FINISH_TIMEOUT = 180.0
TARGET_P50_S = 2.0


def progress(message: str) -> None:
    print(f"[restart_recovery] {message}", file=sys.stderr, flush=True)


@dataclass
class Trace:
    kind: str
    instance: str
    index: int
    pid: int
    at: float


def read_trace(path: Path) -> list[Trace]:
    if not path.exists():
        return []
    lines = []
    for text in path.read_text().splitlines():
        parts = text.split()
        if len(parts) == 5:
            lines.append(Trace(parts[0], parts[1], int(parts[2]), int(parts[3]), float(parts[4])))
    return lines


@dataclass
class StoreFigures:
    store: str
    first_any: list[float] = field(default_factory=list)
    first_step: list[float] = field(default_factory=list)
    first_activity: list[float] = field(default_factory=list)
    ready: list[float] = field(default_factory=list)  # kill -> the new host answers HTTP (its start-up)
    after_ready: list[float] = field(default_factory=list)  # the new host answers -> first step
    rounds_without_progress: int = 0
    cut_off_again: int = 0
    finished_then_again: int = 0
    activities_total: int = 0
    chains: int = 0
    completed: int = 0
    error: str | None = None


class Bench:
    def __init__(self, store: str, workdir: Path, restarts: int, batch: int, steps: int, seconds: float,
                 run_for: float) -> None:
        self.store = store
        self.workdir = workdir
        self.restarts = restarts
        self.batch = batch
        self.steps = steps
        self.seconds = seconds
        self.run_for = run_for
        self.trace_path = workdir / f"trace-{store}.txt"
        self.figures = StoreFigures(store)
        self.instances: list[str] = []
        self.azurite = None
        self.hosts: list[FunchostProcess] = []

    def host(self) -> FunchostProcess:
        env = {"RECOVERY_TRACE": str(self.trace_path)}
        if self.store == "sqlite":
            store, args = f"sqlite:{self.workdir / 'taskhub.sqlite'}", []
        else:
            assert self.azurite is not None
            store, args = "azure", ["--hub", self.hub]
            env["AzureWebJobsStorage"] = self.azurite.connection_string
        host = FunchostProcess(app_dir=APP_DIR, store=store, extra_args=args, env=env,
                               log_path=self.workdir / f"funchost-{self.store}-{len(self.hosts)}.log")
        self.hosts.append(host)
        return host

    def start_batch(self, host: FunchostProcess) -> None:
        for _ in range(self.batch):
            instance_id = f"chain-{uuid.uuid4().hex[:10]}"
            res = host.post(f"{DURABLE}/orchestrators/traced_chain/{instance_id}",
                            {"steps": self.steps, "seconds": self.seconds})
            if res.status != 202:
                raise RuntimeError(f"start answered {res.status}: {res.text}")
            self.instances.append(instance_id)

    def run(self) -> StoreFigures:
        if self.store == "azure":
            from funchost.testing.azurite import Azurite, unavailable_reason

            reason = unavailable_reason()
            if reason:
                self.figures.error = reason
                return self.figures
            self.hub = f"rec{uuid.uuid4().hex[:10]}"
            self.azurite = Azurite(location=self.workdir / "azurite", log_path=self.workdir / "azurite.log")
            self.azurite.start(timeout=30)
        try:
            self._rounds()
        except Exception as err:
            self.figures.error = f"{type(err).__name__}: {err}"
            if self.hosts:
                progress(f"log tail of the last host:\n{self.hosts[-1].log()[-3000:]}")
        finally:
            for host in self.hosts:
                host.stop()
            if self.azurite is not None:
                self.azurite.stop()  # SIGTERM: Azurite saves its data before it exits
        return self.figures

    def _rounds(self) -> None:
        host = self.host().start(60)
        for number in range(1, self.restarts + 1):
            self.start_batch(host)
            time.sleep(self.run_for)
            existing = set(self.instances)
            old_pids = {h.process.pid for h in self.hosts if h.process is not None}
            killed_at = time.time()
            host.kill()
            host = self.host()
            host.start(60)
            ready_at = time.time()
            assert host.process is not None
            new_pid = host.process.pid
            first = self._first_progress(new_pid, existing, killed_at)
            if first is None:
                self.figures.rounds_without_progress += 1
                progress(f"{self.store} round {number}: no progress of an existing instance within "
                         f"{FIRST_STEP_TIMEOUT:.0f} s")
                continue
            any_s, step_s, activity_s = first
            self.figures.first_any.append(any_s)
            self.figures.ready.append(ready_at - killed_at)
            self.figures.after_ready.append(max(0.0, any_s - (ready_at - killed_at)))
            if step_s is not None:
                self.figures.first_step.append(step_s)
            if activity_s is not None:
                self.figures.first_activity.append(activity_s)
            progress(f"{self.store} round {number}: first step {any_s:.2f} s after the kill "
                     f"(pids before: {len(old_pids)})")
        self._finish(host)
        self._count_reruns()

    def _first_progress(self, pid: int, existing: set[str], killed_at: float
                        ) -> tuple[float, float | None, float | None] | None:
        deadline = time.monotonic() + FIRST_STEP_TIMEOUT
        while time.monotonic() < deadline:
            mine = [t for t in read_trace(self.trace_path) if t.pid == pid and t.instance in existing]
            if mine:
                time.sleep(0.3)  # let the other kind show up too, if it comes at about the same time
                mine = [t for t in read_trace(self.trace_path) if t.pid == pid and t.instance in existing]
                steps = [t.at for t in mine if t.kind == "step"]
                starts = [t.at for t in mine if t.kind == "start"]
                return (min(t.at for t in mine) - killed_at, min(steps) - killed_at if steps else None,
                        min(starts) - killed_at if starts else None)
            time.sleep(0.02)
        return None

    def _finish(self, host: FunchostProcess) -> None:
        deadline = time.monotonic() + FINISH_TIMEOUT
        expected = sum(range(self.steps))
        self.figures.chains = len(self.instances)
        pending = list(self.instances)
        while pending and time.monotonic() < deadline:
            still = []
            for instance_id in pending:
                res = host.status(instance_id)
                body = res.json() if res.status in (200, 202) else {}
                if body.get("runtimeStatus") == "Completed":
                    if body.get("output") != expected:
                        raise RuntimeError(f"{instance_id} completed with {body.get('output')!r}, not {expected}")
                elif body.get("runtimeStatus") in ("Failed", "Terminated"):
                    raise RuntimeError(f"{instance_id} ended {body.get('runtimeStatus')}: {body.get('output')!r}")
                else:
                    still.append(instance_id)
            pending = still
            if pending:
                time.sleep(0.5)
        self.figures.completed = len(self.instances) - len(pending)
        if pending:
            raise RuntimeError(f"{len(pending)} chains did not complete within {FINISH_TIMEOUT:.0f} s")

    def _count_reruns(self) -> None:
        runs: dict[tuple[str, int], list[Trace]] = defaultdict(list)
        for line in read_trace(self.trace_path):
            if line.kind in ("start", "end"):
                runs[(line.instance, line.index)].append(line)
        self.figures.activities_total = len(runs)
        for lines in runs.values():
            pids = []
            for line in lines:
                if line.kind == "start" and line.pid not in pids:
                    pids.append(line.pid)
            for earlier in pids[:-1]:  # each host whose run of it was followed by another host's
                finished = any(line.kind == "end" and line.pid == earlier for line in lines)
                if finished:
                    self.figures.finished_then_again += 1
                else:
                    self.figures.cut_off_again += 1


def report(figures: list[StoreFigures], args: argparse.Namespace) -> str:
    out = [f"Restart after SIGKILL: {args.restarts} restarts per store, each with {args.batch} new chains of "
           f"{args.steps} activities ({args.seconds:g} s each) started {args.run_for:g} s before the kill", ""]
    for fig in figures:
        title = {"sqlite": "SQLite", "azure": "Azurite"}[fig.store]
        if fig.error and not fig.first_any:
            out.append(f"{title}: not measured ({fig.error})")
            continue
        out.append(f"{title}:")
        for name, values in (("kill -> first step or activity", fig.first_any),
                             ("kill -> first orchestrator step", fig.first_step),
                             ("kill -> first activity start", fig.first_activity),
                             ("kill -> new host answers HTTP", fig.ready),
                             ("new host answers -> first step", fig.after_ready)):
            if len(values) >= 2:
                s = summarize(values)
                out.append(f"  {name:34} p50 {s.p50_ms / 1000:6.2f} s  p95 {s.p95_ms / 1000:6.2f} s  "
                           f"max {s.max_ms / 1000:6.2f} s  (n={s.count})")
            else:
                out.append(f"  {name:34} not enough samples ({len(values)})")
        if fig.first_any and len(fig.first_any) >= 2:
            p50 = summarize(fig.first_any).p50_ms / 1000
            out.append(f"  target p50 < {TARGET_P50_S:g} s: {'PASS' if p50 < TARGET_P50_S else 'MISS'}")
        if fig.rounds_without_progress:
            out.append(f"  rounds with no progress within {FIRST_STEP_TIMEOUT:.0f} s: {fig.rounds_without_progress}")
        out.append(f"  activities run again: {fig.cut_off_again + fig.finished_then_again} of "
                   f"{fig.activities_total}: {fig.cut_off_again} cut off by a kill (running at it), "
                   f"{fig.finished_then_again} finished before a kill (result not yet durable)")
        out.append(f"  chains completed: {fig.completed} of {fig.chains}")
        if fig.error:
            out.append(f"  error: {fig.error}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stores", default=",".join(STORES), help="sqlite,azure (default both)")
    parser.add_argument("--restarts", type=int, default=10, help="kills and restarts per store (default 10)")
    parser.add_argument("--batch", type=int, default=8, help="chains started in each round (default 8)")
    parser.add_argument("--steps", type=int, default=12, help="activities per chain (default 12)")
    parser.add_argument("--seconds", type=float, default=0.2, help="how long each activity runs (default 0.2)")
    parser.add_argument("--run-for", type=float, default=1.5, help="seconds between a round's starts and its kill")
    parser.add_argument("--keep", type=Path, help="a folder to keep the logs and traces in (default: removed)")
    args = parser.parse_args(argv)
    stores = [store for store in STORES if store in args.stores.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="restart-recovery-") as scratch:
        folder = args.keep or Path(scratch)
        for store in stores:
            workdir = Path(folder) / store
            workdir.mkdir(parents=True)
            progress(f"{store}: {args.restarts} restarts")
            results.append(Bench(store, workdir, args.restarts, args.batch, args.steps, args.seconds,
                                 args.run_for).run())
    print(report(results, args))
    return 1 if any(fig.error for fig in results) else 0


if __name__ == "__main__":
    sys.exit(main())
