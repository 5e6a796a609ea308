"""The host's memory stays bounded: the instance cache by its byte setting, and no bookkeeping per instance
outlives the instance."""

from __future__ import annotations

import json

import pytest

from funchost.testing.waiting import wait_until

CACHE_MB = 16
INPUT_MB = 2
INSTANCES = 60
MB = 1024 * 1024


def _start_echo(host, instance_id: str, size: int) -> None:
    # An input of ``size`` characters; echo_input returns it, so the output is as large again.
    body = json.dumps("x" * size).encode()
    answer = host.request("POST", f"/runtime/webhooks/durabletask/orchestrators/echo_input/{instance_id}", raw=body,
                          headers={"Content-Type": "application/json"})
    assert answer.status == 202, answer.text()


def _completed(host, instance_id: str) -> bool:
    answer = host.status(instance_id, "?showInput=false")
    return answer.status == 200 and answer.json()["runtimeStatus"] == "Completed"


def test_large_inputs_leave_memory_bounded_by_the_cache_setting(start_host, store_kind: str) -> None:
    """60 instances with 2 MB inputs (each cached entry holds its input and output twice: in its record and in
    its history, ~8 MB) pass through a 16 MB cache. Unbounded by size, the host kept all of them: ~0.5 GB."""
    host = start_host("orchestrations", env={"FUNCHOST_INSTANCE_CACHE_MB": str(CACHE_MB)})
    for n in range(3):  # warm-up: the first large requests grow the heap once
        _start_echo(host, f"warm-{n}", INPUT_MB * MB)
        wait_until(lambda n=n: _completed(host, f"warm-{n}"), f"warm-{n} completed", 60)
    warm = host.rss_bytes()
    for n in range(INSTANCES):
        _start_echo(host, f"big-{n}", INPUT_MB * MB)
        wait_until(lambda n=n: _completed(host, f"big-{n}"), f"big-{n} completed", 60)
    end = host.rss_bytes()
    grown_mb = (end - warm) / MB
    print(f"[{store_kind}] RSS after warm-up {warm / MB:.0f} MB, after {INSTANCES} instances with {INPUT_MB} MB "
          f"inputs {end / MB:.0f} MB (cache bound {CACHE_MB} MB)")
    # Everything that went through the cache was 60 x ~8 MB; what stays is at most the cache and the
    # allocator's slack of a few requests of this size.
    assert grown_mb < 2 * CACHE_MB + 6 * INPUT_MB, f"RSS grew {grown_mb:.0f} MB"
    # Evicted instances are read back from the task hub, whole.
    first = host.status("big-0", "?showInput=true")
    assert first.status == 200
    assert len(first.json()["input"]) == INPUT_MB * MB


@pytest.mark.parametrize("bad", ["0", "-5", "lots"])
def test_a_bad_cache_setting_stops_the_host_with_its_name(start_host, bad: str) -> None:
    with pytest.raises(RuntimeError, match="FUNCHOST_INSTANCE_CACHE_MB"):
        start_host("orchestrations", env={"FUNCHOST_INSTANCE_CACHE_MB": bad}, timeout=20)
