"""The built-in tools against real services: a fixed clock, the shipped knowledge base, a local outbox folder."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from agents.errors import OutboxConfigError, ToolError
from agents.tools.builtin import builtin_registry, services_from_env
from agents.tools.context import ToolServices
from agents.tools.outbox import LocalOutbox, OutboxMessage, QueueOutbox, outbox_from_env, storage_key
from agents.tools.registry import ToolRegistry


def run(
    registry: ToolRegistry, name: str, arguments: dict[str, object], call_id: str = "call-1", key: str | None = None
) -> Any:
    return asyncio.run(registry.run(name, arguments, call_id, idempotency_key=key))


def test_calculator_returns_the_expression_and_result(registry: ToolRegistry) -> None:
    assert run(registry, "calculator", {"expression": "12*(3+4)"}) == {"expression": "12*(3+4)", "result": 84}


def test_get_time_uses_the_injected_clock_and_time_zones(registry: ToolRegistry) -> None:
    assert run(registry, "get_time", {}) == {"timezone": "UTC", "iso": "2025-03-14T15:09:26+00:00", "weekday": "Friday"}
    assert run(registry, "get_time", {"timezone": "Asia/Tokyo"})["iso"] == "2025-03-15T00:09:26+09:00"
    with pytest.raises(ToolError, match="unknown time zone 'Mars/Olympus'"):
        run(registry, "get_time", {"timezone": "Mars/Olympus"})


def test_search_knowledge_returns_ranked_hits(registry: ToolRegistry) -> None:
    result = run(registry, "search_knowledge", {"query": "durable timers", "top_k": 2})
    assert isinstance(result, dict)
    assert result["query"] == "durable timers"
    assert [hit["id"] for hit in result["results"]][0] == "durable-timers"
    assert len(result["results"]) == 2
    with pytest.raises(ToolError, match="top_k must be between 1 and 10"):
        run(registry, "search_knowledge", {"query": "x", "top_k": 50})
    with pytest.raises(ToolError, match="the query is empty"):
        run(registry, "search_knowledge", {"query": "  "})


def test_send_message_writes_one_file_per_idempotency_key(registry: ToolRegistry, outbox: LocalOutbox) -> None:
    first = run(registry, "send_message", {"to": "Bob", "text": "build is green"}, key="run-1:call_a")
    again = run(registry, "send_message", {"to": "Bob", "text": "build is green"}, key="run-1:call_a")
    other = run(registry, "send_message", {"to": "Bob", "text": "build is green"}, key="run-2:call_a")

    assert first == {"message_id": "run-1:call_a", "to": "Bob", "status": "sent", "transport": "local"}
    assert again == {**first, "status": "already_sent"}
    assert other == {"message_id": "run-2:call_a", "to": "Bob", "status": "sent", "transport": "local"}
    files = sorted(p.name for p in outbox.folder.iterdir())
    assert files == sorted([f"{storage_key('run-1:call_a')}.json", f"{storage_key('run-2:call_a')}.json"])
    assert [m.to_dict() for m in outbox.messages()] == [
        {"id": "run-1:call_a", "to": "Bob", "text": "build is green", "created_at": "2025-03-14T15:09:26+00:00"},
        {"id": "run-2:call_a", "to": "Bob", "text": "build is green", "created_at": "2025-03-14T15:09:26+00:00"},
    ]


def test_concurrent_sends_of_one_key_write_once(outbox: LocalOutbox) -> None:
    message = OutboxMessage(id="same", to="ops", text="hello", created_at="2025-01-01T00:00:00+00:00")

    async def race() -> list[bool]:
        receipts = await asyncio.gather(*(asyncio.to_thread(outbox._send, message) for _ in range(8)))
        return [r["duplicate"] for r in receipts]

    duplicates = asyncio.run(race())
    assert duplicates.count(False) == 1
    assert [p.name for p in outbox.folder.iterdir()] == ["same.json"]  # no temporary files left behind
    assert json.loads((outbox.folder / "same.json").read_text(encoding="utf-8"))["text"] == "hello"


def test_send_message_refuses_empty_or_long_text_and_needs_an_outbox(registry: ToolRegistry) -> None:
    with pytest.raises(ToolError, match="the message text is empty"):
        run(registry, "send_message", {"to": "Bob", "text": " "})
    with pytest.raises(ToolError, match="the limit is 4000"):
        run(registry, "send_message", {"to": "Bob", "text": "x" * 4001})
    bare = builtin_registry(ToolServices())
    with pytest.raises(ToolError, match="no outbox is configured"):
        run(bare, "send_message", {"to": "Bob", "text": "hi"})
    with pytest.raises(ToolError, match="no knowledge base is configured"):
        run(bare, "search_knowledge", {"query": "timers"})


def test_only_send_message_requires_approval() -> None:
    registry = builtin_registry()
    assert [n for n in registry.names() if registry.requires_approval(n)] == ["send_message"]


def test_storage_keys_are_safe_and_distinct() -> None:
    assert storage_key("call_1") == "call_1"
    assert storage_key("run/1:call_1").startswith("h-") and len(storage_key("run/1:call_1")) == 66
    assert storage_key("run/1:call_1") != storage_key("run/1:call_2")
    assert storage_key("h-abc") != "h-abc"  # a safe id shaped like a hash is hashed too


def test_outbox_settings(tmp_path: Path) -> None:
    default = outbox_from_env({}, cwd=tmp_path)
    assert isinstance(default, LocalOutbox) and default.folder == tmp_path / ".funchost" / "outbox"
    relative = outbox_from_env({"OUTBOX_DIR": "mail"}, cwd=tmp_path)
    assert isinstance(relative, LocalOutbox) and relative.folder == tmp_path / "mail"
    absolute = outbox_from_env({"OUTBOX_DIR": str(tmp_path / "abs")}, cwd="/elsewhere")
    assert isinstance(absolute, LocalOutbox) and absolute.folder == tmp_path / "abs"

    queue = outbox_from_env({"OUTBOX_CONNECTION": "UseDevelopmentStorage=true", "OUTBOX_QUEUE": "team-mail"})
    assert isinstance(queue, QueueOutbox) and queue.queue_name == "team-mail"
    with pytest.raises(OutboxConfigError, match="OUTBOX_QUEUE='Bad_Queue' is not a valid queue name") as caught:
        outbox_from_env({"OUTBOX_CONNECTION": "UseDevelopmentStorage=true", "OUTBOX_QUEUE": "Bad_Queue"})
    assert caught.value.setting == "OUTBOX_QUEUE"
    with pytest.raises(OutboxConfigError, match="OUTBOX_MARKER_TABLE"):
        outbox_from_env({"OUTBOX_CONNECTION": "UseDevelopmentStorage=true", "OUTBOX_MARKER_TABLE": "no-dashes"})
    with pytest.raises(OutboxConfigError, match="OUTBOX_CONNECTION is not a usable connection string"):
        outbox_from_env({"OUTBOX_CONNECTION": "nonsense"})


def test_services_from_env_bind_the_outbox_and_knowledge(tmp_path: Path) -> None:
    services = services_from_env({"OUTBOX_DIR": str(tmp_path)})
    assert isinstance(services.outbox, LocalOutbox) and services.knowledge is not None
