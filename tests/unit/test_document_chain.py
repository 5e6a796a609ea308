"""The document digest chain without a host: the orchestrator generator against a typed fake context,
and the activities as plain functions.

The fake context stands behind the same interface as the SDK's (orchestrators/context.py): each
`call_activity` returns a marker naming the call, and the test plays the host by running the activity
and sending its result back into the generator. Payloads take the path they take under a real host:
input and output through the worker's activity codec, the result decoded by the SDK's `df_loads` with
the orchestrator's `expected_type`, in both the SDK's default and strict typing modes, so a payload
that does not survive serialization fails here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.durable_functions.models.utils.df_serialization import df_loads
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

import shared_names as names
from activities import text
from activities.text import ComposeInput, Digest
from orchestrators.context import OrchestrationContext
from orchestrators.document_digest import run_document_digest

SAMPLE_TEXT = (
    "Durable functions keep workflow state in storage. "
    "A workflow survives restarts because its state is stored. "
    "The weather was pleasant today. "
    "Storage makes workflow functions durable."
)
# Content-word counts: workflow 3; durable, functions, state, storage 2; the rest 1. Each sentence scores
# the sum of count/3 over its content words: 12/3, 8/3, 3/3, 10/3.
SAMPLE_SENTENCES = [
    "Durable functions keep workflow state in storage.",
    "A workflow survives restarts because its state is stored.",
    "The weather was pleasant today.",
    "Storage makes workflow functions durable.",
]
SAMPLE_SCORES = [4.0, 2.666667, 1.0, 3.333333]
SAMPLE_KEYWORDS = ["workflow", "durable", "functions", "state", "storage"]


@dataclass(frozen=True)
class ActivityCall:
    """The task marker the fake context hands out for `call_activity`."""

    name: str
    input: Any
    expected_type: type | None


@dataclass
class FakeOrchestrationContext:
    """Implements orchestrators.context.OrchestrationContext; records what the orchestrator asked."""

    input: Any
    instance_id: str = "unit-instance"
    is_replaying: bool = False
    statuses: list[Any] = field(default_factory=list)

    def get_input(self, expected_type: type | None = None) -> Any:
        if expected_type is not None:
            assert isinstance(self.input, expected_type)
        return self.input

    def call_activity(self, name: str, input_: Any = None, expected_type: type | None = None) -> ActivityCall:
        return ActivityCall(name, input_, expected_type)

    def set_custom_status(self, status: Any) -> None:
        self.statuses.append(status)


def _typed(context: FakeOrchestrationContext) -> OrchestrationContext:
    return context  # mypy checks here that the fake really implements the interface


ACTIVITIES: dict[str, Callable[[Any], Any]] = {
    names.SPLIT_SENTENCES: text.split_sentences,
    names.SCORE_SENTENCES: text.score_sentences,
    names.COMPOSE_DIGEST: text.compose_digest,
}


@pytest.fixture(params=["default", "strict"], autouse=True)
def typing_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs in the SDK's default (loose) codec mode and in its strict typing mode."""
    if request.param == "strict":
        monkeypatch.setenv("AZURE_FUNCTIONS_DURABLE_STRICT_TYPING", "1")
    else:
        monkeypatch.delenv("AZURE_FUNCTIONS_DURABLE_STRICT_TYPING", raising=False)
    return str(request.param)


def run_activity(call: ActivityCall) -> Any:
    """Run the named activity as a host would, and decode its result as the orchestration executor does."""
    sent = ActivityTriggerConverter.encode(call.input, expected_type=None).value
    arg = ActivityTriggerConverter.decode(meta.Datum(sent, "string"), trigger_metadata=None)
    result_text = ActivityTriggerConverter.encode(ACTIVITIES[call.name](arg), expected_type=None).value
    result = df_loads(result_text, expected_type=call.expected_type)
    if call.expected_type is not None:
        assert isinstance(result, call.expected_type), f"{call.name} returned {result!r}"
    return result


def drive(orchestration: Generator[Any, Any, Any], respond: Callable[[ActivityCall], Any]) -> tuple[Any, list[Any]]:
    """Run the generator to its end, answering each yielded call with `respond`; returns (output, calls)."""
    calls: list[Any] = []
    try:
        call = next(orchestration)
        while True:
            calls.append(call)
            call = orchestration.send(respond(call))
    except StopIteration as stop:
        return stop.value, calls


# --- the orchestrator ------------------------------------------------------------------------------


def test_chain_runs_the_three_activities_and_returns_the_digest() -> None:
    context = FakeOrchestrationContext({"text": SAMPLE_TEXT, "max_sentences": 2})

    output, calls = drive(run_document_digest(_typed(context)), run_activity)

    assert [call.name for call in calls] == ["split_sentences", "score_sentences", "compose_digest"]
    assert calls[0].input == SAMPLE_TEXT
    assert calls[1].input == SAMPLE_SENTENCES
    assert calls[2].input == ComposeInput(SAMPLE_SENTENCES, SAMPLE_SCORES, 2).to_json()
    assert output == {
        "summary": "Durable functions keep workflow state in storage. Storage makes workflow functions durable.",
        "sentence_count": 4,
        "keywords": SAMPLE_KEYWORDS,
    }
    assert context.statuses == [{"step": "splitting"}, {"step": "scoring"}, {"step": "composing"}, {"step": "done"}]


def test_chain_defaults_to_three_sentences() -> None:
    output, _ = drive(run_document_digest(_typed(FakeOrchestrationContext({"text": SAMPLE_TEXT}))), run_activity)

    assert output["summary"] == " ".join([SAMPLE_SENTENCES[0], SAMPLE_SENTENCES[1], SAMPLE_SENTENCES[3]])


def test_each_step_gets_the_previous_steps_result() -> None:
    answers = {
        "split_sentences": ["B one.", "A two."],
        "score_sentences": [0.25, 0.75],
        "compose_digest": Digest(summary="A two.", sentence_count=2, keywords=["two"]),
    }
    context = FakeOrchestrationContext({"text": "ignored by the fake answers", "max_sentences": 1})

    output, calls = drive(run_document_digest(_typed(context)), lambda call: answers[call.name])

    assert calls[1] == ActivityCall("score_sentences", ["B one.", "A two."], list)
    compose = ComposeInput(["B one.", "A two."], [0.25, 0.75], 1).to_json()
    assert calls[2] == ActivityCall("compose_digest", compose, Digest)
    assert output == {"summary": "A two.", "sentence_count": 2, "keywords": ["two"]}


def test_a_failed_activity_fails_the_orchestration() -> None:
    orchestration = run_document_digest(_typed(FakeOrchestrationContext({"text": SAMPLE_TEXT})))
    next(orchestration)

    # The SDK delivers an activity failure by raising it at the yield.
    with pytest.raises(RuntimeError, match="split failed"):
        orchestration.throw(RuntimeError("split failed"))


@pytest.mark.parametrize(("replaying", "expected_records"), [(False, 1), (True, 0)])
def test_logs_only_when_not_replaying(caplog: pytest.LogCaptureFixture, replaying: bool, expected_records: int) -> None:
    context = FakeOrchestrationContext({"text": SAMPLE_TEXT}, instance_id="abc123", is_replaying=replaying)
    with caplog.at_level(logging.INFO, logger="orchestrators.document_digest"):
        drive(run_document_digest(_typed(context)), run_activity)

    records = [r for r in caplog.records if r.name == "orchestrators.document_digest"]
    assert len(records) == expected_records
    assert all("abc123" in r.getMessage() for r in records)


# --- the activities --------------------------------------------------------------------------------


def test_split_sentences_at_terminators_quotes_and_blank_lines() -> None:
    source = 'First one.  Second\n one!Still second? Third?\n\nHe said "stop." Then left\n\n\nLast line without stop'

    assert text.split_sentences(source) == [
        "First one.",
        "Second one!Still second?",
        "Third?",
        'He said "stop."',
        "Then left",
        "Last line without stop",
    ]


def test_split_sentences_of_blank_text_is_empty() -> None:
    assert text.split_sentences("  \n\n \t ") == []


def test_content_words_drop_stop_words_numbers_and_single_letters() -> None:
    words = text.content_words("Don't stop the agent’s 42 loops, x; it's THE Loop")

    assert words == ["stop", "agent's", "loops", "loop"]


def test_score_sentences_by_relative_word_frequency() -> None:
    assert text.score_sentences(SAMPLE_SENTENCES) == SAMPLE_SCORES
    # cats 2, chase 2, the others 1: "The" and "is" do not count.
    assert text.score_sentences(["Cats chase mice.", "Dogs chase cats.", "The sun is hot."]) == [2.5, 2.5, 1.0]


def test_score_sentences_without_content_words_are_zero() -> None:
    assert text.score_sentences(["It is what it is.", "So it was."]) == [0.0, 0.0]


def test_compose_digest_keeps_best_sentences_in_document_order() -> None:
    compose = ComposeInput(["a one.", "b two.", "c three.", "d four."], [0.1, 0.9, 0.2, 0.8], 2)

    digest = text.compose_digest(compose.to_json())

    assert digest == Digest(summary="b two. d four.", sentence_count=4, keywords=["one", "two", "three", "four"])


def test_compose_digest_breaks_score_ties_by_position_and_caps_keywords() -> None:
    sentences = ["Alpha beta.", "Gamma delta.", "Epsilon zeta eta."]

    digest = text.compose_digest(ComposeInput(sentences, [1.0, 1.0, 1.0], 1).to_json())

    assert digest.summary == "Alpha beta."
    assert digest.keywords == ["alpha", "beta", "gamma", "delta", "epsilon"]


def test_compose_digest_with_fewer_sentences_than_asked_keeps_them_all() -> None:
    digest = text.compose_digest(ComposeInput(["Only one sentence."], [0.5], 3).to_json())

    assert digest == Digest(summary="Only one sentence.", sentence_count=1, keywords=["one", "sentence"])


def test_compose_digest_rejects_mismatched_scores() -> None:
    with pytest.raises(ValueError, match="got 1 scores for 2 sentences"):
        text.compose_digest(ComposeInput(["One.", "Two."], [1.0], 1).to_json())


@pytest.mark.parametrize(
    ("sentences", "message"),
    [
        ("One. Two.", "score_sentences' input must be a list of strings, got str"),
        (["One.", None], "score_sentences' input must be a list of strings, got an item of type NoneType"),
    ],
)
def test_score_sentences_rejects_input_that_is_not_a_list_of_strings(sentences: Any, message: str) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        text.score_sentences(sentences)


@pytest.mark.parametrize(
    ("request_json", "message"),
    [
        (["One."], "a ComposeInput must be a JSON object, got list"),
        ({"scores": [1.0]}, "a ComposeInput needs a list of sentences, got none"),
        ({"sentences": ["One."], "scores": "1.0"}, "a ComposeInput needs a list of scores, got str"),
    ],
)
def test_compose_digest_rejects_input_that_is_not_a_compose_input(request_json: Any, message: str) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        text.compose_digest(request_json)
