"""The agent catalogue: the shipped agents, lookups, per-run limits and the public view."""

from __future__ import annotations

import pytest

from agents.catalogue import AgentLimits, get_agent, list_agents
from agents.errors import UnknownAgentError
from agents.tools.builtin import builtin_registry


def test_the_catalogue_ships_its_agents() -> None:
    assert [a.name for a in list_agents()] == ["assistant", "planner", "researcher", "reviewer", "writer"]
    assert set(get_agent("assistant").tools) == {"calculator", "get_time", "send_message", "search_knowledge"}
    assert set(get_agent("researcher").tools) == {"search_knowledge", "calculator"}
    assert set(get_agent("writer").tools) <= {"search_knowledge"}
    assert get_agent("planner").tools == ("search_knowledge",)
    assert get_agent("reviewer").tools == ()


def test_every_agent_names_only_registered_tools() -> None:
    registry = builtin_registry()
    for agent in list_agents():
        assert len(registry.schemas(agent.tools)) == len(agent.tools)


def test_unknown_agent() -> None:
    known = "assistant, planner, researcher, reviewer, writer"
    with pytest.raises(UnknownAgentError, match=f"unknown agent 'pirate'; known agents: {known}"):
        get_agent("pirate")


def test_limits_defaults_overrides_and_bounds() -> None:
    assistant = get_agent("assistant")
    assert assistant.limits == AgentLimits(max_turns=8, token_budget=20_000, step_timeout_s=60.0)
    shorter = assistant.with_limits(max_turns=2)
    assert shorter.limits.max_turns == 2 and assistant.limits.max_turns == 8
    assert shorter.tools == assistant.tools
    with pytest.raises(ValueError, match="max_turns must be at least 1"):
        assistant.with_limits(max_turns=0)
    with pytest.raises(ValueError, match="token_budget"):
        AgentLimits(token_budget=0)


def test_public_view() -> None:
    view = get_agent("researcher").to_public_dict()
    assert view["name"] == "researcher"
    assert view["tools"] == ["search_knowledge", "calculator"]
    assert view["limits"] == {"max_turns": 6, "token_budget": 20_000, "step_timeout_s": 60.0}
    assert view["model"] == {"model": None, "temperature": 0.0, "max_tokens": None}
    assert set(view) == {"name", "description", "instructions", "model", "tools", "approval_required", "limits"}
