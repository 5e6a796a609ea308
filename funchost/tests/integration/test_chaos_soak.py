"""Chaos soak: a few hundred mixed instances while the host is SIGKILLed and restarted again and again.

Drives the `chaos` test app (tests/apps/chaos) on both stores that outlive the process. From a seeded
plan it starts instances of every kind there (activity chains, fan-out/fan-in, an external event raced
with a durable timer, sub-orchestrations, entity counters by signal and by call), raises the events the
plan says, and kills the host with SIGKILL every 1-6 s (some kills within the first second after a host
became ready), starting a new host on the same task hub each time, as the crash tests do. After the last
restart the host runs undisturbed until every instance is terminal or a generous bound has passed.

It then asserts what must hold whatever the timing: no started instance is lost, none is stuck, none
failed, every output is the one its input implies, every counter has exactly the sum of the amounts sent
to it, and the journal of activity runs holds only the runs the plan implies. Activities run at least
once, so runs beyond the first are counted and printed, not refused. The figures (duplicate runs, the
time from each restart to the first step of an instance that existed before it) are printed, never
asserted. The plan and the kill intervals are seeded; where in the engine's work a kill lands is not.

Requests are only sent between kills, so every start and raise the test counts was acknowledged (202)
by a live host before it died.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from tests.integration._durable_helpers import DURABLE, TERMINAL, raise_public, start_public

pytestmark = [pytest.mark.soak, pytest.mark.crash, pytest.mark.slow]

# --- the scale of the soak: one store's run takes 2-4 minutes on 2 cores --------------------------------
SEED = 20261203
INSTANCES = 400  # shared out evenly among the five kinds
KILLS = 24
KILL_INTERVAL_S = (1.0, 6.0)
EARLY_KILL_EVERY = 4  # every 4th kill comes within the first second after the host became ready
EARLY_KILL_INTERVAL_S = (0.1, 1.0)
BURST = 200  # starts the first host takes before its kill, so that the first kills land on a backlog
ACTION_CYCLES = KILLS - 4  # the other starts and the raises are spread over all but the last few kill cycles
SETTLE_BOUND_S = 240.0  # after the last restart: every instance terminal and every counter complete by then
QUIET_S = 2.0  # once settled, counters are read again after this, so a late extra `add` shows
COUNTER_KEYS = [f"c{n}" for n in range(8)]

APP = "chaos"
JOURNAL_SETTING = "CHAOS_JOURNAL"  # read by the app's `step` activity
COUNTER_ENTITY = "Counter"
GO_EVENT = "Go"
MODULUS = 1_000_003
NO_EVENT_TIMEOUT_S = 3600  # a race whose event the plan raises: its timer never wins within the run


def next_value(value: int) -> int:
    """The app's `step` rule, restated here as the oracle for expected outputs."""
    return (value * 31 + 7) % MODULUS


def chain_result(start: int, length: int) -> int:
    value = start
    for _ in range(length):
        value = next_value(value)
    return value


# --- the plan -------------------------------------------------------------------------------------------

@dataclass
class Planned:
    """One top-level instance: what to start, what it must return, and which (instance, task) runs it makes."""

    instance_id: str
    orchestrator: str
    input: dict[str, Any]
    output: dict[str, Any]
    runs: set[tuple[str, str]]
    event: dict[str, Any] | None = None  # the `Go` payload the test raises, if any


@dataclass
class Plan:
    instances: list[Planned]
    counters: dict[str, int]  # the exact final value of each Counter

    def by_id(self) -> dict[str, Planned]:
        return {p.instance_id: p for p in self.instances}

    def all_runs(self) -> set[tuple[str, str]]:
        return {run for p in self.instances for run in p.runs}


def make_plan(rng: random.Random) -> Plan:
    instances: list[Planned] = []
    counters = {key: 0 for key in COUNTER_KEYS}
    kinds = ["chain", "fan", "race", "parent", "tally"]
    for index in range(INSTANCES):
        kind = kinds[index % len(kinds)]
        iid = f"soak-{kind}-{index:04d}"
        if kind == "chain":
            start, length = rng.randrange(MODULUS), rng.randint(3, 6)
            instances.append(Planned(iid, "chain", {"start": start, "length": length},
                                     {"value": chain_result(start, length)},
                                     {(iid, f"chain-{n}") for n in range(length)}))
        elif kind == "fan":
            values = [rng.randrange(MODULUS) for _ in range(rng.randint(4, 10))]
            instances.append(Planned(iid, "fan", {"values": values}, {"sum": sum(next_value(v) for v in values)},
                                     {(iid, f"fan-{n}") for n in range(len(values))}))
        elif kind == "race":
            if rng.random() < 0.5:
                value = rng.randrange(MODULUS)
                instances.append(Planned(iid, "race", {"timeoutSeconds": NO_EVENT_TIMEOUT_S},
                                         {"winner": "event", "value": next_value(value)},
                                         {(iid, "after-event")}, event={"value": value}))
            else:  # nobody raises its event: the timer wins, after the host has been killed a few times
                instances.append(Planned(iid, "race", {"timeoutSeconds": rng.randint(2, 20)}, {"winner": "timer"},
                                         set()))
        elif kind == "parent":
            children = [{"start": rng.randrange(MODULUS), "length": rng.randint(2, 4)}
                        for _ in range(rng.randint(2, 3))]
            values = [chain_result(c["start"], c["length"]) for c in children]
            runs = {(f"{iid}-sub-{n}", f"chain-{k}") for n, c in enumerate(children) for k in range(c["length"])}
            instances.append(Planned(iid, "parent", {"children": children},
                                     {"values": values, "total": next_value(sum(values) % MODULUS)},
                                     runs | {(iid, "total")}))
        else:
            signals = [[rng.choice(COUNTER_KEYS), rng.randint(1, 9)] for _ in range(rng.randint(1, 4))]
            calls = [[rng.choice(COUNTER_KEYS), rng.randint(1, 9)] for _ in range(rng.randint(1, 3))]
            for key, amount in signals + calls:
                counters[key] += amount
            total = sum(amount for _, amount in signals + calls)
            instances.append(Planned(iid, "tally", {"signals": signals, "calls": calls},
                                     {"value": next_value(total)}, {(iid, "tally")}))
    return Plan(instances, counters)


def make_actions(plan: Plan, rng: random.Random) -> list[tuple[str, Planned]]:
    """Every start, in a shuffled order, and each planned raise a little later than its instance's start."""
    order = plan.instances[:]
    rng.shuffle(order)
    actions: list[tuple[str, Planned]] = [("start", p) for p in order]
    for planned in [p for p in order if p.event is not None]:
        started_at = actions.index(("start", planned))
        actions.insert(min(len(actions), started_at + rng.randint(1, 60)), ("raise", planned))
    return actions


def kill_intervals(rng: random.Random) -> list[float]:
    return [rng.uniform(*(EARLY_KILL_INTERVAL_S if n % EARLY_KILL_EVERY == 1 else KILL_INTERVAL_S))
            for n in range(KILLS)]


# --- the run --------------------------------------------------------------------------------------------

@dataclass
class HostRun:
    """One host process of the soak: when it was launched and killed, its pid, and what existed before it."""

    launched_at: float  # wall clock, as in the journal
    pid: int
    existing: frozenset[str]  # top-level instances acknowledged before it was launched
    killed_at: float | None = None


@dataclass
class Soak:
    start_host: StartHost
    journal: Path
    started: dict[str, float] = field(default_factory=dict)  # instance id -> when its start was acknowledged
    hosts: list[HostRun] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # starts or raises a live host did not acknowledge
    host: FunchostProcess | None = None

    def launch(self) -> FunchostProcess:
        launched_at = time.time()
        host = self.start_host(APP, env={JOURNAL_SETTING: str(self.journal)})
        assert host.process is not None
        self.hosts.append(HostRun(launched_at, host.process.pid, frozenset(self.started)))
        self.host = host
        return host

    def kill(self) -> None:
        assert self.host is not None
        self.host.kill()
        self.hosts[-1].killed_at = time.time()

    def act(self, action: str, planned: Planned) -> None:
        assert self.host is not None
        if action == "start":
            res = start_public(self.host, planned.orchestrator, planned.input, planned.instance_id)
            if res.status == 202:
                self.started[planned.instance_id] = time.time()
            else:
                self.refused.append(f"start {planned.instance_id}: {res.status} {res.text[:200]}")
        else:
            res = raise_public(self.host, planned.instance_id, GO_EVENT, planned.event)
            if res.status != 202:
                self.refused.append(f"raise {planned.instance_id}: {res.status} {res.text[:200]}")


def run_chaos(soak: Soak, actions: list[tuple[str, Planned]], intervals: list[float]) -> None:
    """Start a burst of instances, then kill and restart the host once per interval, doing the next
    actions while each host lives; the actions left over at the end go to the last host."""
    pending = list(actions)
    soak.launch()
    while pending and len(soak.started) < BURST:
        soak.act(*pending.pop(0))
    per_cycle = math.ceil(len(pending) / ACTION_CYCLES)
    for interval in intervals:
        kill_at = time.monotonic() + interval
        done = 0
        while pending and done < per_cycle and time.monotonic() < kill_at:
            soak.act(*pending.pop(0))
            done += 1
        time.sleep(max(0.0, kill_at - time.monotonic()))
        soak.kill()
        soak.launch()
    for action in pending:
        soak.act(*action)


# --- observing the outcome ------------------------------------------------------------------------------

def list_instances(host: FunchostProcess, prefix: str) -> dict[str, dict[str, Any]]:
    """What the instance query (GET instances) says of every instance whose id starts with `prefix`."""
    found: dict[str, dict[str, Any]] = {}
    token: str | None = None
    while True:
        headers = {"x-ms-continuation-token": token} if token else None
        res = host.get(f"{DURABLE}/instances?instanceIdPrefix={quote(prefix)}&top=500", headers=headers)
        assert res.status == 200, res.text
        for status in res.json():
            found[status["instanceId"]] = status
        token = next((v for k, v in res.headers.items() if k.lower() == "x-ms-continuation-token"), None)
        if not token:
            return found


def own_status(host: FunchostProcess, instance_id: str) -> dict[str, Any] | None:
    """What the instance's own status (GET instances/{id}) says; None for 404."""
    res = host.status(instance_id)
    if res.status == 404:
        return None
    assert res.status in (200, 202), res.text
    return res.json()  # type: ignore[no-any-return]


def counter_values(host: FunchostProcess) -> dict[str, int | None]:
    values: dict[str, int | None] = {}
    for key in COUNTER_KEYS:
        res = host.get(f"{DURABLE}/entities/{COUNTER_ENTITY}/{key}")
        values[key] = int(res.json()) if res.status == 200 else None
    return values


def counter_floor(plan: Plan, statuses: dict[str, dict[str, Any] | None]) -> dict[str, int]:
    """What each counter must have at least: the amounts of the `tally` instances that completed (a failed
    one may have sent some of its signals or none). With every tally completed, the exact sums."""
    floor = {key: 0 for key in COUNTER_KEYS}
    for planned in plan.instances:
        status = statuses.get(planned.instance_id)
        if planned.orchestrator == "tally" and status is not None and status["runtimeStatus"] == "Completed":
            for key, amount in planned.input["signals"] + planned.input["calls"]:
                floor[key] += amount
    return floor


@dataclass
class Observed:
    listed: dict[str, dict[str, Any]]  # from the instance query
    own: dict[str, dict[str, Any] | None]  # from each top-level instance's own status
    counters: dict[str, int | None]
    settle_s: float


def observe(host: FunchostProcess, plan: Plan, own: dict[str, dict[str, Any] | None]) -> Observed:
    """One look: the query's view of everything, and the own status of each instance not known terminal."""
    listed = list_instances(host, "soak-")
    for planned in plan.instances:
        iid = planned.instance_id
        known = own.get(iid)
        if known is None or known["runtimeStatus"] not in TERMINAL:
            listed_status = listed.get(iid)
            if listed_status is not None and listed_status["runtimeStatus"] in TERMINAL:
                own[iid] = listed_status  # refined by a direct read in `settle` once everything is terminal
            else:
                own[iid] = own_status(host, iid)
    return Observed(listed, own, counter_values(host), 0.0)


def settle(host: FunchostProcess, plan: Plan) -> Observed:
    """Poll until every instance's own status is terminal and every counter has reached its floor, or the
    bound passes; then read every instance's own status once more, and the counters after a quiet time."""
    began = time.monotonic()
    own: dict[str, dict[str, Any] | None] = {}
    while True:
        seen = observe(host, plan, own)
        every_terminal = all(s is not None and s["runtimeStatus"] in TERMINAL for s in own.values())
        floor = counter_floor(plan, own)
        if every_terminal and all((seen.counters[k] or 0) >= v for k, v in floor.items()):
            break
        if time.monotonic() - began > SETTLE_BOUND_S:
            break
        time.sleep(1.0)
    settle_s = time.monotonic() - began
    time.sleep(QUIET_S)
    final_own = {p.instance_id: own_status(host, p.instance_id) for p in plan.instances}
    return Observed(list_instances(host, "soak-"), final_own, counter_values(host), settle_s)


Journal = list[tuple[float, int, str, str]]


def read_journal(path: Path) -> Journal:
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        at, pid, instance_id, task = line.split(" ")
        lines.append((float(at), int(pid), instance_id, task))
    return lines


def top_level(instance_id: str) -> str:
    """The plan's instance a journal line belongs to: a sub-orchestration is `<parent>-sub-<n>`."""
    return instance_id.split("-sub-")[0]


def restart_to_first_step(hosts: list[HostRun], journal: Journal) -> list[float | None]:
    """For each restart, seconds from its launch to its first activity run for an instance that existed
    before it was launched; None when it ran none before it was killed (or, the last one, at all)."""
    first: dict[int, float] = {}
    existing_by_pid = {h.pid: h.existing for h in hosts}
    for at, pid, instance_id, _ in sorted(journal):
        if pid not in first and top_level(instance_id) in existing_by_pid.get(pid, frozenset()):
            first[pid] = at
    return [first[h.pid] - h.launched_at if h.pid in first else None for h in hosts[1:]]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def history_summary(host: FunchostProcess, instance_id: str) -> str:
    res = host.status(instance_id, "?showHistory=true")
    if res.status not in (200, 202):
        return f"(status {res.status})"
    parts = []
    for event in res.json().get("historyEvents") or []:
        name = event.get("FunctionName") or event.get("Name") or ""
        parts.append(f"{event['EventType']}{'(' + name + ')' if name else ''}")
    return ", ".join(parts)


def first_line(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text.strip().splitlines()[0][:300] if text.strip() else "(empty)"


def reason_kind(reason: str) -> str:
    """A failure reason with its numbers and quoted names blanked, so that alike failures count together."""
    return re.sub(r"'[^']*'", "'…'", re.sub(r"\d+", "N", reason))


@dataclass
class Outcome:
    lost: list[str]
    stuck: dict[str, str]  # id -> status and history
    failed: dict[str, str]  # id -> failure reason
    wrong: dict[str, str]  # id -> got vs expected
    query_disagrees: dict[str, str]  # id -> what the instance query says vs the instance's own status
    counters_wrong: dict[str, str]
    unknown_runs: set[tuple[str, str]]
    missing_runs: set[tuple[str, str]]

    def problems(self) -> list[str]:
        return [f"{what}: {len(items)}" for what, items in (
            ("lost", self.lost), ("stuck", self.stuck), ("failed", self.failed), ("wrong output", self.wrong),
            ("instance query disagrees with the instance's status", self.query_disagrees),
            ("wrong counters", self.counters_wrong), ("unplanned activity runs", self.unknown_runs),
            ("planned runs missing from completed instances", self.missing_runs)) if items]


def judge(host: FunchostProcess, plan: Plan, soak: Soak, seen: Observed, journal: Journal) -> Outcome:
    lost, stuck, failed, wrong, disagrees = [], {}, {}, {}, {}
    for planned in plan.instances:
        iid = planned.instance_id
        status = seen.own.get(iid)
        if status is None:
            if iid in soak.started:
                lost.append(iid)
            continue
        runtime = status["runtimeStatus"]
        listed = seen.listed.get(iid)
        if listed is None or listed["runtimeStatus"] != runtime:
            listed_as = "absent" if listed is None else listed["runtimeStatus"]
            disagrees[iid] = f"query says {listed_as}, own status {runtime}"
        if runtime not in TERMINAL:
            stuck[iid] = f"{runtime}; history: {history_summary(host, iid)}"
        elif runtime != "Completed":
            failed[iid] = f"{runtime}: {first_line(status.get('output'))}"
        elif status.get("output") != planned.output:
            wrong[iid] = f"got {status.get('output')!r}, expected {planned.output!r}"
    counters_wrong = {key: f"{seen.counters[key]} != {expected}" for key, expected in plan.counters.items()
                      if seen.counters[key] != expected}
    ran = {(iid, task) for _, _, iid, task in journal}
    completed = {iid for iid, s in seen.own.items() if s is not None and s["runtimeStatus"] == "Completed"}
    missing = {run for p in plan.instances if p.instance_id in completed for run in p.runs if run not in ran}
    return Outcome(lost, stuck, failed, wrong, disagrees, counters_wrong, ran - plan.all_runs(), missing)


def report_lines(plan: Plan, soak: Soak, outcome: Outcome, seen: Observed, journal: Journal,
                 store_kind: str) -> Iterator[str]:
    runs = Counter((iid, task) for _, _, iid, task in journal)
    duplicates = sum(n - 1 for n in runs.values())
    yield f"chaos soak [{store_kind}]: {len(soak.started)}/{len(plan.instances)} instances started, " \
          f"{len(soak.hosts) - 1} kills and restarts, settled {seen.settle_s:.1f}s after the last restart"
    yield f"  activity runs: {len(journal)} for {len(runs)} distinct (instance, task) of {len(plan.all_runs())} " \
          f"planned; duplicate runs: {duplicates} (on {sum(1 for n in runs.values() if n > 1)} tasks)"
    gaps = restart_to_first_step(soak.hosts, journal)
    measured = [g for g in gaps if g is not None]
    if measured:
        yield f"  restart to first step of an existing instance: p50 {percentile(measured, 0.5):.2f}s, " \
              f"p95 {percentile(measured, 0.95):.2f}s, max {max(measured):.2f}s " \
              f"({len(measured)} of {len(gaps)} restarts ran one)"
    else:
        yield f"  restart to first step of an existing instance: none of {len(gaps)} restarts ran one"
    lived = [f"{h.killed_at - h.launched_at:.1f}" if h.killed_at else "end" for h in soak.hosts[1:]]
    yield "  per restart, first step (s) / lifetime (s): " + " ".join(
        f"{'-' if g is None else f'{g:.2f}'}/{life}" for g, life in zip(gaps, lived, strict=True))
    statuses = Counter(s["runtimeStatus"] if s else "absent" for s in seen.own.values())
    yield f"  final statuses: {dict(sorted(statuses.items()))}"
    yield f"  lost {len(outcome.lost)}, stuck {len(outcome.stuck)}, failed {len(outcome.failed)}, " \
          f"wrong output {len(outcome.wrong)}, query disagrees {len(outcome.query_disagrees)}, " \
          f"wrong counters {len(outcome.counters_wrong)}, refused requests {len(soak.refused)}"
    if outcome.failed:
        by_kind = Counter(p.orchestrator for p in plan.instances if p.instance_id in outcome.failed)
        yield f"  failed by orchestrator: {dict(sorted(by_kind.items()))} (of {INSTANCES // 5} each)"
    for kind, count in Counter(reason_kind(r) for r in outcome.failed.values()).most_common():
        yield f"  failed x{count}: {kind}"
    for iid, reason in sorted(outcome.failed.items())[:3]:
        yield f"  e.g. failed {iid} {reason}"
    floor = counter_floor(plan, seen.own)
    for key, detail in sorted(outcome.counters_wrong.items()):
        yield f"  counter {key}: {detail} (at least {floor[key]} from the tallies that completed)"
    for what, items in (("lost", {i: "" for i in outcome.lost}), ("stuck", outcome.stuck),
                        ("wrong", outcome.wrong), ("query disagrees", outcome.query_disagrees)):
        for key, detail in sorted(items.items()):
            yield f"  {what} {key} {detail}"
    for line in soak.refused:
        yield f"  refused {line}"
    for run in sorted(outcome.unknown_runs):
        yield f"  unplanned run {run}"
    for run in sorted(outcome.missing_runs):
        yield f"  missing run {run}"


@pytest.mark.timeout(900)
def test_chaos_soak_loses_nothing_and_gets_every_output_right(
    start_host: StartHost, restartable_store: None, store_kind: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(SEED)
    plan = make_plan(rng)
    soak = Soak(start_host, tmp_path / "journal.txt")

    run_chaos(soak, make_actions(plan, rng), kill_intervals(random.Random(SEED + 1)))
    assert soak.host is not None
    seen = settle(soak.host, plan)
    journal = read_journal(soak.journal)
    outcome = judge(soak.host, plan, soak, seen, journal)

    report = list(report_lines(plan, soak, outcome, seen, journal, store_kind))
    with capsys.disabled():  # the figures are the point of a soak: shown whether it passes or not
        print("\n" + "\n".join(report))
    problems = outcome.problems() + ([f"refused requests: {len(soak.refused)}"] if soak.refused else [])
    assert not problems, "; ".join(problems) + "\n" + "\n".join(report[:80])
