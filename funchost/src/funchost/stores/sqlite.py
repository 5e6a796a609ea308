"""The embedded task hub: one SQLite file, written in WAL mode, one transaction per checkpoint.

WAL with ``synchronous=NORMAL`` keeps every committed transaction across a killed process
(only a power loss can drop the last few), which is the crash-safety this host promises.
A second host on the same file is refused through an exclusive ``flock`` on a lock file
beside it; the kernel releases that lock when the owning process dies, even by SIGKILL.

Attempts (the poison limit's count, ``Store.record_attempts``): ``messages.attempts`` and
``activities.dequeue_count`` count the attempts at a message or work item that started and did not finish.
Everything in the file when it is opened, or with an attempt recorded, is ``redelivered``: a previous host
may have died processing it, so the engine records an attempt before it runs user code for it. A message
or work item created since needs no write: if this host dies processing it, the next one opens with it.
Schema 3 added ``messages.attempts``; a schema 2 file is migrated when it is opened.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from funchost.errors import StoreError, TaskHubLockedError
from funchost.stores.base import (
    TERMINAL_STATUSES,
    ActivityTask,
    Checkpoint,
    EntityRecord,
    InstanceQuery,
    InstanceRecord,
    Json,
    Message,
    WorkListener,
)

SCHEMA_VERSION = "3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY, name TEXT NOT NULL, execution_id TEXT NOT NULL, status TEXT NOT NULL,
    input TEXT, output TEXT, custom_status TEXT, created_time REAL NOT NULL, last_updated_time REAL NOT NULL,
    completed_time REAL, parent TEXT, engine TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS instances_by_created ON instances (created_time, instance_id);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (instance_id, seq));
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT,
    event TEXT NOT NULL, visible_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS messages_by_instance ON messages (instance_id, id);
CREATE TABLE IF NOT EXISTS activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL, name TEXT NOT NULL, input TEXT, dequeue_count INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS entities (
    entity_id TEXT PRIMARY KEY, name TEXT NOT NULL, key TEXT NOT NULL, state TEXT, last_modified REAL NOT NULL,
    recent TEXT NOT NULL DEFAULT '[]');
"""


def _encode_token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


_BAD_TOKEN = "continuation token is not one this task hub issued"


def _decode_token(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, RecursionError) as err:  # binascii, Unicode and JSON errors are ValueErrors
        raise ValueError(_BAD_TOKEN) from err


def _decode_instance_token(token: str) -> tuple[float, str]:
    """The (created time, instance id) an instance query's token stands for; ValueError for any other value."""
    value = _decode_token(token)
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (int, float))
            and not isinstance(value[0], bool) and isinstance(value[1], str)):
        return float(value[0]), value[1]
    raise ValueError(_BAD_TOKEN)


def _decode_entity_token(token: str) -> str:
    """The entity id an entity listing's token stands for; ValueError for any other value."""
    value = _decode_token(token)
    if isinstance(value, str):
        return value
    raise ValueError(_BAD_TOKEN)


def _instance_from_row(row: sqlite3.Row) -> InstanceRecord:
    return InstanceRecord(
        instance_id=row["instance_id"], name=row["name"], execution_id=row["execution_id"], status=row["status"],
        input=row["input"], output=row["output"], custom_status=row["custom_status"],
        created_time=row["created_time"], last_updated_time=row["last_updated_time"],
        completed_time=row["completed_time"], parent=json.loads(row["parent"]) if row["parent"] else None,
        engine=json.loads(row["engine"]),
    )


class SqliteStore:
    """A task hub in one SQLite file (or in memory, for ``--store memory``)."""

    def __init__(self, path: Path | None, hub_name: str) -> None:
        self.path = path
        self.hub_name = hub_name
        self.location = str(path) if path else ":memory:"
        self._db: sqlite3.Connection | None = None
        self._lock_file: IO[str] | None = None
        self._listener: WorkListener | None = None
        self._timers: dict[tuple[str, float], asyncio.TimerHandle] = {}
        # Rows up to these ids were in the file when it was opened: a previous host may have attempted them.
        self._last_message_at_open = 0
        self._last_activity_at_open = 0

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self, listener: WorkListener) -> None:
        """Open the file, then announce everything the previous host left in flight."""
        self._open_file()
        self._listener = listener
        self._last_message_at_open = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0]
        self._last_activity_at_open = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM activities").fetchone()[0]
        rows = self.db.execute("SELECT DISTINCT instance_id, visible_at FROM messages").fetchall()
        for instance_id, visible_at in rows:
            self._announce_message(instance_id, visible_at)
        # Reading a work item is no attempt at it: its count only grows when the engine starts it.
        for r in self.db.execute("SELECT * FROM activities ORDER BY id").fetchall():
            listener.activity_ready(ActivityTask(r["instance_id"], r["execution_id"], r["task_id"], r["name"],
                                                 r["input"], r["id"], dequeue_count=2, attempts=r["dequeue_count"],
                                                 redelivered=True))

    def _announce_message(self, instance_id: str, visible_at: float) -> None:
        assert self._listener is not None
        delay = visible_at - time.time()
        if delay <= 0:
            self._listener.instance_ready(instance_id)
            return
        key = (instance_id, visible_at)
        if key in self._timers:
            return
        listener = self._listener

        def fire() -> None:
            self._timers.pop(key, None)
            listener.instance_ready(instance_id)

        # A few ms late rather than early: the message is only visible from its time on.
        self._timers[key] = asyncio.get_running_loop().call_later(delay + 0.002, fire)

    def _open_file(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._take_lock(Path(f"{self.path}.lock"))
        try:
            db = sqlite3.connect(self.location, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            self._release_lock()
            raise StoreError(f"Cannot open the task hub at {self.location}: {err}") from err
        self._db = db
        self._check_hub(db)

    def _take_lock(self, lock_path: Path) -> None:
        handle = open(lock_path, "a+")  # noqa: SIM115 - held for the life of the store
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            handle.close()
            raise TaskHubLockedError(str(self.path)) from err
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _check_hub(self, db: sqlite3.Connection) -> None:
        rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if not rows:
            db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                           [("schema", SCHEMA_VERSION), ("hub", self.hub_name), ("format", "funchost-sqlite")])
            return
        if rows.get("format") != "funchost-sqlite":
            raise StoreError(f"{self.location} is not a funchost task hub; choose another --store path")
        if rows.get("schema") == "2":
            self._migrate_from_2(db)
            return
        if rows.get("schema") != SCHEMA_VERSION:
            raise StoreError(f"{self.location} was written by a funchost with task hub schema {rows.get('schema')}, "
                             f"this one uses schema {SCHEMA_VERSION}: finish its instances with the older "
                             "funchost, or delete the file (and its -wal/-shm files) to start afresh")

    @staticmethod
    def _migrate_from_2(db: sqlite3.Connection) -> None:
        """Schema 2 -> 3: messages get their attempt count. Schema 2 raised ``activities.dequeue_count`` at
        every open, reads included, so those counts are deliveries, not failures: they start over at zero."""
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
            db.execute("UPDATE activities SET dequeue_count = 0")
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (SCHEMA_VERSION,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._listener = None
        if self._db is not None:
            self._db.close()
            self._db = None
        self._release_lock()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("The task hub is not open")
        return self._db

    # --- reads --------------------------------------------------------------------------------

    async def load_instance(self, instance_id: str) -> InstanceRecord | None:
        row = self.db.execute("SELECT * FROM instances WHERE instance_id = ?", (instance_id,)).fetchone()
        return _instance_from_row(row) if row else None

    async def load_history(self, instance_id: str) -> list[Json]:
        rows = self.db.execute("SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,))
        return [json.loads(r[0]) for r in rows]

    async def visible_messages(self, instance_id: str, now: float, limit: int | None = None) -> list[Message]:
        sql = "SELECT * FROM messages WHERE instance_id = ? AND visible_at <= ? ORDER BY id"
        args: tuple[Any, ...] = (instance_id, now)
        if limit is not None:
            sql += " LIMIT ?"
            args += (limit,)
        return [Message(r["instance_id"], json.loads(r["event"]), r["execution_id"], r["visible_at"], r["id"],
                        attempts=r["attempts"],
                        redelivered=r["attempts"] > 0 or r["id"] <= self._last_message_at_open)
                for r in self.db.execute(sql, args)]

    async def load_entity(self, entity_id: str) -> EntityRecord | None:
        row = self.db.execute("SELECT * FROM entities WHERE entity_id = ?", (entity_id,)).fetchone()
        if row is None:
            return None
        return EntityRecord(row["entity_id"], row["state"], row["last_modified"], json.loads(row["recent"]))

    async def list_entities(self, name: str | None, top: int,
                      continuation: str | None) -> tuple[list[EntityRecord], str | None]:
        after = _decode_entity_token(continuation) if continuation else ""
        sql, args = "SELECT * FROM entities WHERE entity_id > ?", [after]
        if name is not None:
            sql += " AND name = ?"
            args.append(name.lower())
        rows = self.db.execute(sql + " ORDER BY entity_id LIMIT ?", (*args, top + 1)).fetchall()
        records = [EntityRecord(r["entity_id"], r["state"], r["last_modified"], json.loads(r["recent"]))
                   for r in rows[:top]]
        token = _encode_token(records[-1].entity_id) if len(rows) > top else None
        return records, token

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRecord], str | None]:
        clauses: list[str] = []
        args: list[Any] = []
        if query.created_from is not None:
            clauses.append("created_time >= ?")
            args.append(query.created_from)
        if query.created_to is not None:
            clauses.append("created_time <= ?")
            args.append(query.created_to)
        if query.statuses:
            clauses.append(f"status IN ({','.join('?' * len(query.statuses))})")
            args.extend(query.statuses)
        if query.prefix:
            clauses.append("substr(instance_id, 1, ?) = ?")
            args.extend([len(query.prefix), query.prefix])
        if query.continuation:
            created, iid = _decode_instance_token(query.continuation)
            clauses.append("(created_time > ? OR (created_time = ? AND instance_id > ?))")
            args.extend([created, created, iid])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.db.execute(
            f"SELECT * FROM instances {where} ORDER BY created_time, instance_id LIMIT ?", (*args, query.top + 1)
        ).fetchall()
        records = [_instance_from_row(r) for r in rows[: query.top]]
        token = None
        if len(rows) > query.top:
            token = _encode_token([records[-1].created_time, records[-1].instance_id])
        return records, token

    # --- writes -------------------------------------------------------------------------------

    def _insert_messages(self, messages: list[Message]) -> None:
        for message in messages:
            cur = self.db.execute(
                "INSERT INTO messages (instance_id, execution_id, event, visible_at) VALUES (?, ?, ?, ?)",
                (message.instance_id, message.execution_id, json.dumps(message.event), message.visible_at))
            message.id = cur.lastrowid

    def _upsert_instance(self, rec: InstanceRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO instances (instance_id, name, execution_id, status, input, output, custom_status,"
            " created_time, last_updated_time, completed_time, parent, engine) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (rec.instance_id, rec.name, rec.execution_id, rec.status, rec.input, rec.output, rec.custom_status,
             rec.created_time, rec.last_updated_time, rec.completed_time,
             json.dumps(rec.parent) if rec.parent else None, json.dumps(rec.engine)))

    async def commit(self, checkpoint: Checkpoint) -> None:
        self._write(checkpoint)
        if self._listener is not None:
            for message in checkpoint.messages:
                self._announce_message(message.instance_id, message.visible_at)
            for task in checkpoint.activities:
                task.dequeue_count = 1
                self._listener.activity_ready(task)

    def _write(self, checkpoint: Checkpoint) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            inst = checkpoint.instance
            if inst is not None:
                if checkpoint.replace_history:
                    db.execute("DELETE FROM history WHERE instance_id = ?", (inst.instance_id,))
                if checkpoint.new_history:
                    row = db.execute("SELECT COALESCE(MAX(seq), -1) FROM history WHERE instance_id = ?",
                                     (inst.instance_id,)).fetchone()
                    first = row[0] + 1
                    db.executemany("INSERT INTO history (instance_id, seq, event) VALUES (?, ?, ?)",
                                   [(inst.instance_id, first + i, json.dumps(e))
                                    for i, e in enumerate(checkpoint.new_history)])
                self._upsert_instance(inst)
            for child in checkpoint.new_instances:
                db.execute("DELETE FROM history WHERE instance_id = ?", (child.instance_id,))
                self._upsert_instance(child)
            self._insert_messages(checkpoint.messages)
            for task in checkpoint.activities:
                cur = db.execute(
                    "INSERT INTO activities (instance_id, execution_id, task_id, name, input) VALUES (?, ?, ?, ?, ?)",
                    (task.instance_id, task.execution_id, task.task_id, task.name, task.input))
                task.id = cur.lastrowid
            if checkpoint.consumed:
                db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in checkpoint.consumed])
            if checkpoint.completed_activity is not None:
                db.execute("DELETE FROM activities WHERE id = ?", (checkpoint.completed_activity,))
            if checkpoint.entity is not None:
                ent = checkpoint.entity
                _, name, key = ent.entity_id.split("@", 2)
                db.execute("INSERT OR REPLACE INTO entities (entity_id, name, key, state, last_modified, recent)"
                           " VALUES (?, ?, ?, ?, ?, ?)",
                           (ent.entity_id, name, key, ent.state, ent.last_modified, json.dumps(ent.recent)))
            if checkpoint.delete_entity is not None:
                db.execute("DELETE FROM entities WHERE entity_id = ?", (checkpoint.delete_entity,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def abandon(self, message_ids: list[Any]) -> None:
        """Nothing to hand back: a message stays in its table until a checkpoint consumes it."""

    async def record_attempts(self, items: Sequence[Message | ActivityTask]) -> list[int]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                table, column = ("messages", "attempts") if isinstance(item, Message) else ("activities",
                                                                                             "dequeue_count")
                db.execute(f"UPDATE {table} SET {column} = {column} + 1 WHERE id = ?", (item.id,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for item in items:
            item.attempts += 1
            item.redelivered = True
        return [item.attempts for item in items]

    async def purge(self, instance_ids: list[str]) -> int:
        """Delete the finished ones of ``instance_ids`` with their history, messages and work items; a live
        instance is left whole (only finished instances are purged, see ``Engine.purge``)."""
        db = self.db
        finished = ", ".join("?" * len(TERMINAL_STATUSES))
        db.execute("BEGIN IMMEDIATE")
        try:
            deleted = 0
            for iid in instance_ids:
                gone = db.execute(f"DELETE FROM instances WHERE instance_id = ? AND status IN ({finished})",
                                  (iid, *sorted(TERMINAL_STATUSES))).rowcount
                if not gone:
                    continue
                deleted += gone
                db.execute("DELETE FROM history WHERE instance_id = ?", (iid,))
                db.execute("DELETE FROM messages WHERE instance_id = ?", (iid,))
                db.execute("DELETE FROM activities WHERE instance_id = ?", (iid,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return deleted
