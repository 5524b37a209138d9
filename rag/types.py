"""Value types that cross module boundaries: Passage, Citation, Answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk, numbered for citation (``marker`` is the [n] the answer uses)."""

    marker: int
    id: str
    text: str
    source: str
    title: str
    score: float
    start: int
    end: int
    page: int | None = None
    authors: str = ""
    url: str = ""
    dense_score: float | None = None
    keyword_score: float | None = None


@dataclass(frozen=True)
class Citation:
    """A checked link from answer text to the passage it cites."""

    marker: int
    passage: Passage
    quote: str
    supported: bool
    support_score: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``python -m rag ask --json``."""
        p = self.passage
        return {
            "marker": self.marker,
            "source": p.source,
            "title": p.title,
            "authors": p.authors,
            "url": p.url,
            "page": p.page,
            "start": p.start,
            "end": p.end,
            "text": p.text,
            "quote": self.quote,
            "supported": self.supported,
            "support_score": round(self.support_score, 4),
            "score": round(p.score, 6),
        }


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer, the markers it carries and whether its passages support it.

    ``supported`` is None for sentences too short to be claims; ``attributed`` is True when the
    writer gave no marker, or cited passages that do not support the sentence, and the check
    attached the passage that does.
    """

    text: str
    markers: tuple[int, ...]
    supported: bool | None
    attributed: bool = False


@dataclass(frozen=True)
class Answer:
    """The result of ``ask``: text with [n] markers, checked citations, or a refusal."""

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    refused: bool = False
    closest: tuple[Passage, ...] = ()
    sentences: tuple[Sentence, ...] = ()
    backend: str = ""
    standalone_question: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    refusal_reason: str = ""
    judgement: dict[str, Any] = field(default_factory=dict)
    fallback: str = ""
    conversation: bool = False  # a greeting or question about Footnote, answered without the documents

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``python -m rag ask --json``."""
        return {
            "question": self.question,
            "standalone_question": self.standalone_question or self.question,
            "answer": self.text,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "closest": [
                {"source": p.source, "title": p.title, "page": p.page, "start": p.start,
                 "end": p.end, "text": p.text, "score": round(p.score, 6)}
                for p in self.closest
            ],
            "sentences": [
                {"text": s.text, "markers": list(s.markers), "supported": s.supported,
                 "attributed": s.attributed}
                for s in self.sentences
            ],
            "backend": self.backend,
            "refusal_reason": self.refusal_reason,
            "fallback": self.fallback,
            "conversation": self.conversation,
            "judgement": self.judgement,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


@dataclass(frozen=True)
class Status:
    """What ``stream`` is doing before the answer's first words (shown in place of the answer)."""

    text: str
