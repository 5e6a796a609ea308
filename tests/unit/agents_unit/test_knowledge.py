"""The knowledge base: the shipped documents load, BM25 ranks the document about a topic first, snippets match."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.knowledge import DEFAULT_DIR, KnowledgeBase, knowledge_from_env, parse_document, tokenize

KB = knowledge_from_env({})


def test_the_shipped_knowledge_base_has_titled_documents() -> None:
    assert 12 <= len(KB.documents) <= 20
    timers = KB.get("durable-timers")
    assert timers is not None and timers.title == "Durable timers"
    assert all(doc.title and doc.passages for doc in KB.documents)
    assert knowledge_from_env({"KNOWLEDGE_DIR": str(DEFAULT_DIR)}) is KB  # loaded once per folder


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("how do durable timers work", "durable-timers"),
        ("retries", "retries-and-backoff"),
        ("exponential backoff with jitter", "retries-and-backoff"),
        ("human approval of tool calls", "human-approval"),
        ("token budget", "token-budgets"),
        ("orchestrator determinism datetime.now", "orchestrator-determinism"),
        ("continue as new", "continue-as-new"),
        ("idempotent outbox", "idempotency-and-outbox"),
        ("task_all partial failure", "fan-out-fan-in"),
        ("Ollama base url", "model-providers"),
        ("the researcher agent", "agents-catalogue"),
        ("Last-Event-ID", "server-sent-events"),
    ],
)
def test_the_document_about_a_topic_ranks_first(query: str, best: str) -> None:
    hits = KB.search(query)
    assert hits[0]["id"] == best, hits


def test_hits_have_id_title_snippet_and_descending_scores() -> None:
    hits = KB.search("retry backoff jitter", top_k=5)
    assert len(hits) == 5
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    top = hits[0]
    assert top["title"] == "Retries and backoff"
    # The snippet is the section that matches best, not the document's opening.
    assert "backoff" in top["snippet"].lower() and "jitter" in top["snippet"].lower()
    assert not top["snippet"].startswith("# ")
    assert len(top["snippet"]) <= 320


def test_search_is_deterministic_and_ignores_case_and_plurals() -> None:
    assert KB.search("Durable Timers") == KB.search("durable timer")
    assert KB.search("retrying") == KB.search("retry")


def test_nothing_matches_nothing() -> None:
    assert KB.search("zebra migration") == []
    assert KB.search("the and of") == []  # only stop words
    assert KB.search("timers", top_k=0) == []


def test_tokenize_folds_forms_and_drops_stop_words() -> None:
    assert tokenize("How do the Retries work?") == ["retry"]
    assert tokenize("approve approved approving") == ["approv"] * 3
    assert tokenize("fan-out fan-in status process") == ["fan", "fanout", "fan", "fanin", "status", "process"]


def test_a_folder_of_documents_ranks_by_title_and_text(tmp_path: Path) -> None:
    (tmp_path / "apples.md").write_text("# Apples\n\nApples are fruit. Apples grow on trees.\n", encoding="utf-8")
    (tmp_path / "pears.md").write_text(
        "# Pears\n\nPears are fruit too, unlike apples? No: like apples.\n", encoding="utf-8"
    )
    (tmp_path / "notes.txt").write_text("apples apples apples", encoding="utf-8")  # not Markdown: ignored
    kb = KnowledgeBase.from_folder(tmp_path)
    assert [d.id for d in kb.documents] == ["apples", "pears"]
    assert [h["id"] for h in kb.search("apples")] == ["apples", "pears"]
    assert kb.search("trees")[0]["snippet"] == "Apples are fruit. Apples grow on trees."
    with pytest.raises(FileNotFoundError):
        KnowledgeBase.from_folder(tmp_path / "missing")


def test_parse_document_cuts_passages_at_headings_and_paragraphs() -> None:
    doc = parse_document("x", "# Title\n\nIntro line one\nline two.\n\n## Part\n- a\n- b\n")
    assert doc.title == "Title"
    assert doc.passages == ("Intro line one line two.", "Part: a b")
