"""The queue outbox against Azurite: messages land on the queue once per key, readable by a queue trigger.

Runs on the test run's shared Azurite (the `azurite` fixture of tests/conftest.py), which skips these tests
with the reason where Azurite cannot run, or fails them under CI=true.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path

import pytest
from funchost.testing.azurite import Azurite

from agents.tools.outbox import LocalSendMarkers, OutboxMessage, QueueOutbox, TableSendMarkers

pytestmark = pytest.mark.azurite


@pytest.fixture
def connection(azurite: Azurite) -> str:
    """The connection string of the shared Azurite (on free ports, not the emulator's default ones)."""
    return azurite.connection_string


def a_message(key: str) -> OutboxMessage:
    return OutboxMessage(id=key, to="ops", text="deploy finished", created_at="2025-03-14T15:09:26+00:00")


def test_a_key_is_queued_once_with_table_markers(connection: str) -> None:
    queue = f"outbox-test-{uuid.uuid4().hex[:12]}"
    outbox = QueueOutbox(connection, queue, markers=TableSendMarkers(connection, f"markers{uuid.uuid4().hex[:12]}"))
    first = asyncio.run(outbox.send(a_message("run-1:call_a")))
    again = asyncio.run(outbox.send(a_message("run-1:call_a")))
    other = asyncio.run(outbox.send(a_message("run-2:call_a")))

    assert (first["duplicate"], again["duplicate"], other["duplicate"]) == (False, True, False)
    assert first["transport"] == "queue" and first["location"] == queue
    received = outbox.receive_all()
    assert sorted(m.id for m in received) == ["run-1:call_a", "run-2:call_a"]
    assert received[0].text == "deploy finished"


def test_messages_are_base64_json_as_a_queue_trigger_expects(connection: str, tmp_path: Path) -> None:
    from azure.storage.queue import QueueClient

    queue = f"outbox-test-{uuid.uuid4().hex[:12]}"
    outbox = QueueOutbox(connection, queue, markers=LocalSendMarkers(str(tmp_path)))
    asyncio.run(outbox.send(a_message("k1")))
    raw = QueueClient.from_connection_string(connection, queue)  # no decode policy: the bytes as stored
    stored = next(iter(raw.receive_messages()))
    assert json.loads(base64.b64decode(stored.content)) == a_message("k1").to_dict()


def test_a_pending_marker_from_a_crashed_attempt_is_sent_again(connection: str, tmp_path: Path) -> None:
    markers = LocalSendMarkers(str(tmp_path))
    assert markers.claim("k2") == ("new", None)  # an attempt claimed the key, then died before marking it sent
    queue = f"outbox-test-{uuid.uuid4().hex[:12]}"
    outbox = QueueOutbox(connection, queue, markers=markers)
    receipt = asyncio.run(outbox.send(a_message("k2")))
    assert receipt["duplicate"] is False
    assert markers.claim("k2")[0] == "sent"
    assert [m.id for m in outbox.receive_all()] == ["k2"]
