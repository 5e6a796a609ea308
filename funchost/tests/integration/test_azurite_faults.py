"""Faults of the Azure Storage task hub: the storage goes away and comes back.

Azure store only (Azurite). Azurite is stopped with SIGTERM and started again on the same ports and data
(``Azurite.restart``), never killed: see funchost.testing.azurite for why. Work that keeps failing (poison)
is tested on both stores in test_poison.py.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from funchost.testing.azurite import Azurite
from funchost.testing.process import FunchostProcess
from funchost.testing.pytest_plugin import StartHost
from funchost.testing.waiting import wait_until
from tests.integration._durable_helpers import finished, start

pytestmark = pytest.mark.azurite

DOWN_S = 2.0  # how long Azurite stays stopped, on top of the time it takes to stop and start
BACK_OFF_MAX_S = 2.0  # the longest a poller or a retrying call waits between two tries while storage is down
OUTAGE_STARTED = re.compile(r"WARNING funchost\.stores\.azure: Azure Storage \(.*\) is not answering \(")
OUTAGE_ENDED = re.compile(r"WARNING funchost\.stores\.azure: Azure Storage \(.*\) answers again after ([0-9.]+) s")


def warnings_and_errors(host: FunchostProcess) -> list[str]:
    """The host log's WARNING and ERROR lines, and any traceback."""
    assert host.log_path is not None
    text = host.log_path.read_text(errors="replace")
    return [
        line
        for line in text.splitlines()
        if " WARNING " in line or " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
    ]


def stop_azurite_while(azurite: Azurite, during_outage: Any) -> float:
    """Restart Azurite (stopped ``DOWN_S`` s), calling ``during_outage()`` once it has stopped; returns how
    long it was not serving."""
    restarted: list[BaseException] = []

    def restart() -> None:
        try:
            azurite.restart(down_for=DOWN_S)
        except BaseException as err:  # reported by the test thread below
            restarted.append(err)

    began = time.monotonic()
    thread = threading.Thread(target=restart, name="azurite-restart")
    thread.start()
    wait_until(lambda: not azurite.running, "Azurite to stop", timeout=30)
    during_outage()
    thread.join(60)
    assert not thread.is_alive(), "Azurite did not start again within 60 s"
    assert not restarted, f"Azurite failed to restart: {restarted[0]!r}"
    return time.monotonic() - began


# --- Azurite stopped and started again ------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["azure"])
def test_instances_in_flight_survive_azurite_stopping_twice(
    start_host: StartHost, azurite: Azurite, tmp_path: Path
) -> None:
    host = start_host("orchestrations")
    expected: dict[str, Any] = {}

    # In flight when storage stops: activities held on a gate that opens while it is down (their results
    # are saved once it is back), durable timers that come due while it is down, and a fan-out.
    gates = [tmp_path / f"gate-{n}" for n in range(3)]
    for n, gate in enumerate(gates):
        expected[start(host, "run_gated_activity", {"path": str(gate), "timeoutSeconds": 60})] = f"gate opened: {n}"
    timers = [start(host, "wait_on_timer", ms) for ms in (1000, 2500, 6000)]
    fan_out = start(host, "fan_out_fan_in", 30)
    expected[fan_out] = {"count": 30, "sum": sum(n * n for n in range(1, 31))}
    chains = {start(host, "run_chain", f"before-{n}"): f"Hello Hello Hello before-{n}" for n in range(3)}
    expected.update(chains)
    wait_until(lambda: all(Path(f"{gate}.started").exists() for gate in gates), "the gated activities to start")

    during: dict[str, Any] = {}

    def while_down() -> None:
        for n, gate in enumerate(gates):
            # Whole, or not there: the activity reads the gate as soon as it exists.
            Path(f"{gate}.part").write_text(str(n))
            os.replace(f"{gate}.part", gate)

        # A client starts an instance while storage is down: the start waits for storage, then succeeds.
        def start_chain() -> None:
            during["id"] = start(host, "run_chain", "during")

        during["thread"] = threading.Thread(target=start_chain, name="start-during-outage")
        during["thread"].start()
        time.sleep(0.5)

    first_down = stop_azurite_while(azurite, while_down)
    during["thread"].join(60)
    assert "id" in during, "the start made while storage was down did not complete once it was back"
    expected[during["id"]] = "Hello Hello Hello during"

    for instance_id, output in expected.items():
        status = finished(host, instance_id, timeout=60)
        assert (status["runtimeStatus"], status["output"]) == ("Completed", output), status
    for instance_id in timers:
        status = finished(host, instance_id, timeout=60)
        assert status["runtimeStatus"] == "Completed", status
        assert status["output"]["resumedAt"] >= status["output"]["fireAt"]

    # A second outage, with nothing but a long timer in flight: the pollers are idle when it starts.
    waiting = start(host, "wait_on_timer", 4000)
    second_down = stop_azurite_while(azurite, lambda: None)
    after = start(host, "run_chain", "after")
    assert finished(host, after, timeout=60)["output"] == "Hello Hello Hello after"
    assert finished(host, waiting, timeout=60)["runtimeStatus"] == "Completed"

    # One warning when each outage starts and one when it ends; nothing else, however often the pollers,
    # the lease renewals and the waiting checkpoints tried meanwhile.
    lines = warnings_and_errors(host)
    assert [bool(OUTAGE_STARTED.search(line)) for line in lines] == [True, False, True, False], "\n".join(lines)
    ended = [OUTAGE_ENDED.search(line) for line in lines[1::2]]
    assert all(ended), "\n".join(lines)
    # The time it reports covers the outage: from the first failed call to the first answer, which comes
    # at most one back-off step (2 s) after storage is back.
    for match, down in zip(ended, (first_down, second_down), strict=True):
        assert match is not None
        assert DOWN_S <= float(match.group(1)) <= down + BACK_OFF_MAX_S + 1.0, (match.group(0), down)
