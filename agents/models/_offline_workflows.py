"""How the offline model answers the prompts of the research and review workflows (`agents.workflow_prompts`).

A user message whose first line starts with one of those prompts' leads is read whole (its parameters
are on the lines after it), before the clause rules of `_offline_intents`:

- **plan** (`Plan the research of: T`, "at most N subtopics"): with `search_knowledge` offered, it
  searches for T (`top_k` N) and answers a JSON array of the titles of the matching documents, best
  first. Fewer than two matches (when N ≥ 2) are topped up with "T: overview" and "T: in practice", so
  a plan has 2 to N subtopics (1 when N is 1). Without the tool it answers those two (cut to N).
- **report** (`Write a report on "T" from these research notes`, then `- subtopic: findings` lines): no
  tool call. A title line "T: a report", one paragraph per researched subtopic, a line naming the
  subtopics whose research failed, and `Sources: [id], ...` with the notes' `[id]` markers in order.
- **draft** (`Draft a text for this brief.`, `Brief: B`): with `search_knowledge` offered, it searches for
  B and drafts from the hits as "write a note about B" does (title, snippets, sources); else a draft that
  states no facts.
- **review** (`Review the draft below against the brief.`, `Brief: B`, `Draft:` D): no tool call. The
  points of B are its content words: not stop words, not the words of instructions (write, draft, short,
  mention ...). A point is covered when the body of D (all but its first line, the title, which may
  just repeat the brief) holds the word (plurals and verb forms count). Every point
  covered: `APPROVED. The draft covers every point of the brief: ...`; otherwise `Not approved. Missing:
  a, b. Add a sentence on each.` A brief that contains "never approve" is never approved (the critique
  says so): that is how a review that runs out of rounds is produced on purpose.
- **revise** (`Revise the draft below for the brief`, `Brief:`, `Critique: C`, `Draft:` D): no tool call.
  D followed by "It also covers a and b." for the points C lists after "Missing:", or by "Revised after
  the review: C" when it lists none.

A revision adds every missing point, so a review is approved in its second round at the latest, unless
the brief says "never approve".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from agents.knowledge import tokenize
from agents.workflow_prompts import (
    APPROVED,
    DRAFT_LEAD,
    PLAN_LEAD,
    REPORT_LEAD,
    REVIEW_LEAD,
    REVISE_LEAD,
    cited_ids,
    one_line,
)

NEVER_APPROVE = "never approve"
DEFAULT_SUBTOPICS = 4
MAX_TOP_K = 10

# Words that tell the writer what to do rather than what to write about: never points of a brief.
_INSTRUCTION_WORDS = frozenset(
    """
    write draft text note notes short brief briefly mention mentions include includes including cover covers
    covering make sure please add team page paragraph paragraphs announcement summary summarise summarize
    sentence sentences word words title plain language reader readers clear simple keep never approve
    """.split()  # noqa: SIM905 - a word list reads better as text than as quoted strings
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*")
_AT_MOST = re.compile(r"\bat most (\d+) subtopics\b", re.I)
_REPORT = re.compile(r"^" + re.escape(REPORT_LEAD) + r' "(?P<topic>[^"\n]*)"', re.I)
_MISSING = re.compile(r"\bMissing:\s*(?P<points>[^.]+)", re.I)


def workflow_kind(text: str) -> str | None:
    """Which workflow prompt ``text`` is (plan, report, draft, review, revise), None when it is none of them."""
    first = text.lstrip().split("\n", 1)[0]
    if first.startswith(PLAN_LEAD):
        return "plan"
    if _REPORT.match(first):
        return "report"
    for lead, kind in ((DRAFT_LEAD, "draft"), (REVIEW_LEAD, "review"), (REVISE_LEAD, "revise")):
        if first.startswith(lead):
            return kind
    return None


def _field(text: str, name: str) -> str:
    """The value of the ``Name: value`` line of a prompt ("" when it has none)."""
    found = re.search(rf"^{name}:[ \t]*(?P<value>.*)$", text, re.MULTILINE)
    return found.group("value").strip() if found else ""


def _draft_of(text: str) -> str:
    """The draft of a review or revise prompt: everything after the ``Draft:`` line."""
    found = re.search(r"^Draft:[ \t]*\n(?P<draft>.*)\Z", text, re.MULTILINE | re.DOTALL)
    return found.group("draft").strip() if found else ""


# --- plan -------------------------------------------------------------------------------------------------


def plan_request(text: str) -> tuple[str, int]:
    """The topic and the most subtopics a plan prompt asks for."""
    first = text.lstrip().split("\n", 1)[0]
    topic = first[len(PLAN_LEAD) :].strip()
    found = _AT_MOST.search(text)
    wanted = int(found.group(1)) if found else DEFAULT_SUBTOPICS
    return topic, max(1, min(wanted, MAX_TOP_K))


def plan_answer(topic: str, most: int, hits: Sequence[Any]) -> str:
    """The planner's JSON array: the titles of ``hits``, topped up to two (see the module docstring)."""
    titles: list[str] = []
    for hit in hits:
        if isinstance(hit, Mapping) and hit.get("title") and str(hit["title"]) not in titles:
            titles.append(str(hit["title"]))
    subject = topic[:1].upper() + topic[1:]
    for filler in (f"{subject}: overview", f"{subject}: in practice"):
        if len(titles) < min(2, most):
            titles.append(filler)
    return json.dumps(titles[:most], ensure_ascii=False)


# --- report -----------------------------------------------------------------------------------------------


def report_answer(text: str) -> str:
    """The report a writer makes of a report prompt's notes (see the module docstring)."""
    found = _REPORT.match(text.lstrip())
    topic = found.group("topic").strip() if found else "the topic"
    paragraphs: list[str] = []
    failed: list[str] = []
    notes = text.split("\nNotes:\n", 1)[1] if "\nNotes:\n" in text else ""
    for line in notes.splitlines():
        if not line.startswith("- "):
            continue
        subtopic, _, findings = line[2:].partition(": ")
        if not findings or findings.startswith("(no findings"):
            failed.append(subtopic)
        else:
            paragraphs.append(f"{subtopic}: {findings}")
    parts = [f"{topic[:1].upper() + topic[1:]}: a report", *paragraphs]
    if failed:
        parts.append(f"Not covered, because their research failed: {', '.join(failed)}.")
    sources = cited_ids(notes)
    if sources:
        parts.append("Sources: " + ", ".join(f"[{s}]" for s in sources))
    return "\n\n".join(parts)


# --- review and revise ------------------------------------------------------------------------------------


def brief_points(brief: str) -> list[str]:
    """The content words of a brief, in order, once each (see the module docstring)."""
    points: list[str] = []
    seen: set[str] = set()
    for match in _WORD.finditer(brief.lower()):
        word = match.group(0)
        key = " ".join(tokenize(word))
        if not key or word in _INSTRUCTION_WORDS or key in seen:
            continue
        seen.add(key)
        points.append(word)
    return points


def missing_points(brief: str, draft: str) -> list[str]:
    """The points of ``brief`` that the body of ``draft`` (all but its title line) does not cover."""
    title, _, body = draft.strip().partition("\n")
    present = set(tokenize(body if body.strip() else title))
    return [p for p in brief_points(brief) if not set(tokenize(p)) <= present]


def review_answer(text: str) -> str:
    """The reviewer's critique of a review prompt (see the module docstring)."""
    brief, draft = _field(text, "Brief"), _draft_of(text)
    missing = missing_points(brief, draft)
    if NEVER_APPROVE in brief.lower():
        listed = f" Missing: {', '.join(missing)}." if missing else ""
        return f"Not approved.{listed} This brief says {NEVER_APPROVE}, so no draft can pass."
    if missing:
        return f"Not approved. Missing: {', '.join(missing)}. Add a sentence on each."
    points = brief_points(brief)
    return f"{APPROVED}. The draft covers every point of the brief: {', '.join(points) or 'it asks for nothing'}."


def revise_answer(text: str) -> str:
    """The writer's revision of a revise prompt's draft (see the module docstring)."""
    critique, draft = _field(text, "Critique"), _draft_of(text)
    found = _MISSING.search(critique)
    points = [p.strip() for p in found.group("points").split(",") if p.strip()] if found else []
    if points:
        listed = points[0] if len(points) == 1 else f"{', '.join(points[:-1])} and {points[-1]}"
        return f"{draft}\n\nIt also covers {listed}."
    return f"{draft}\n\nRevised after the review: {one_line(critique)}"


def draft_brief(text: str) -> str:
    """The brief of a draft prompt."""
    return _field(text, "Brief")
