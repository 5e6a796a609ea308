"""Outboxes: where `send_message` delivers, exactly once per idempotency key.

Two implementations behind one `Outbox` protocol, chosen by settings (`outbox_from_env`):

- `LocalOutbox(folder)`: one JSON file per message, named by the message id. The file is written to a
  temporary name and then hard-linked to its final name; the link fails if the name exists, so two
  deliveries of the same id (a retried or replayed activity, two workers racing) produce one file, and a
  reader never sees a half-written one.
- `QueueOutbox`: an Azure Storage queue (`azure-storage-queue`), with a table of send markers
  (`azure-data-tables`, same storage account) recording which ids were sent. See its docstring for the
  delivery guarantee.

Settings: `OUTBOX_CONNECTION` (a storage connection string, `UseDevelopmentStorage=true` for Azurite) and
`OUTBOX_QUEUE` (default "agent-outbox") select the queue; otherwise `OUTBOX_DIR` (default
`.funchost/outbox` under the current directory) selects the local folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from typing_extensions import TypedDict

from agents.errors import OutboxConfigError

logger = logging.getLogger(__name__)

DEFAULT_QUEUE = "agent-outbox"
DEFAULT_MARKER_TABLE = "agentoutboxsent"


@dataclass(frozen=True)
class OutboxMessage:
    """A message to deliver.

    Attributes:
        id: The idempotency key: a second message with the same id is not delivered again.
        to: Recipient, as the model gave it.
        text: Message body.
        created_at: ISO 8601 time the message was first sent.
    """

    id: str
    to: str
    text: str
    created_at: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class OutboxReceipt(TypedDict):
    """What a send reports. `duplicate` is true when the id had been delivered before (nothing was sent)."""

    message_id: str
    to: str
    transport: Literal["local", "queue"]
    location: str
    duplicate: bool


class Outbox(Protocol):
    """Delivers messages at most once per message id (see each implementation for crash windows)."""

    async def send(self, message: OutboxMessage) -> OutboxReceipt: ...


_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,120}$")


def storage_key(message_id: str) -> str:
    """A file name / table row key for a message id: the id itself when safe, else a hash of it.

    The two forms cannot collide: a hashed key starts with "h-" followed by 64 hex digits, and a safe id of
    that exact shape is hashed too.
    """
    if _SAFE_KEY.match(message_id) and not message_id.startswith("h-"):
        return message_id
    return "h-" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()


class LocalOutbox:
    """An outbox folder: one `<key>.json` file per message, created exactly once.

    Args:
        folder: The folder; created on first send.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path_of(self, message_id: str) -> Path:
        return self.folder / f"{storage_key(message_id)}.json"

    async def send(self, message: OutboxMessage) -> OutboxReceipt:
        # A local file write is quick; it runs on the event loop rather than paying for a thread hop.
        return self._send(message)

    def _send(self, message: OutboxMessage) -> OutboxReceipt:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.path_of(message.id)
        receipt: OutboxReceipt = {
            "message_id": message.id,
            "to": message.to,
            "transport": "local",
            "location": final.name,
            "duplicate": False,
        }
        if final.exists():
            return {**receipt, "duplicate": True}
        fd, temp_name = tempfile.mkstemp(prefix=".sending-", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(message.to_dict(), handle, ensure_ascii=False, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temp_name, final)  # atomic, and fails when the name exists: the exactly-once point
            except FileExistsError:
                return {**receipt, "duplicate": True}
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
        logger.info("outbox: message %s to %s written to %s", message.id, message.to, final.name)
        return receipt

    def messages(self) -> list[OutboxMessage]:
        """Every message in the folder, oldest first (by `created_at`, then id)."""
        if not self.folder.is_dir():
            return []
        found: list[OutboxMessage] = []
        for path in self.folder.glob("*.json"):
            data = json.loads(path.read_text(encoding="utf-8"))
            found.append(OutboxMessage(id=data["id"], to=data["to"], text=data["text"], created_at=data["created_at"]))
        return sorted(found, key=lambda m: (m.created_at, m.id))


MarkerState = Literal["new", "pending", "sent"]


class SendMarkers(Protocol):
    """Records which message ids a `QueueOutbox` is sending or has sent."""

    def claim(self, key: str) -> tuple[MarkerState, dict[str, Any] | None]:
        """Record `key` as pending unless it is recorded; returns its prior state and the recorded receipt."""
        ...

    def mark_sent(self, key: str, receipt: Mapping[str, Any]) -> None:
        """Record that `key` was sent, with its receipt."""
        ...


class LocalSendMarkers:
    """Send markers as files in a folder: fine for one machine, not shared between scaled-out instances."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def claim(self, key: str) -> tuple[MarkerState, dict[str, Any] | None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{storage_key(key)}.json"
        try:
            with open(path, "x", encoding="utf-8") as handle:
                json.dump({"state": "pending"}, handle)
            return "new", None
        except FileExistsError:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:  # a crash while the marker itself was written: treat as pending
                return "pending", None
            if data.get("state") == "sent":
                return "sent", dict(data.get("receipt") or {})
            return "pending", None

    def mark_sent(self, key: str, receipt: Mapping[str, Any]) -> None:
        path = self.folder / f"{storage_key(key)}.json"
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps({"state": "sent", "receipt": dict(receipt)}), encoding="utf-8")
        os.replace(temp, path)


class TableSendMarkers:
    """Send markers as rows of an Azure Storage table, shared by every instance of the app.

    Args:
        connection_string: Storage account connection string.
        table: Table name (created on first use).
    """

    _PARTITION = "outbox"

    def __init__(self, connection_string: str, table: str = DEFAULT_MARKER_TABLE) -> None:
        from azure.data.tables import TableClient

        self._client = TableClient.from_connection_string(connection_string, table_name=table)
        self._created = False

    def _ensure_table(self) -> None:
        if self._created:
            return
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            self._client.create_table()
        self._created = True

    def claim(self, key: str) -> tuple[MarkerState, dict[str, Any] | None]:
        from azure.core.exceptions import ResourceExistsError

        self._ensure_table()
        row = storage_key(key)
        try:
            self._client.create_entity({"PartitionKey": self._PARTITION, "RowKey": row, "State": "pending"})
            return "new", None
        except ResourceExistsError:
            entity = self._client.get_entity(self._PARTITION, row)
            if entity.get("State") == "sent":
                return "sent", dict(json.loads(str(entity.get("Receipt") or "{}")))
            return "pending", None

    def mark_sent(self, key: str, receipt: Mapping[str, Any]) -> None:
        from azure.data.tables import UpdateMode

        self._client.upsert_entity(
            {
                "PartitionKey": self._PARTITION,
                "RowKey": storage_key(key),
                "State": "sent",
                "Receipt": json.dumps(dict(receipt)),
            },
            mode=UpdateMode.REPLACE,
        )


class QueueOutbox:
    """An Azure Storage queue outbox; each message is a JSON object `{id, to, text, created_at}`.

    Messages are base64-encoded text, the encoding an Azure Functions queue trigger expects by default.

    Delivery guarantee. A queue cannot refuse a duplicate, so the outbox keeps a marker per message id:
    claim the id (insert "pending"; the insert fails if the id is known), send, then mark it "sent".
    A retried or replayed send of a "sent" id returns the recorded receipt and sends nothing. The one
    window left is a crash after the queue accepted the message and before the marker says "sent": the
    next attempt finds "pending" and cannot tell whether the first send happened. We send again
    (at-least-once) rather than skip (at-most-once, which could lose the message), and every message
    carries its `id` so a consumer can drop the rare duplicate. Marking "sent" before sending would
    close that window by losing messages instead, which is the worse failure for a notification.

    Args:
        connection_string: Storage account connection string.
        queue: Queue name (created on first use).
        markers: Where send markers live; by default a table in the same storage account, so every
            instance of a scaled-out app sees them.
    """

    def __init__(
        self, connection_string: str, queue: str = DEFAULT_QUEUE, *, markers: SendMarkers | None = None
    ) -> None:
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        self.queue_name = queue
        self._client = QueueClient.from_connection_string(
            connection_string,
            queue,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )
        self._markers = markers if markers is not None else TableSendMarkers(connection_string)
        self._created = False

    async def send(self, message: OutboxMessage) -> OutboxReceipt:
        # The storage SDK's sync client, on a worker thread: its async client would make aiohttp a runtime
        # dependency of the app.
        return await asyncio.to_thread(self._send, message)

    def _ensure_queue(self) -> None:
        if self._created:
            return
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            self._client.create_queue()
        self._created = True

    def _send(self, message: OutboxMessage) -> OutboxReceipt:
        receipt: OutboxReceipt = {
            "message_id": message.id,
            "to": message.to,
            "transport": "queue",
            "location": self.queue_name,
            "duplicate": False,
        }
        state, _receipt = self._markers.claim(message.id)
        if state == "sent":
            return {**receipt, "duplicate": True}
        if state == "pending":
            logger.warning("outbox: message %s was claimed before but not marked sent; sending it again", message.id)
        self._ensure_queue()
        self._client.send_message(json.dumps(message.to_dict(), ensure_ascii=False))
        self._markers.mark_sent(message.id, receipt)
        logger.info("outbox: message %s to %s queued on %s", message.id, message.to, self.queue_name)
        return receipt

    def receive_all(self, max_messages: int = 32) -> list[OutboxMessage]:
        """Read (and delete) up to `max_messages` messages from the queue; for tests and tools."""
        found: list[OutboxMessage] = []
        for item in self._client.receive_messages(max_messages=max_messages, visibility_timeout=30):
            data = json.loads(item.content)
            found.append(OutboxMessage(id=data["id"], to=data["to"], text=data["text"], created_at=data["created_at"]))
            self._client.delete_message(item)
        return found


_QUEUE_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")


def outbox_from_env(env: Mapping[str, str], *, cwd: str | os.PathLike[str] | None = None) -> Outbox:
    """The outbox the settings select.

    Args:
        env: Settings (normally `os.environ`): OUTBOX_CONNECTION, OUTBOX_QUEUE, OUTBOX_MARKER_TABLE, OUTBOX_DIR.
        cwd: Base of the default OUTBOX_DIR; the current directory when None.

    Raises:
        OutboxConfigError: A malformed queue or table name.
    """
    connection = env.get("OUTBOX_CONNECTION", "").strip()
    if connection:
        queue = env.get("OUTBOX_QUEUE", "").strip() or DEFAULT_QUEUE
        if not _QUEUE_NAME.match(queue):
            raise OutboxConfigError(
                f"OUTBOX_QUEUE={queue!r} is not a valid queue name (3-63 lowercase letters, digits and single hyphens)",
                setting="OUTBOX_QUEUE",
            )
        table = env.get("OUTBOX_MARKER_TABLE", "").strip() or DEFAULT_MARKER_TABLE
        if not _TABLE_NAME.match(table):
            raise OutboxConfigError(
                f"OUTBOX_MARKER_TABLE={table!r} is not a valid table name (3-63 letters and digits, starting "
                "with a letter)",
                setting="OUTBOX_MARKER_TABLE",
            )
        try:
            return QueueOutbox(connection, queue, markers=TableSendMarkers(connection, table))
        except ValueError as exc:
            raise OutboxConfigError(
                f"OUTBOX_CONNECTION is not a usable connection string: {exc}", setting="OUTBOX_CONNECTION"
            ) from None
    folder = env.get("OUTBOX_DIR", "").strip()
    base = Path(cwd) if cwd is not None else Path.cwd()
    return LocalOutbox(Path(folder) if folder and Path(folder).is_absolute() else base / (folder or ".funchost/outbox"))
