"""The knowledge base: the Markdown documents under `knowledge/`, searched with BM25.

Each document is one `.md` file; its id is the file name without `.md`, its title the first `# ` heading.
Documents are cut into passages at headings and blank lines. A query is ranked against whole documents
with Okapi BM25 (k1 = 1.2, b = 0.75) over the text, plus a title bonus (1.5 × the term's idf for each query
term in the title), so a document about a topic beats one that merely mentions it often; the snippet shown
is the passage of the document that matches the query best.

Tokens are lowercase words with a light suffix folding (plurals, "-ing", "-ed") so "retries" finds
"retry" and "timers" finds "timer"; common English words are ignored. Everything is deterministic:
ties are broken by document id, scores are rounded to 4 decimals.

The folder is `knowledge/` at the root of the app (next to `function_app.py`), or `KNOWLEDGE_DIR`.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing_extensions import TypedDict

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "knowledge"

K1 = 1.2
B = 0.75
TITLE_BOOST = 1.5
SNIPPET_CHARS = 320

_STOP_WORDS = frozenset(
    """
    a about above after again all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her
    here hers him his how i if in into is it its itself just me more most my no nor not now of off on once
    only or other our ours out over own same she should so some such than that the their theirs them then
    there these they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours say says said tell knowledge base kb docs documentation
    work works happen happens mean means explain describe thing things way get
    """.split()  # noqa: SIM905 - a word list reads better as text than as quoted strings
)
_COMPOUND = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _fold(word: str) -> str:
    """A light stemmer: enough to make plurals and simple verb forms meet, applied alike to queries and documents."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, replacement in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            word = word[: len(word) - len(suffix)] + replacement
            break
    # Dropping a final "e" makes "approve", "approved" and "approving" meet at "approv".
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


def tokenize(text: str) -> list[str]:
    """The search tokens of `text`: lowercase words, stop words dropped, suffixes folded.

    A hyphenated compound gives its parts and the joined whole ("fan-out" → "fan", "fanout"), so "fan-out"
    and "fan-in" stay apart although "out" and "in" are stop words.
    """
    tokens: list[str] = []
    for match in _COMPOUND.finditer(text.lower()):
        parts = match.group(0).split("-")
        tokens.extend(_fold(w) for w in parts if w not in _STOP_WORDS)
        if len(parts) > 1:
            tokens.append(_fold("".join(parts)))
    return tokens


class SearchHit(TypedDict):
    """One result of a search."""

    id: str
    title: str
    snippet: str
    score: float


@dataclass(frozen=True)
class Document:
    """A knowledge document: id (file stem), title, text and passages."""

    id: str
    title: str
    text: str
    passages: tuple[str, ...]


_HEADING = re.compile(r"^#{1,6}\s+(.*)$")


def parse_document(doc_id: str, text: str) -> Document:
    """Split a Markdown document into its title and passages (paragraphs, list blocks, headed sections)."""
    title = doc_id.replace("-", " ").capitalize()
    passages: list[str] = []
    current: list[str] = []
    heading = ""

    def flush() -> None:
        if current:
            body = " ".join(line.strip() for line in current).strip()
            if body:
                passages.append(f"{heading}: {body}" if heading else body)
            current.clear()

    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            flush()
            if line.startswith("# ") and title == doc_id.replace("-", " ").capitalize():
                title = match.group(1).strip()
                heading = ""
            else:
                heading = match.group(1).strip()
            continue
        if not line.strip():
            flush()
            continue
        current.append(line.lstrip("-* ").rstrip() if line.lstrip().startswith(("- ", "* ")) else line)
    flush()
    return Document(id=doc_id, title=title, text=text, passages=tuple(passages))


class KnowledgeBase:
    """A searchable set of documents.

    Args:
        documents: The documents; build from a folder with `KnowledgeBase.from_folder`.
    """

    def __init__(self, documents: list[Document]) -> None:
        self.documents = sorted(documents, key=lambda d: d.id)
        self._terms = [Counter(tokenize(doc.text)) for doc in self.documents]
        self._titles = [frozenset(tokenize(doc.title)) for doc in self.documents]
        self._lengths = [sum(t.values()) for t in self._terms]
        self._average_length = (sum(self._lengths) / len(self._lengths)) if self._lengths else 0.0
        frequency: Counter[str] = Counter()
        for terms in self._terms:
            frequency.update(terms.keys())
        count = len(self.documents)
        self._idf = {term: math.log(1 + (count - df + 0.5) / (df + 0.5)) for term, df in frequency.items()}

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str]) -> KnowledgeBase:
        """Load every `*.md` file of `folder` (not recursive)."""
        path = Path(folder)
        if not path.is_dir():
            raise FileNotFoundError(f"knowledge folder {path} does not exist")
        docs = [parse_document(p.stem, p.read_text(encoding="utf-8")) for p in sorted(path.glob("*.md"))]
        return cls(docs)

    def get(self, doc_id: str) -> Document | None:
        return next((d for d in self.documents if d.id == doc_id), None)

    def search(self, query: str, top_k: int = 3) -> list[SearchHit]:
        """The `top_k` documents that best match `query`, best first; documents matching no term are left out."""
        terms = list(dict.fromkeys(tokenize(query)))
        if not terms or top_k <= 0:
            return []
        scored: list[tuple[float, str, int]] = []
        for index, doc in enumerate(self.documents):
            score = self._score(index, terms)
            if score > 0:
                scored.append((round(score, 4), doc.id, index))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [
            {"id": doc_id, "title": self.documents[i].title, "snippet": self._snippet(i, terms), "score": score}
            for score, doc_id, i in scored[:top_k]
        ]

    def _score(self, index: int, terms: list[str]) -> float:
        counts = self._terms[index]
        length_norm = 1 - B + B * (self._lengths[index] / self._average_length if self._average_length else 1)
        score = 0.0
        for term in terms:
            tf = counts.get(term, 0)
            if tf:
                score += self._idf[term] * tf * (K1 + 1) / (tf + K1 * length_norm)
            if term in self._titles[index]:
                score += TITLE_BOOST * self._idf.get(term, 0.0)
        return score

    def _snippet(self, index: int, terms: list[str]) -> str:
        doc = self.documents[index]
        wanted = set(terms)
        best = ""
        best_key: tuple[int, int] = (-1, 0)
        for position, passage in enumerate(doc.passages):
            tokens = tokenize(passage)
            distinct = len(wanted.intersection(tokens))
            hits = sum(1 for t in tokens if t in wanted)
            key = (distinct * 1000 + hits, -position)
            if key > best_key:
                best, best_key = passage, key
        return _shorten(best or (doc.passages[0] if doc.passages else doc.title))


def _shorten(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = text.replace("`", "").replace("**", "")
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return text[: cut if cut > limit // 2 else limit - 1].rstrip(",;:") + "…"


@functools.lru_cache(maxsize=8)
def _load(folder: str, stamp: tuple[int, ...]) -> KnowledgeBase:
    return KnowledgeBase.from_folder(folder)


def _stamp(folder: str) -> tuple[int, ...]:
    """What changes when a document is added, removed or edited: the folder's mtime, the newest file's, the
    number of files and their total size (an edit within one mtime tick still changes the size, mostly)."""
    path = Path(folder)
    try:
        stats = [p.stat() for p in path.glob("*.md")]
        newest = max((s.st_mtime_ns for s in stats), default=0)
        return (path.stat().st_mtime_ns, newest, len(stats), sum(s.st_size for s in stats))
    except FileNotFoundError:
        return (0, 0, 0, 0)  # `from_folder` says what is missing


def knowledge_from_env(env: Mapping[str, str]) -> KnowledgeBase:
    """The knowledge base of `KNOWLEDGE_DIR`, or of the app's `knowledge/` folder.

    Loaded once per folder and loaded again when the folder changes (a document added, removed or edited), so a
    caller that asks again sees new documents; a `KnowledgeBase` already handed out does not change.
    """
    folder = str(Path(env.get("KNOWLEDGE_DIR", "").strip() or str(DEFAULT_DIR)).resolve())
    return _load(folder, _stamp(folder))


def hit_summary(hit: Mapping[str, Any]) -> str:
    """One line naming a hit: `Title [id]`."""
    return f"{hit.get('title', '')} [{hit.get('id', '')}]"
