"""Fixtures of the agents unit tests: a fixed clock, a temporary outbox, tool registries, the protocol server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agents.knowledge import knowledge_from_env
from agents.tools.builtin import builtin_registry
from agents.tools.context import ToolServices
from agents.tools.outbox import LocalOutbox
from agents.tools.registry import ToolRegistry
from tests.support.chat_completions_server import ChatCompletionsServer

FIXED_NOW = datetime(2025, 3, 14, 15, 9, 26, tzinfo=timezone.utc)


def fixed_clock() -> datetime:
    return FIXED_NOW


@pytest.fixture
def outbox(tmp_path: Path) -> LocalOutbox:
    return LocalOutbox(tmp_path / "outbox")


@pytest.fixture
def services(outbox: LocalOutbox) -> ToolServices:
    return ToolServices(clock=fixed_clock, outbox=outbox, knowledge=knowledge_from_env({}))


@pytest.fixture
def registry(services: ToolServices) -> ToolRegistry:
    return builtin_registry(services)


@pytest.fixture
def chat_server() -> Iterator[ChatCompletionsServer]:
    with ChatCompletionsServer(fallback="error", api_key="test-key") as server:
        yield server
