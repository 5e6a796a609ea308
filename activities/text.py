"""Activities of the document digest chain: split a text into sentences, score them, compose a digest.

The scoring is the classic word-frequency heuristic: a sentence scores the sum of the relative
frequencies of its content words (stop words ignored), and the digest keeps the best sentences in
their original order. It is deliberately small: the point of the chain is to give the app a real,
checkable workflow before the agent workflows arrive.

Payloads: activity inputs travel as plain JSON and results may be custom classes (Digest), which the
SDK serializes through ``to_json``/``from_json`` and the orchestrator decodes with ``expected_type``.
Not the other way round: the worker decodes activity inputs without a type, which the SDK's strict
typing mode (AZURE_FUNCTIONS_DURABLE_STRICT_TYPING=1) refuses for custom classes.
"""

# No `from __future__ import annotations` here: the Functions worker reads the annotations of the
# functions below when it indexes the app, so they must be real objects, not strings. It also refuses
# a binding parameter annotated with a PEP 585 generic (list[str], dict[str, Any]) on Python 3.11 and
# later, and one such function fails the whole app: the activities take plain `list` and `dict` and
# check the items themselves.

import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import azure.durable_functions as df

import shared_names as names

logger = logging.getLogger(__name__)

bp = df.Blueprint()

KEYWORD_COUNT = 5

# Common English function words; they carry no topic, so they neither score nor become keywords.
STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each either else ever every few
    for from further had has have having he her here hers herself him himself his how however i if in
    into is it its itself just let me more most much must my myself neither no nor not now of off often
    on once only or other our ours ourselves out over own per rather same she should since so some such
    than that the their theirs them themselves then there these they this those though through thus to
    too under until up upon us very was we were what when where whether which while who whom whose why
    will with within without would yet you your yours yourself yourselves
    aren't can't couldn't didn't doesn't don't hadn't hasn't haven't he's i'd i'll i'm i've isn't it's
    let's she's shouldn't that's there's they'd they'll they're they've wasn't we'd we'll we're we've
    weren't what's won't wouldn't you'd you'll you're you've
    """.split()  # noqa: SIM905 - a word list reads better as text than as 150 quoted strings
)

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# A sentence ends at . ! or ?, optionally followed by one closing quote or bracket, then whitespace.
_SENTENCE_BREAK = re.compile(r"""(?<=[.!?])\s+|(?<=[.!?]["'”’)\]])\s+""")
# Letters only (digits and underscores excluded), with inner apostrophes kept: "don't", "agent's".
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


@dataclass
class ComposeInput:
    """Input of `compose_digest` (sent as its JSON): the document's sentences, their scores, the digest length."""

    sentences: list[str]
    scores: list[float]
    max_sentences: int = 3

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ComposeInput":
        """Read a ComposeInput's JSON.

        Raises:
            TypeError: `data` is not a JSON object with lists of `sentences` and `scores`.
        """
        if not isinstance(data, dict):
            raise TypeError(f"a ComposeInput must be a JSON object, got {type(data).__name__}")
        for key in ("sentences", "scores"):
            if not isinstance(data.get(key), list):
                got = type(data[key]).__name__ if key in data else "none"
                raise TypeError(f"a ComposeInput needs a list of {key}, got {got}")
        return cls(
            sentences=[str(s) for s in data["sentences"]],
            scores=[float(s) for s in data["scores"]],
            max_sentences=int(data.get("max_sentences", 3)),
        )


@dataclass
class Digest:
    """Output of `compose_digest` and of the `document_digest` orchestration."""

    summary: str
    sentence_count: int
    keywords: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Digest":
        return cls(
            summary=str(data["summary"]),
            sentence_count=int(data["sentence_count"]),
            keywords=[str(k) for k in data.get("keywords", [])],
        )


def content_words(sentence: str) -> list[str]:
    """The lower-cased words of `sentence` that are not stop words or single letters, in order."""
    words = (match.group().lower().replace("’", "'") for match in _WORD.finditer(sentence))
    return [word for word in words if len(word) > 1 and word not in STOP_WORDS]


def _string_list(value: object, what: str) -> list[str]:
    """`value` as a list of strings, or a TypeError naming `what` it should have been."""
    if not isinstance(value, list):
        raise TypeError(f"{what} must be a list of strings, got {type(value).__name__}")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{what} must be a list of strings, got an item of type {type(item).__name__}")
    return value


def word_frequencies(sentences: Iterable[str]) -> Counter[str]:
    """How often each content word occurs; ties keep the order of first appearance."""
    counts: Counter[str] = Counter()
    for sentence in sentences:
        counts.update(content_words(sentence))
    return counts


@bp.function_name(names.SPLIT_SENTENCES)
@bp.activity_trigger(input_name="text")
def split_sentences(text: str) -> list[str]:
    """Split `text` into sentences at . ! ? and at blank lines, with whitespace collapsed."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        flat = " ".join(paragraph.split())
        sentences.extend(part for part in _SENTENCE_BREAK.split(flat) if part)
    return sentences


@bp.function_name(names.SCORE_SENTENCES)
@bp.activity_trigger(input_name="sentences")
def score_sentences(sentences: list) -> list[float]:
    """Score each sentence: the sum of its content words' frequencies relative to the commonest word.

    Raises:
        TypeError: `sentences` is not a list of strings.
    """
    texts = _string_list(sentences, "score_sentences' input")
    counts = word_frequencies(texts)
    if not counts:
        return [0.0 for _ in texts]
    top = max(counts.values())
    return [round(sum(counts[word] / top for word in content_words(s)), 6) for s in texts]


@bp.function_name(names.COMPOSE_DIGEST)
@bp.activity_trigger(input_name="request")
def compose_digest(request: dict) -> Digest:
    """Keep the `max_sentences` best-scored sentences in document order and name the top keywords.

    Args:
        request: a ComposeInput as JSON (`ComposeInput.to_json()`).

    Raises:
        TypeError: `request` is not a ComposeInput's JSON (an object with lists of sentences and scores).
        ValueError: the number of scores differs from the number of sentences, or max_sentences < 1.
    """
    compose = ComposeInput.from_json(request)
    sentences, scores = compose.sentences, compose.scores
    if len(scores) != len(sentences):
        raise ValueError(f"got {len(scores)} scores for {len(sentences)} sentences")
    if compose.max_sentences < 1:
        raise ValueError(f"max_sentences must be at least 1, got {compose.max_sentences}")
    # Best score first; among equal scores the earlier sentence wins.
    best = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))[: compose.max_sentences]
    summary = " ".join(sentences[i] for i in sorted(best))
    keywords = [word for word, _ in word_frequencies(sentences).most_common(KEYWORD_COUNT)]
    return Digest(summary=summary, sentence_count=len(sentences), keywords=keywords)
