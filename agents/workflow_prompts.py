"""What the research and review workflows say to their agents, and how they read the answers.

The prompts are written once here: the workflow orchestrations build them, and the offline model
(`agents.models._offline_workflows`) recognises them by their first line, so the two cannot drift apart.
Any model reads them as plain instructions. Each prompt keeps its parameters on lines of their own
(`Brief: ...`, `Draft:` followed by the draft), which is what the offline rules parse.

The readers are lenient, because a real model does not always answer in the asked form:
`parse_subtopics` takes a JSON array anywhere in the text, else the lines of a list; `is_approved` looks
only at the first word; `cited_ids` collects `[document-id]` markers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agents.messages import ChatMessage

PLAN_LEAD = "Plan the research of:"
REPORT_LEAD = "Write a report on"
DRAFT_LEAD = "Draft a text for this brief."
REVIEW_LEAD = "Review the draft below against the brief."
REVISE_LEAD = "Revise the draft below for the brief"
APPROVED = "APPROVED"
MAX_SUBTOPIC_CHARS = 200

_SPACE = re.compile(r"\s+")
_CITATION = re.compile(r"\[([A-Za-z0-9][A-Za-z0-9_.-]{0,99})\]")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return _SPACE.sub(" ", text).strip()


# --- research -----------------------------------------------------------------------------------


def plan_prompt(topic: str, max_subtopics: int) -> str:
    """The planner's input: split ``topic`` into at most ``max_subtopics`` subtopics."""
    return (
        f"{PLAN_LEAD} {one_line(topic)}\n"
        f"Split it into at most {max_subtopics} subtopics the knowledge base covers, each a few words. "
        "Answer with a JSON array of strings and nothing else."
    )


def research_prompt(subtopic: str) -> str:
    """A researcher's input for one subtopic."""
    return f"Research {one_line(subtopic)}\nCite every document you use by its id in square brackets."


def report_prompt(topic: str, notes: Sequence[tuple[str, str | None]]) -> str:
    """The writer's input: a report on ``topic`` from ``(subtopic, findings)`` notes (None: research failed)."""
    lines = [
        f'{REPORT_LEAD} "{one_line(topic)}" from these research notes. Cite the knowledge base documents by their '
        "ids in square brackets, as the notes do. Say which parts could not be researched.",
        "Notes:",
    ]
    for subtopic, findings in notes:
        text = one_line(findings) if findings else "(no findings: the research failed)"
        lines.append(f"- {one_line(subtopic)}: {text}")
    return "\n".join(lines)


def parse_subtopics(text: str, max_subtopics: int) -> list[str]:
    """The subtopics in a planner's answer: the first JSON array of strings in it, else its list lines.

    Blank and repeated items are dropped, each is cut to 200 characters, at most ``max_subtopics`` are kept.
    """
    items: list[str] = []
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        try:
            parsed = json.loads(text[start : end + 1])
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            items = [str(item) for item in parsed if isinstance(item, (str, int, float))]
    if not items:
        items = [_LIST_ITEM.sub("", line) for line in text.splitlines() if _LIST_ITEM.match(line)]
    kept: list[str] = []
    for item in items:
        cleaned = one_line(item).strip("\"'")[:MAX_SUBTOPIC_CHARS].strip()
        if cleaned and cleaned.lower() not in (k.lower() for k in kept):
            kept.append(cleaned)
    return kept[:max_subtopics]


# --- review -------------------------------------------------------------------------------------


def draft_prompt(brief: str) -> str:
    """The writer's input for the first draft."""
    return f"{DRAFT_LEAD}\nBrief: {one_line(brief)}"


def review_prompt(brief: str, draft: str) -> str:
    """The reviewer's input: critique ``draft`` against ``brief``."""
    return (
        f"{REVIEW_LEAD} Start your answer with {APPROVED} if it is good enough; otherwise say what is missing.\n"
        f"Brief: {one_line(brief)}\nDraft:\n{draft.strip()}"
    )


def revise_prompt(brief: str, draft: str, critique: str) -> str:
    """The writer's input for a revision of ``draft`` that applies ``critique``."""
    return (
        f"{REVISE_LEAD}, applying every point of the critique.\n"
        f"Brief: {one_line(brief)}\nCritique: {one_line(critique)}\nDraft:\n{draft.strip()}"
    )


def is_approved(critique: str) -> bool:
    """True when the critique starts with APPROVED (any case, punctuation after it allowed)."""
    return re.match(rf"^\W*{APPROVED}\b", critique.strip(), re.IGNORECASE) is not None


# --- sources ------------------------------------------------------------------------------------


def cited_ids(text: str) -> list[str]:
    """The ``[id]`` markers of ``text``, in order of first appearance."""
    return list(dict.fromkeys(_CITATION.findall(text)))


def search_hits(messages: Iterable[ChatMessage]) -> list[dict[str, Any]]:
    """The knowledge documents a run's `search_knowledge` calls returned (``{"id", "title"}``), first seen first."""
    names: dict[str, str] = {}
    hits: dict[str, dict[str, Any]] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            names[call["id"]] = call["name"]
        if message.get("role") != "tool":
            continue
        name = message.get("name") or names.get(message.get("tool_call_id") or "")
        if name != "search_knowledge":
            continue
        try:
            payload = json.loads(message.get("content") or "")
        except ValueError:
            continue
        result = payload.get("result") if isinstance(payload, Mapping) else None
        if not isinstance(result, Mapping):
            continue
        for hit in result.get("results") or []:
            if isinstance(hit, Mapping) and isinstance(hit.get("id"), str):
                hits.setdefault(hit["id"], {"id": hit["id"], "title": str(hit.get("title") or hit["id"])})
    return list(hits.values())
