"""Names and row shapes of the Azure Storage task hub (spec section 6), shared by its modules.

The roles and names follow DurableTask.AzureStorage (``{Hub}History``, ``{Hub}Instances``,
``{hub}-control-NN``, ``{hub}-workitems``); the bytes do not, and a marker row tells a funchost hub
from one another host wrote.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from funchost.errors import ConfigError

FORMAT = "funchost-azure"
SCHEMA_VERSION = 1
MARKER_PK = "$funchost"  # the marker row of {Hub}Instances; its row key keeps it apart from instance rows
MARKER_RK = "taskhub"
HOST_RK = "host"  # {Hub}Instances row ($funchost, host): the host lease (_azure_host_lease)
SENTINEL_RK = "sentinel"  # sorts after every 16-hex-digit sequence row key
MAX_PARTITIONS = 16
# Queue names are "{hub}-control-NN" (at most 63 characters) and table names "{Hub}Payloads" (at most 63):
# the same limit DurableTask.AzureStorage sets on hub names.
_HUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,44}$")

# Azure limits: a table string property holds 32K UTF-16 code units, a queue message 64 KiB. Values are
# kept below both with room for escaping; anything larger goes to the payload table.
INLINE_CHARS = 30_000
MESSAGE_CHARS = 45_000
MAX_VISIBILITY_S = 7 * 24 * 3600 - 60  # a queue message can be hidden for at most 7 days


@dataclass(frozen=True)
class HubLayout:
    """The tables and queues of one task hub."""

    hub: str
    partition_count: int

    def __post_init__(self) -> None:
        if not _HUB_NAME.match(self.hub):
            raise ConfigError(
                f"Task hub name '{self.hub}' cannot name Azure Storage tables and queues: use 3 to 45 letters "
                "and digits, starting with a letter (hubName in host.json's extensions.durableTask, or --hub)."
            )
        if not 1 <= self.partition_count <= MAX_PARTITIONS:
            raise ConfigError(f"partitionCount must be between 1 and {MAX_PARTITIONS}, not {self.partition_count}.")

    @property
    def history_table(self) -> str:
        return f"{self.hub}History"

    @property
    def instances_table(self) -> str:
        return f"{self.hub}Instances"

    @property
    def entities_table(self) -> str:
        return f"{self.hub}Entities"

    @property
    def payloads_table(self) -> str:
        return f"{self.hub}Payloads"

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.history_table, self.instances_table, self.entities_table, self.payloads_table)

    @property
    def control_queues(self) -> list[str]:
        return [f"{self.hub.lower()}-control-{index:02d}" for index in range(self.partition_count)]

    @property
    def workitem_queue(self) -> str:
        return f"{self.hub.lower()}-workitems"

    def partition(self, instance_id: str) -> int:
        """A stable partition (unlike ``hash()``, which Python salts per process)."""
        return zlib.crc32(instance_id.encode("utf-8")) % self.partition_count

    def control_queue(self, instance_id: str) -> str:
        return self.control_queues[self.partition(instance_id)]


def history_row_key(seq: int) -> str:
    return f"{seq:016X}"


def to_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def from_datetime(value: Any) -> float:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return float(value.timestamp())


def odata_str(value: str) -> str:
    """A string literal of an OData filter."""
    return "'" + value.replace("'", "''") + "'"


def odata_datetime(epoch: float) -> str:
    return "datetime'" + to_datetime(epoch).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string above every string that starts with ``prefix`` (for a key-range filter)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def encode_token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def decode_token(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, RecursionError) as err:  # binascii, Unicode and JSON errors are ValueErrors
        raise ValueError("continuation token is not one this task hub issued") from err


def dumps(value: Any) -> str:
    """Compact ASCII JSON: XML-safe in a queue message, and one character per stored byte."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)
