"""Agents: definitions, model clients, tools and the plain-Python reference loop (no Durable imports).

The run orchestration (`orchestrators/`) and its activities (`activities/`) are built from the pieces
exported here; `agents.steps` holds the steps both the durable run and `run_agent_loop` are made of.
"""

from __future__ import annotations

from agents.catalogue import AgentLimits, AgentSpec, ModelSettings, get_agent, list_agents
from agents.errors import (
    AgentsError,
    ModelCallError,
    ModelConfigError,
    OutboxConfigError,
    SettingsError,
    ToolArgumentError,
    ToolError,
    ToolNotFoundError,
    UnknownAgentError,
)
from agents.loop import LoopResult, run_agent_loop
from agents.messages import ChatMessage, ModelRequest, ModelResponse, ToolCall, Usage
from agents.models import ModelClient, OfflineModel, model_client_from_env
from agents.steps import ToolOutcome
from agents.tools import ToolRegistry, builtin_registry, services_from_env

__all__ = [
    "AgentLimits",
    "AgentSpec",
    "AgentsError",
    "ChatMessage",
    "LoopResult",
    "ModelCallError",
    "ModelClient",
    "ModelConfigError",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "OfflineModel",
    "OutboxConfigError",
    "SettingsError",
    "ToolArgumentError",
    "ToolCall",
    "ToolError",
    "ToolNotFoundError",
    "ToolOutcome",
    "ToolRegistry",
    "Usage",
    "UnknownAgentError",
    "builtin_registry",
    "get_agent",
    "list_agents",
    "model_client_from_env",
    "run_agent_loop",
    "services_from_env",
]
