"""The SQLite task hub's attempt counts (the poison limit's count) and its schema 2 -> 3 migration.

Attempts count processing that started and did not finish, never deliveries: opening the file reads every
pending message and work item and counts nothing; ``record_attempts`` counts, and consuming clears.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from funchost.stores.base import ActivityTask, Checkpoint, Message
from funchost.stores.sqlite import SCHEMA_VERSION, SqliteStore

# The schema 2 tables as funchost wrote them (messages without an attempts column).
SCHEMA_2 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE instances (
    instance_id TEXT PRIMARY KEY, name TEXT NOT NULL, execution_id TEXT NOT NULL, status TEXT NOT NULL,
    input TEXT, output TEXT, custom_status TEXT, created_time REAL NOT NULL, last_updated_time REAL NOT NULL,
    completed_time REAL, parent TEXT, engine TEXT NOT NULL);
CREATE TABLE history (
    instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (instance_id, seq));
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT,
    event TEXT NOT NULL, visible_at REAL NOT NULL);
CREATE TABLE activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL, name TEXT NOT NULL, input TEXT, dequeue_count INTEGER NOT NULL DEFAULT 0);
CREATE TABLE entities (
    entity_id TEXT PRIMARY KEY, name TEXT NOT NULL, key TEXT NOT NULL, state TEXT, last_modified REAL NOT NULL,
    recent TEXT NOT NULL DEFAULT '[]');
INSERT INTO meta VALUES ('schema', '2'), ('hub', 'h'), ('format', 'funchost-sqlite');
INSERT INTO messages (instance_id, execution_id, event, visible_at) VALUES ('i1', 'e1', '{"EventType": 0}', 0);
INSERT INTO activities (instance_id, execution_id, task_id, name, input, dequeue_count)
    VALUES ('i1', 'e1', 0, 'work', NULL, 7);
"""


class Listener:
    """What the engine is told at open and after commits."""

    def __init__(self) -> None:
        self.ready: list[str] = []
        self.tasks: list[ActivityTask] = []

    def instance_ready(self, instance_id: str) -> None:
        self.ready.append(instance_id)

    def activity_ready(self, task: ActivityTask) -> None:
        self.tasks.append(task)


async def opened(path: Path) -> tuple[SqliteStore, Listener]:
    store, listener = SqliteStore(path, "h"), Listener()
    await store.open(listener)
    return store, listener


def test_a_schema_2_file_is_migrated_and_its_delivery_counts_start_over(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_2)

    async def scenario() -> None:
        store, listener = await opened(path)
        try:
            [message] = await store.visible_messages("i1", 1.0)
            [task] = listener.tasks
            # Schema 2 raised the work item's count at every open: deliveries, not failed attempts.
            assert (message.attempts, message.redelivered) == (0, True)
            assert (task.name, task.attempts, task.redelivered) == ("work", 0, True)
            assert await store.record_attempts([message, task]) == [1, 1]
        finally:
            await store.close()
        store, listener = await opened(path)
        try:
            [message] = await store.visible_messages("i1", 1.0)
            assert (message.attempts, listener.tasks[0].attempts) == (1, 1)
        finally:
            await store.close()

    asyncio.run(scenario())
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (SCHEMA_VERSION,)
        assert SCHEMA_VERSION == "3"


def test_attempts_count_what_was_started_not_opens_and_are_cleared_when_consumed(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"

    async def scenario() -> None:
        store, listener = await opened(path)
        try:
            task = ActivityTask("i1", "e1", 0, "work", None)
            await store.commit(Checkpoint(messages=[Message("i1", {"EventType": 0}, "e1")], activities=[task]))
            [message] = await store.visible_messages("i1", 1.0)
            # Created in this host's life: no attempt can have been made at it before.
            assert (message.attempts, message.redelivered) == (0, False)
            assert (listener.tasks[-1].attempts, listener.tasks[-1].redelivered) == (0, False)
            assert await store.record_attempts([message]) == [1]
            [again] = await store.visible_messages("i1", 1.0)
            assert (again.attempts, again.redelivered) == (1, True)
        finally:
            await store.close()
        for _ in range(3):  # opening reads everything pending, and counts none of it
            store, listener = await opened(path)
            await store.close()
        store, listener = await opened(path)
        try:
            [message] = await store.visible_messages("i1", 1.0)
            [task] = listener.tasks
            assert (message.attempts, message.redelivered) == (1, True)
            assert (task.attempts, task.redelivered) == (0, True)
            assert await store.record_attempts([task, message]) == [1, 2]
            await store.commit(Checkpoint(consumed=[message.id], completed_activity=task.id))
            assert await store.visible_messages("i1", 1.0) == []
            second = Message("i1", {"EventType": 0}, "e1")
            await store.commit(Checkpoint(messages=[second]))
            [fresh] = await store.visible_messages("i1", 1.0)
            assert (fresh.attempts, fresh.redelivered) == (0, False)
        finally:
            await store.close()

    asyncio.run(scenario())
