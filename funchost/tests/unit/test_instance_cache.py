"""The instance cache's bounds: by entries and by the estimated size of what it holds."""

from __future__ import annotations

import pytest

from funchost.durable.instance_cache import InstanceCache, cache_bytes_setting, history_size
from funchost.errors import ConfigError
from funchost.stores.base import InstanceRecord


def _record(instance_id: str, input_chars: int = 0) -> InstanceRecord:
    return InstanceRecord(instance_id, "orchestrator", "e1", "Running", "x" * input_chars if input_chars else None,
                          0.0, 0.0)


def test_evicts_the_least_recently_used_past_the_entry_bound() -> None:
    cache = InstanceCache(max_entries=2)
    cache.put(_record("a"), [])
    cache.put(_record("b"), [])
    assert cache.get("a") is not None  # now "b" is the least recently used
    cache.put(_record("c"), [])
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


def test_evicts_past_the_byte_bound_and_keeps_its_total_exact() -> None:
    cache = InstanceCache(max_bytes=50_000)
    for n in range(10):
        cache.put(_record(f"i{n}", 10_000), [{"EventType": 0, "Input": "y" * 10_000}])
    assert 0 < cache.size <= 50_000
    assert len(cache) == 2  # each entry is ~21 KB
    assert cache.get("i9") is not None and cache.get("i7") is None
    cache.discard("i9")
    cache.discard("i8")
    assert cache.size == 0 and len(cache) == 0


def test_extend_counts_the_new_events() -> None:
    cache = InstanceCache()
    record = _record("a")
    cache.put(record, [])
    before = cache.size
    events = [{"EventType": 5, "Result": "z" * 5_000}]
    cache.extend(record, events)
    assert cache.size == before + history_size(events)
    cached = cache.get("a")
    assert cached is not None and cached[1] == events


def test_an_entry_larger_than_the_bound_is_not_kept() -> None:
    cache = InstanceCache(max_bytes=10_000)
    cache.put(_record("small"), [])
    cache.put(_record("huge", 20_000), [])
    assert cache.get("huge") is None
    assert cache.get("small") is not None


def test_the_setting() -> None:
    assert cache_bytes_setting({}) == 256 * 1024 * 1024
    assert cache_bytes_setting({"FUNCHOST_INSTANCE_CACHE_MB": "1.5"}) == int(1.5 * 1024 * 1024)
    with pytest.raises(ConfigError, match="FUNCHOST_INSTANCE_CACHE_MB='none'"):
        cache_bytes_setting({"FUNCHOST_INSTANCE_CACHE_MB": "none"})
