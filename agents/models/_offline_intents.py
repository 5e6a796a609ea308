"""The rules by which the offline model reads a user message: which tool to call, or what to reply.

A message that is one of the research and review workflows' prompts (its first line says which) is read
whole by the rules of `_offline_workflows` (plan, report, draft, review, revise). Any other message is cut
into clauses at sentence ends (`.`, `?`, `!`, `;` followed by a space, and line breaks),
and each clause is read by the first rule that matches, in this order:

1. **send_message** — "send a message to Bob: the build is green", "send an email to ops saying ...",
   "send Bob a message: ...". The message text is everything after the colon (or "saying"/"that says"),
   across sentence ends. A send request without a recipient or text gets a reply saying the form to use.
2. **get_time** — "what time is it", "what's the time", "current time", "what is the date", "what day is
   it"; "in Europe/Paris" (an IANA name) or "in UTC" sets the time zone.
3. **memory** — "my <thing> is <value>" (and "call me <name>") is noted; "what is my <thing>?" is answered
   from the earlier user messages of the conversation; "what did I say/ask" repeats the previous user
   message; "what was the last result/answer" repeats the previous answer.
4. **calculator follow-up** — a clause that starts with an operator and a number ("and times 2?",
   "plus 5", "/ 4"), "multiply/divide it by N", "add N to it", "subtract N from it", "double/halve/square
   it": the previous calculator result of the conversation combined with the number.
5. **calculator** — a clause holding an arithmetic expression: two numbers joined by an operator
   (`+ - * / // % ** ^ x`, or plus, minus, times, multiplied by, divided by, to the power of), or a call
   of sqrt/abs/round/min/max/floor/ceil/log, or "N% of M", or "square root of N". The longest such
   stretch of the clause is the expression. Dates (2024-05-01) are not expressions.
6. **search_knowledge** — explicit: "search the knowledge base for X", "what does the knowledge base say
   about X", "according to the knowledge base, X", "search for X", "look up X", "research X"; implicit:
   "tell me about X", "explain X", and any question (a "?" or a question word first) mentioning a topic
   of the knowledge base (durable, orchestration, activity, entity, timer, retry, backoff, approval,
   budget, token, replay, fan-out, session, steering, outbox, idempotency, agent, tool, model, ...).
   "write/draft a <thing> about X" also searches, and the answer is then a draft rather than a summary.
7. **summarise** — "summarise: <text>" / "tl;dr <text>" replies with the text's most representative
   sentences (word-frequency scoring).
8. **small talk** — greetings, thanks.
9. Anything else gets a reply saying what the offline model can do, unless another clause of the same
   message was understood.

A tool is only called when the request offers it; otherwise the reply says the tool is not available
(implicit knowledge questions fall through to the next rule instead).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.messages import ChatMessage
from agents.models import _offline_workflows as workflows

Purpose = Literal["answer", "write", "plan"]


@dataclass(frozen=True)
class ToolAction:
    """Call `tool` with `arguments`; `purpose` says how to word the answer from its result."""

    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    purpose: Purpose = "answer"


@dataclass(frozen=True)
class Reply:
    """Answer with `text`; `understood` is False for the catch-all reply."""

    text: str
    understood: bool = True


Action = ToolAction | Reply

_CLAUSE_END = re.compile(r"(?<=[.?!;])\s+|\n+")


def split_clauses(text: str) -> list[tuple[int, str]]:
    """(start offset, clause) pairs of a message, empty clauses left out."""
    clauses: list[tuple[int, str]] = []
    start = 0
    for match in _CLAUSE_END.finditer(text):
        piece = text[start : match.start()]
        if piece.strip():
            clauses.append((start + len(piece) - len(piece.lstrip()), piece.strip()))
        start = match.end()
    tail = text[start:]
    if tail.strip():
        clauses.append((start + len(tail) - len(tail.lstrip()), tail.strip()))
    return clauses


# --- send_message -------------------------------------------------------------------------------------------

_SEPARATOR = r"\s*(?::|\bsaying\b|\bthat says\b|\bwith the text\b)\s*"
_SEND_TO = re.compile(
    r"\bsend\b(?:\s+(?:a|an|the|this|my|one))?(?:\s+(?:short|quick|brief|new))?\s+"
    r"(?:message|note|reminder|email|e-mail|text|notification)\s+to\s+(?P<to>[^:\n]+?)" + _SEPARATOR + r"(?P<text>.+)",
    re.IGNORECASE | re.DOTALL,
)
_SEND_PERSON = re.compile(
    r"\bsend\s+(?P<to>[\w@.#+\-]+)\s+(?:a|an)\s+(?:(?:short|quick|brief|new)\s+)?"
    r"(?:message|note|reminder|email|e-mail|text|notification)" + _SEPARATOR + r"(?P<text>.+)",
    re.IGNORECASE | re.DOTALL,
)
_SEND_INTENT = re.compile(r"\bsend\b.*\b(?:message|note|reminder|email|e-mail|notification)\b", re.IGNORECASE)


def _send(rest: str) -> Action | None:
    """A send_message action for a message's text from a send request onwards, None when there is none."""
    if not _SEND_INTENT.search(rest):
        return None
    for pattern in (_SEND_TO, _SEND_PERSON):
        match = pattern.search(rest)
        if match:
            to = match.group("to").strip().strip("\"'")
            text = match.group("text").strip()
            if to and text:
                return ToolAction("send_message", {"to": to, "text": text})
    return Reply('To send a message, say: "send a message to <recipient>: <text>".')


# --- get_time -----------------------------------------------------------------------------------------------

_TIME = re.compile(
    r"\b(?:what time is it|what's the time|what is the time|current time|time is it now|the time now|"
    r"what(?:'s| is) the date|today's date|what day is it|current date)\b",
    re.IGNORECASE,
)
_ZONE = re.compile(r"\bin\s+(?P<zone>UTC|GMT|[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_\-]+)+)\b")

# --- memory -------------------------------------------------------------------------------------------------

_QUESTION_START = re.compile(r"^(?:what|who|which|when|where|why|how|is|are|do|does|can|could|should|will)\b", re.I)
_FACT = re.compile(
    r"\bmy (?P<attr>[a-z][a-z ]{0,40}?) is (?P<value>[^.?!,;]+?)(?:\s+and\b.*)?\s*[.?!,;]?\s*$", re.IGNORECASE
)
_CALL_ME = re.compile(r"\bcall me (?P<value>[^.?!,;]+?)\s*[.?!,;]?\s*$", re.IGNORECASE)
_ASK_FACT = re.compile(
    r"^(?:and\s+)?(?:what|who)(?:'s| is| was)\s+my (?P<attr>[a-z][a-z ]{0,40}?)\s*\??$", re.IGNORECASE
)
_ASK_SAID = re.compile(r"\bwhat did i (?:just )?(?:say|ask|write)\b", re.IGNORECASE)
_ASK_LAST = re.compile(r"\bwhat was (?:the|your) (?:last |previous )?(?:result|answer)\b", re.IGNORECASE)


def _fact_in(text: str) -> tuple[str, str] | None:
    if _QUESTION_START.match(text) or text.rstrip().endswith("?"):
        return None
    match = _FACT.search(text)
    if match:
        return match.group("attr").strip().lower(), match.group("value").strip()
    match = _CALL_ME.search(text)
    if match:
        return "name", match.group("value").strip()
    return None


def _recall(attr: str, earlier: Sequence[ChatMessage]) -> str | None:
    for message in reversed(earlier):
        if message.get("role") != "user":
            continue
        for _, clause in reversed(split_clauses(message.get("content") or "")):
            fact = _fact_in(clause)
            if fact and fact[0] == attr:
                return fact[1]
    return None


def _memory(clause: str, earlier: Sequence[ChatMessage]) -> Action | None:
    fact = _fact_in(clause)
    if fact:
        attr, value = fact
        return Reply(f"Nice to meet you, {value}." if attr == "name" else f"Noted: your {attr} is {value}.")
    match = _ASK_FACT.match(clause)
    if match:
        asked = match.group("attr").strip().lower()
        recalled = _recall(asked, earlier)
        return Reply(f"Your {asked} is {recalled}." if recalled else f"You have not told me your {asked}.")
    if _ASK_SAID.search(clause):
        previous = [m for m in earlier if m.get("role") == "user"]
        if previous:
            return Reply(f'You said: "{previous[-1].get("content") or ""}"')
        return Reply("This is the first thing you said in this conversation.")
    if _ASK_LAST.search(clause):
        answers = [m for m in earlier if m.get("role") == "assistant" and not m.get("tool_calls") and m.get("content")]
        if answers:
            return Reply(f'My last answer was: "{answers[-1].get("content")}"')
        return Reply("I have not answered anything yet in this conversation.")
    return None


# --- calculator ---------------------------------------------------------------------------------------------

_NUMBER = r"\d+(?:\.\d+)?"
_WORD_OPERATORS = (
    (re.compile(r"\bto the power of\b", re.I), "^"),
    (re.compile(r"\bmultiplied by\b", re.I), "*"),
    (re.compile(r"\bdivided by\b", re.I), "/"),
    (re.compile(r"\btimes\b", re.I), "*"),
    (re.compile(r"\bplus\b", re.I), "+"),
    (re.compile(r"\bminus\b", re.I), "-"),
    (re.compile(r"\bmod(?:ulo)?\b", re.I), "%"),
    (re.compile(r"(?<=\d)\s*x\s*(?=\d)", re.I), "*"),
    (re.compile(r"(?<=\d)\s*×\s*(?=\d)"), "*"),
    (re.compile(r"÷"), "/"),
)
_SQUARE_ROOT = re.compile(r"\bthe square root of\s+(" + _NUMBER + r")|\bsquare root of\s+(" + _NUMBER + r")", re.I)
_SQUARED = re.compile(r"(" + _NUMBER + r"|\))\s+squared\b", re.I)
_PERCENT_OF = re.compile(r"(" + _NUMBER + r")\s*%\s*of\s+(" + _NUMBER + r")", re.I)
_FUNCTIONS = r"sqrt|abs|round|min|max|floor|ceil|log"
_EXPRESSION = re.compile(r"(?:(?:" + _FUNCTIONS + r")\s*\(|\bpi\b|" + _NUMBER + r"|\*\*|//|[-+*/^%(),]|[ \t])+", re.I)
_HAS_OPERATION = re.compile(r"[\d)]\s*(?:\*\*|//|[-+*/^%])\s*[-+]?[\d(]|\b(?:" + _FUNCTIONS + r")\s*\(", re.I)
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")

_FOLLOW_UP_LEAD = re.compile(r"^(?:and|then|now|ok|okay|so|what about|and what about|how about)\b[\s,]*", re.I)
_FOLLOW_UP_OPERATOR = re.compile(
    r"^(?P<op>plus|minus|times|multiplied by|divided by|over|to the power of|mod|\*\*|[-+*/^%x×÷])\s*"
    r"(?P<num>-?" + _NUMBER + r")\s*[?.!]?$",
    re.I,
)
_IT = r"(?:it|that|this|the result|the answer)"
_FOLLOW_UP_VERB = (
    (re.compile(r"^multiply " + _IT + r" by (?P<num>-?" + _NUMBER + r")\s*[?.!]?$", re.I), "*"),
    (re.compile(r"^divide " + _IT + r" by (?P<num>-?" + _NUMBER + r")\s*[?.!]?$", re.I), "/"),
    (re.compile(r"^add (?P<num>-?" + _NUMBER + r") to " + _IT + r"\s*[?.!]?$", re.I), "+"),
    (re.compile(r"^subtract (?P<num>-?" + _NUMBER + r") from " + _IT + r"\s*[?.!]?$", re.I), "-"),
    (re.compile(r"^raise " + _IT + r" to (?:the power of )?(?P<num>-?" + _NUMBER + r")\s*[?.!]?$", re.I), "^"),
)
_FOLLOW_UP_FIXED = (
    (re.compile(r"^double " + _IT + r"\s*[?.!]?$", re.I), "*", "2"),
    (re.compile(r"^halve " + _IT + r"\s*[?.!]?$", re.I), "/", "2"),
    (re.compile(r"^square " + _IT + r"\s*[?.!]?$", re.I), "^", "2"),
)
_SYMBOL_OF = {
    "plus": "+",
    "minus": "-",
    "times": "*",
    "multiplied by": "*",
    "divided by": "/",
    "over": "/",
    "to the power of": "^",
    "mod": "%",
    "x": "*",
    "×": "*",
    "÷": "/",
}


def last_calculator_result(earlier: Sequence[ChatMessage]) -> Any:
    """The result of the conversation's latest successful calculator call, None when there is none."""
    names = _call_names(earlier)
    for message in reversed(earlier):
        if message.get("role") != "tool":
            continue
        name = message.get("name") or names.get(message.get("tool_call_id") or "")
        if name != "calculator":
            continue
        payload = parse_tool_content(message.get("content"))
        result = payload.get("result") if isinstance(payload, dict) else None
        if isinstance(result, dict) and isinstance(result.get("result"), (int, float)):
            return result["result"]
    return None


def _follow_up(clause: str, earlier: Sequence[ChatMessage]) -> Action | None:
    text = _FOLLOW_UP_LEAD.sub("", clause.strip()).strip()
    op: str | None = None
    number: str | None = None
    match = _FOLLOW_UP_OPERATOR.match(text)
    if match:
        op, number = _SYMBOL_OF.get(match.group("op").lower(), match.group("op")), match.group("num")
    else:
        for pattern, symbol in _FOLLOW_UP_VERB:
            verb = pattern.match(text)
            if verb:
                op, number = symbol, verb.group("num")
                break
        else:
            for pattern, symbol, fixed in _FOLLOW_UP_FIXED:
                if pattern.match(text):
                    op, number = symbol, fixed
                    break
    if op is None or number is None:
        return None
    previous = last_calculator_result(earlier)
    if previous is None:
        return Reply("There is no earlier result to continue from; give me the whole expression.")
    left = f"({previous})" if previous < 0 else str(previous)
    right = f"({number})" if number.startswith("-") else number
    return ToolAction("calculator", {"expression": f"{left}{op}{right}"})


def find_expression(clause: str) -> str | None:
    """The arithmetic expression in a clause (see rule 5), None when it holds none."""
    if _DATE.search(clause):
        clause = _DATE.sub(" ", clause)
    text = clause
    for pattern, symbol in _WORD_OPERATORS:
        text = pattern.sub(f" {symbol} ", text)
    text = _SQUARE_ROOT.sub(lambda m: f"sqrt({m.group(1) or m.group(2)})", text)
    text = _SQUARED.sub(lambda m: f"{m.group(1)}^2", text)
    text = _PERCENT_OF.sub(lambda m: f"({m.group(1)}/100*{m.group(2)})", text)
    best: str | None = None
    for match in _EXPRESSION.finditer(text):
        candidate = re.sub(r"\s+", "", match.group(0)).strip(",")
        candidate = _balance(candidate)
        if _HAS_OPERATION.search(candidate) and (best is None or len(candidate) > len(best)):
            best = candidate
    return best


def _balance(candidate: str) -> str:
    """Drop unmatched parentheses at the ends that belong to the sentence, not the expression."""
    while candidate.endswith(")") and candidate.count(")") > candidate.count("("):
        candidate = candidate[:-1]
    while candidate.startswith("(") and candidate.count("(") > candidate.count(")"):
        candidate = candidate[1:]
    return candidate.strip(",")


# --- search_knowledge ---------------------------------------------------------------------------------------

_KB = r"(?:the\s+)?(?:knowledge\s*base|kb|docs|documentation|team notes|notes)"
_SEARCH_EXPLICIT = (
    re.compile(
        r"\b(?:search|look (?:it )?up in|look in|check|consult|query)\s+" + _KB + r"\s+(?:for|about|on)\s+(?P<q>.+)",
        re.I,
    ),
    re.compile(r"\bwhat does " + _KB + r" (?:say|tell us|have|know) (?:about|on|regarding)\s+(?P<q>.+)", re.I),
    re.compile(r"\b(?:according to|based on|from|in) " + _KB + r",?\s+(?P<q>.+)", re.I),
    re.compile(r"\b(?P<q>.+?),?\s+(?:according to|based on|in) " + _KB + r"\s*[?.!]?$", re.I),
    re.compile(r"^(?:please\s+)?(?:search(?: for)?|look up|find|research)\s+(?P<q>.+)", re.I),
)
_SEARCH_IMPLICIT = re.compile(r"^(?:please\s+)?(?:tell me about|explain|describe)\s+(?P<q>.+)", re.I)
_WRITE = re.compile(
    r"^(?:please\s+)?(?:write|draft|compose|prepare)\s+(?:me\s+)?(?:(?:a|an|the|some)\s+)?(?:short\s+|brief\s+)?"
    r"(?P<kind>[\w-]+(?:\s+[\w-]+)?)?\s+(?:about|on|explaining|describing)\s+(?P<q>.+)",
    re.I,
)
_TOPIC = re.compile(
    r"\b(?:durable|orchestrat\w*|activit\w*|entit\w*|timers?|retr(?:y|ies|ying|ied)|backoff|jitter|approv\w*|"
    r"budgets?|tokens?|determinis\w*|replay\w*|fan-?(?:out|in)|sub-?orchestrat\w*|continue-as-new|eternal|"
    r"monitor\w*|funchost|sessions?|steer\w*|cancel\w*|terminat\w*|outbox|idempoten\w*|checkpoint\w*|task hub|"
    r"agents?|tools?|models?|providers?|functions|events?|queues?|histor(?:y|ies)|crash\w*|recover\w*|"
    r"human|workflows?|patterns?|catalogue|researcher|writer|assistant|ollama|openai)\b",
    re.I,
)


def clean_query(text: str) -> str:
    """A search query from a clause tail: no trailing punctuation, quotes or filler words."""
    query = text.strip().strip("\"'“”").rstrip("?.!").strip()
    query = re.sub(r"^(?:the (?:topic|subject) of|about)\s+", "", query, flags=re.I)
    return query.strip("\"'“”").strip()


def _search(clause: str, offered: set[str]) -> Action | None:
    write = _WRITE.match(clause)
    if write:
        query = clean_query(write.group("q"))
        if "search_knowledge" in offered:
            return ToolAction("search_knowledge", {"query": query}, purpose="write")
        return Reply(draft_without_sources(query, write.group("kind") or "note"))
    for pattern in _SEARCH_EXPLICIT:
        match = pattern.search(clause)
        if match and clean_query(match.group("q")):
            if "search_knowledge" not in offered:
                return Reply("I cannot search the knowledge base: the search_knowledge tool is not available to me.")
            return ToolAction("search_knowledge", {"query": clean_query(match.group("q"))})
    if "search_knowledge" not in offered:
        return None
    implicit = _SEARCH_IMPLICIT.match(clause)
    if implicit and clean_query(implicit.group("q")):
        return ToolAction("search_knowledge", {"query": clean_query(implicit.group("q"))})
    if (clause.endswith("?") or _QUESTION_START.match(clause)) and _TOPIC.search(clause):
        return ToolAction("search_knowledge", {"query": clean_query(clause)})
    return None


def draft_without_sources(topic: str, kind: str) -> str:
    """A writer's draft when there is nothing to draw on: a title and a clearly marked placeholder body."""
    title = topic[:1].upper() + topic[1:]
    return (
        f"{title}\n\nThis {kind.lower()} is about {topic}. I have no sources for it in this conversation, so "
        "it states no facts; give me material or access to the knowledge base and I will fill it in."
    )


# --- summarise and small talk -------------------------------------------------------------------------------

_SUMMARISE = re.compile(r"^(?:please\s+)?(?:summari[sz]e|tl;?dr)(?:\s+this)?\s*:?\s*(?P<text>.+)", re.I | re.DOTALL)
_GREETING = re.compile(
    r"^(?:hi|hello|hey|good (?:morning|afternoon|evening)|greetings)\b[\s!.,]*(?:there)?[\s!.]*$", re.I
)
_THANKS = re.compile(r"^(?:thanks|thank you|cheers|great,? thanks)\b", re.I)
_SUMMARY_STOP = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were will with".split()  # noqa: SIM905
)


def summarise(text: str, sentences: int = 2) -> str:
    """The `sentences` most representative sentences of `text` (sum of word frequencies), in their order."""
    parts = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]
    if len(parts) <= sentences:
        return " ".join(parts)
    words = [w for w in re.findall(r"[a-z']+", text.lower()) if w not in _SUMMARY_STOP]
    frequency = Counter(words)
    scored = []
    for index, sentence in enumerate(parts):
        tokens = [w for w in re.findall(r"[a-z']+", sentence.lower()) if w not in _SUMMARY_STOP]
        score = sum(frequency[w] for w in tokens) / (len(tokens) or 1)
        scored.append((score, -index))
    keep = sorted(sorted(range(len(parts)), key=lambda i: scored[i], reverse=True)[:sentences])
    return " ".join(parts[i] for i in keep)


# --- reading a message --------------------------------------------------------------------------------------


def read_message(text: str, earlier: Sequence[ChatMessage], offered: set[str]) -> list[Action]:
    """The actions for one user message, in the order of its clauses (rules in the module docstring)."""
    workflow = _workflow_action(text, offered)
    if workflow is not None:
        return [workflow]
    summary = _SUMMARISE.match(text.strip())
    if summary:
        return [Reply(summarise(summary.group("text")))]
    actions: list[Action] = []
    for start, clause in split_clauses(text):
        sending = _send(text[start:]) if _SEND_INTENT.search(clause) else None
        if sending is not None:
            actions.append(_offered(sending, offered))
            break  # the message text runs to the end of the user's message
        action = _read_clause(clause, earlier, offered)
        actions.append(_offered(action, offered))
    if any(a.understood for a in actions if isinstance(a, Reply)) or any(isinstance(a, ToolAction) for a in actions):
        actions = [a for a in actions if not (isinstance(a, Reply) and not a.understood)]
    return actions or [Reply(fallback(text))]


def _workflow_action(text: str, offered: set[str]) -> Action | None:
    """The action for a workflow prompt (rules in `_offline_workflows`), None for any other message."""
    kind = workflows.workflow_kind(text)
    if kind == "plan":
        topic, most = workflows.plan_request(text)
        if "search_knowledge" in offered and topic:
            return ToolAction("search_knowledge", {"query": topic, "top_k": most}, purpose="plan")
        return Reply(workflows.plan_answer(topic, most, []))
    if kind == "draft":
        brief = workflows.draft_brief(text)
        if "search_knowledge" in offered and brief:
            return ToolAction("search_knowledge", {"query": brief}, purpose="write")
        return Reply(draft_without_sources(brief or "the brief", "text"))
    if kind == "report":
        return Reply(workflows.report_answer(text))
    if kind == "review":
        return Reply(workflows.review_answer(text))
    if kind == "revise":
        return Reply(workflows.revise_answer(text))
    return None


def _read_clause(clause: str, earlier: Sequence[ChatMessage], offered: set[str]) -> Action:
    if _TIME.search(clause):
        zone = _ZONE.search(clause)
        return ToolAction("get_time", {"timezone": zone.group("zone")} if zone else {})
    remembered = _memory(clause, earlier)
    if remembered is not None:
        return remembered
    follow_up = _follow_up(clause, earlier)
    if follow_up is not None:
        return follow_up
    expression = find_expression(clause)
    if expression is not None:
        return ToolAction("calculator", {"expression": expression})
    searched = _search(clause, offered)
    if searched is not None:
        return searched
    if _GREETING.match(clause):
        return Reply("Hello! How can I help?")
    if _THANKS.match(clause):
        return Reply("You're welcome.")
    return Reply(fallback(clause), understood=False)


_TOOL_PURPOSE = {
    "calculator": "compute that",
    "get_time": "tell the time",
    "send_message": "send messages",
    "search_knowledge": "search the knowledge base",
}


def _offered(action: Action, offered: set[str]) -> Action:
    if isinstance(action, ToolAction) and action.tool not in offered:
        what = _TOOL_PURPOSE.get(action.tool, f"use {action.tool}")
        return Reply(f"I cannot {what}: the {action.tool} tool is not available to me.")
    return action


def fallback(text: str) -> str:
    shown = text.strip() if len(text.strip()) <= 80 else text.strip()[:77] + "..."
    return (
        f'I have no answer to "{shown}". I am the offline model: I do arithmetic, search the knowledge base, '
        "tell the time, send messages and remember what you tell me in this conversation."
    )


# --- tool messages ------------------------------------------------------------------------------------------


def parse_tool_content(content: str | None) -> Any:
    """A tool message's content as JSON when it is JSON, else the text itself."""
    if content is None:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return content


def _call_names(messages: Sequence[ChatMessage]) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            names[call["id"]] = call["name"]
    return names
