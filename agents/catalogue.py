"""The agents the app ships: what each is for, its instructions, model settings, tools and limits.

An `AgentSpec` is data, not behaviour: the run loop (`agents.loop`, and the run orchestration built on the
same steps) does the work. Specs are frozen so that an orchestration replaying a run always sees the agent
as it was defined; a per-run override (a request's `max_turns`) makes a new spec with `with_limits`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.errors import UnknownAgentError


@dataclass(frozen=True)
class ModelSettings:
    """How an agent calls its model.

    Attributes:
        model: A provider-agnostic model name; None uses the configured one (OPENAI_MODEL, the Azure
            deployment, or the offline model).
        temperature: Sampling temperature; None for the provider's default.
        max_tokens: Upper bound of completion tokens per call; None for the provider's default.
    """

    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class AgentLimits:
    """Bounds of one run.

    Attributes:
        max_turns: Model calls a run may make; a run that has not answered by then fails.
        token_budget: Tokens (prompt + completion, summed over the run's model calls) a run may use; a run
            that exceeds it ends as `budget_exceeded`.
        step_timeout_s: Seconds one model or tool call may take.
    """

    max_turns: int = 8
    token_budget: int = 20_000
    step_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {self.max_turns}")
        if self.token_budget < 1:
            raise ValueError(f"token_budget must be at least 1, got {self.token_budget}")
        if self.step_timeout_s <= 0:
            raise ValueError(f"step_timeout_s must be positive, got {self.step_timeout_s}")


@dataclass(frozen=True)
class AgentSpec:
    """An agent: a name, what it is for, its instructions, model settings, tools and limits.

    Attributes:
        name: Catalogue name (used in URLs: `/api/agents/{name}/runs`).
        description: One line for people choosing an agent.
        instructions: The system message of every model call.
        model: Model settings.
        tools: Names of the registry tools the agent may call.
        limits: Bounds of one run.
        approval_required: Tools whose calls need a human's approval for this agent, in addition to the
            tools that always need it (`requires_approval` in the registry).
    """

    name: str
    description: str
    instructions: str
    model: ModelSettings = field(default_factory=ModelSettings)
    tools: tuple[str, ...] = ()
    limits: AgentLimits = field(default_factory=AgentLimits)
    approval_required: tuple[str, ...] = ()

    def with_limits(self, **changes: Any) -> AgentSpec:
        """This spec with some limits changed, e.g. `spec.with_limits(max_turns=3)`."""
        return dataclasses.replace(self, limits=dataclasses.replace(self.limits, **changes))

    def to_public_dict(self) -> dict[str, Any]:
        """The agent as `GET /api/agents` shows it."""
        return {
            "name": self.name,
            "description": self.description,
            "instructions": self.instructions,
            "model": dataclasses.asdict(self.model),
            "tools": list(self.tools),
            "approval_required": list(self.approval_required),
            "limits": dataclasses.asdict(self.limits),
        }


ASSISTANT = AgentSpec(
    name="assistant",
    description="A general assistant: arithmetic, the current time, the knowledge base, and messages (with approval).",
    instructions=(
        "You are a helpful assistant for a team that builds AI agents on Azure Durable Functions. "
        "Use the calculator for any arithmetic instead of computing in your head. "
        "Use search_knowledge for questions about the team's knowledge base and cite the document ids you use. "
        "Use get_time when asked about the current date or time. "
        "Use send_message only when the user asks you to send a message; a human approves it first, "
        "and if it is rejected, say so plainly. Answer briefly."
    ),
    model=ModelSettings(temperature=0.2),
    tools=("calculator", "get_time", "send_message", "search_knowledge"),
)

RESEARCHER = AgentSpec(
    name="researcher",
    description="Answers questions from the knowledge base shipped with the app, citing its sources.",
    instructions=(
        "You are a researcher. Answer only from the knowledge base: search it with search_knowledge, "
        "search again with other words if the first results miss, and cite every document you rely on "
        "by its id in square brackets. If the knowledge base does not cover the question, say so. "
        "Use the calculator for any figures."
    ),
    model=ModelSettings(temperature=0.0),
    tools=("search_knowledge", "calculator"),
    limits=AgentLimits(max_turns=6),
)

WRITER = AgentSpec(
    name="writer",
    description="Drafts and revises short texts (summaries, notes, announcements), checking facts in the knowledge "
    "base.",
    instructions=(
        "You are a writer. Produce clear, short texts in plain language: a title line, then a few sentences "
        "or bullet points. When asked to revise, apply every point of the critique. Check facts about the "
        "team's systems with search_knowledge and keep the document ids you used as citations."
    ),
    model=ModelSettings(temperature=0.7),
    tools=("search_knowledge",),
    limits=AgentLimits(max_turns=4),
)

PLANNER = AgentSpec(
    name="planner",
    description="Splits a research topic into subtopics the knowledge base covers (the research workflow's first "
    "step).",
    instructions=(
        "You are a research planner. Split the topic you are given into distinct subtopics, as many as asked for "
        "at most, each a few words. Search the knowledge base with search_knowledge first and prefer subtopics it "
        "covers. Answer with a JSON array of strings and nothing else."
    ),
    model=ModelSettings(temperature=0.0),
    tools=("search_knowledge",),
    limits=AgentLimits(max_turns=3),
)

REVIEWER = AgentSpec(
    name="reviewer",
    description="Critiques a draft against its brief and approves it when it is good enough (the review workflow).",
    instructions=(
        "You are a reviewer. Compare the draft with the brief point by point. If the draft covers every point "
        "of the brief accurately and clearly, start your answer with APPROVED and say why in one sentence. "
        "Otherwise do not write APPROVED anywhere at the start: list what is missing or wrong, briefly and "
        "concretely, so the writer can revise it."
    ),
    model=ModelSettings(temperature=0.0),
    limits=AgentLimits(max_turns=2),
)

CATALOGUE: Mapping[str, AgentSpec] = {spec.name: spec for spec in (ASSISTANT, RESEARCHER, WRITER, PLANNER, REVIEWER)}


def list_agents() -> list[AgentSpec]:
    """Every agent of the catalogue, by name."""
    return [CATALOGUE[name] for name in sorted(CATALOGUE)]


def get_agent(name: str) -> AgentSpec:
    """The agent called `name`.

    Raises:
        UnknownAgentError: No agent has that name.
    """
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownAgentError(name, sorted(CATALOGUE)) from None
