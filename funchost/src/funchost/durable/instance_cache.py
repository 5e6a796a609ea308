"""The engine's cache of instances and their histories, bounded by count and by size.

An episode replays the whole history, so the engine keeps recently used instances in memory rather than reading
them back from the task hub for every step. Only one host runs on a task hub, so a cached entry cannot go stale;
an entry that is evicted is simply read again when it is needed. The cache is bounded by entries and by an
estimate of the bytes its entries hold: instance inputs and outputs may be tens of megabytes each (up to the
request size limit), and a bound by count alone let 60 instances with 10 MB inputs keep 1.4 GB resident.

The size of an entry is estimated from the lengths of the strings it holds (the record's input, output and custom
status, and every string in its history events): that is where large values live, and it is cheap to keep up to
date as events are appended. Python's own overhead per event is added as a constant.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from funchost.errors import ConfigError
from funchost.stores.base import InstanceRecord, Json

DEFAULT_MAX_ENTRIES = 2000
DEFAULT_MAX_MB = 256
CACHE_MB_SETTING = "FUNCHOST_INSTANCE_CACHE_MB"
EVENT_OVERHEAD = 400  # bytes a history event's dict and its small values take besides its long strings
RECORD_OVERHEAD = 1000


def cache_bytes_setting(environ: os._Environ[str] | dict[str, str] = os.environ) -> int:
    """The cache's byte bound from the ``FUNCHOST_INSTANCE_CACHE_MB`` app setting (megabytes, default 256)."""
    value = environ.get(CACHE_MB_SETTING)
    if value is None or not value.strip():
        return DEFAULT_MAX_MB * 1024 * 1024
    try:
        mb = float(value)
    except ValueError:
        mb = -1.0
    if mb <= 0:
        raise ConfigError(f"App setting {CACHE_MB_SETTING}={value!r} is not a positive number of megabytes "
                          f"(the instance cache's size bound; default {DEFAULT_MAX_MB}).")
    return int(mb * 1024 * 1024)


def event_size(event: Json) -> int:
    return EVENT_OVERHEAD + sum(len(v) for v in event.values() if isinstance(v, str))


def history_size(events: Iterable[Json]) -> int:
    return sum(event_size(e) for e in events)


def record_size(record: InstanceRecord) -> int:
    return RECORD_OVERHEAD + sum(len(v) for v in (record.input, record.output, record.custom_status) if v)


@dataclass
class CachedInstance:
    record: InstanceRecord
    history: list[Json]
    history_bytes: int
    size: int = 0  # as estimated when cached: the cache's total stays exact if the record changes later

    def __post_init__(self) -> None:
        self.size = record_size(self.record) + self.history_bytes


class InstanceCache:
    """Least recently used instances first out, once there are more than ``max_entries`` or their estimated
    size passes ``max_bytes``. An entry larger than ``max_bytes`` on its own is not kept at all."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_MB * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CachedInstance] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """The estimated bytes the cache holds now."""
        return self._bytes

    def get(self, instance_id: str) -> tuple[InstanceRecord, list[Json]] | None:
        entry = self._entries.get(instance_id)
        if entry is None:
            return None
        self._entries.move_to_end(instance_id)
        return entry.record, entry.history

    def history_of(self, instance_id: str) -> list[Json] | None:
        entry = self._entries.get(instance_id)
        return entry.history if entry is not None else None

    def put(self, record: InstanceRecord, history: list[Json]) -> None:
        """Cache ``record`` with its whole ``history`` (replacing what was cached for it)."""
        self._store(CachedInstance(record, history, history_size(history)))

    def extend(self, record: InstanceRecord, new_events: list[Json]) -> None:
        """The cached instance took a step: its record is now ``record`` and ``new_events`` follow its history."""
        entry = self._entries[record.instance_id]
        entry.history.extend(new_events)
        self._store(CachedInstance(record, entry.history, entry.history_bytes + history_size(new_events)))

    def discard(self, instance_id: str) -> None:
        entry = self._entries.pop(instance_id, None)
        if entry is not None:
            self._bytes -= entry.size

    def _store(self, entry: CachedInstance) -> None:
        instance_id = entry.record.instance_id
        self.discard(instance_id)
        if entry.size > self.max_bytes:
            return  # kept by whoever uses it now, read again from the task hub next time
        self._entries[instance_id] = entry
        self._bytes += entry.size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size
