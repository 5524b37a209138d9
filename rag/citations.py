"""Citation integrity: parse [n] markers, drop invented ones, check each sentence against its passage."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.embeddings import Embedder
from rag.text import MARKER, content_words, markers_in, sentences, strip_markers
from rag.types import Citation, Passage, Sentence

logger = logging.getLogger(__name__)

# Weight of embedding similarity against lexical coverage in the support score; a claim's
# names and numbers missing from the passage each halve it (invented names are the typical
# small-model hallucination, and embeddings barely notice them).
SEMANTIC_WEIGHT = 0.5
MISSING_ENTITY_FACTOR = 0.5
# Sentences with fewer content words than this are connective tissue, not claims.
MIN_CLAIM_WORDS = 4
ENTITY = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-zà-ÿ]+|\d[\d,.]*)\b")


@dataclass(frozen=True)
class CheckedAnswer:
    """Answer text with invalid markers removed, its sentences judged, and its citations."""

    text: str
    sentences: tuple[Sentence, ...]
    citations: tuple[Citation, ...]
    dropped_markers: tuple[int, ...]


class SupportChecker:
    """Scores how well passages support claims; caches passage sentence vectors per instance."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._vectors: dict[str, tuple[list[str], np.ndarray]] = {}

    def support(self, claim: str, passage_text: str) -> tuple[float, str]:
        """Support score in [0, 1] of ``claim`` by ``passage_text``, and the passage's best sentence."""
        claim = strip_markers(claim)
        units, vectors = self._units(passage_text)
        if not units or not claim:
            return 0.0, ""
        claim_vector = self.embedder.embed([claim])[0]
        sims = vectors @ claim_vector
        best = int(np.argmax(sims))
        quote = units[best]
        if _normal(claim) in _normal(passage_text):
            return 1.0, _sentence_containing(passage_text, claim) or quote
        words = content_words(claim)
        passage_words = set(content_words(passage_text))
        coverage = sum(w in passage_words for w in words) / len(words) if words else 0.0
        score = SEMANTIC_WEIGHT * max(float(sims[best]), 0.0) + (1 - SEMANTIC_WEIGHT) * coverage
        missing = _entities(claim) - _entities_lower(passage_text)
        score *= MISSING_ENTITY_FACTOR ** len(missing)
        if len(quote) > 400 or quote not in passage_text:
            quote = _single_sentence(units, vectors, claim_vector)
        return min(score, 1.0), quote

    def _units(self, passage_text: str) -> tuple[list[str], np.ndarray]:
        cached = self._vectors.get(passage_text)
        if cached is None:
            sents = [s.text for s in sentences(passage_text)]
            # Pairs of neighbouring sentences too: a claim often merges two.
            units = sents + [f"{a} {b}" for a, b in zip(sents, sents[1:])]
            cached = (units, self.embedder.embed(units) if units else np.zeros((0, 1)))
            self._vectors[passage_text] = cached
        return cached


def support(sentence: str, passage_text: str, *, embedder: Embedder) -> tuple[float, str]:
    """Support score of one claim by one passage and the supporting sentence (see ``SupportChecker``)."""
    return SupportChecker(embedder).support(sentence, passage_text)


def check(text: str, passages: Sequence[Passage], *, checker: SupportChecker,
          threshold: float) -> CheckedAnswer:
    """Drop markers that match no passage, then judge every sentence against the passages it cites."""
    by_marker = {p.marker: p for p in passages}
    dropped: list[int] = []

    def keep_valid(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        valid = [n for n in numbers if n in by_marker]
        dropped.extend(n for n in numbers if n not in by_marker)
        return f"[{', '.join(str(n) for n in dict.fromkeys(valid))}]" if valid else ""

    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", MARKER.sub(keep_valid, text)).strip()
    if dropped:
        logger.info("dropped citation markers that match no passage: %s", sorted(set(dropped)))
    judged: list[Sentence] = []
    best: dict[int, tuple[float, str]] = {}
    for span in sentences(cleaned):
        cited = list(dict.fromkeys(markers_in(span.text)))
        claim = strip_markers(span.text)
        if not cited:
            is_claim = len(content_words(claim)) >= MIN_CLAIM_WORDS
            judged.append(Sentence(span.text, (), False if is_claim else None))
            continue
        scores = []
        for marker in cited:
            score, quote = checker.support(claim, by_marker[marker].text)
            scores.append(score)
            if score > best.get(marker, (-1.0, ""))[0]:
                best[marker] = (score, quote)
        judged.append(Sentence(span.text, tuple(cited), max(scores) >= threshold))
    order = list(dict.fromkeys(m for s in judged for m in s.markers))
    citations = tuple(
        Citation(marker=m, passage=by_marker[m], quote=best[m][1], supported=best[m][0] >= threshold,
                 support_score=best[m][0])
        for m in order
    )
    return CheckedAnswer(cleaned, tuple(judged), citations, tuple(dropped))


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _sentence_containing(passage_text: str, claim: str) -> str:
    target = _normal(claim)
    for span in sentences(passage_text):
        if target in _normal(span.text) or _normal(span.text) in target:
            return span.text
    return ""


def _single_sentence(units: list[str], vectors: np.ndarray, claim_vector: np.ndarray) -> str:
    singles = [i for i, u in enumerate(units) if i < (len(units) + 1) // 2]
    best = max(singles, key=lambda i: float(vectors[i] @ claim_vector))
    return units[best]


def _entities(text: str) -> set[str]:
    """Names and numbers in a claim (capitalised words not opening the sentence, digits)."""
    return {m.lower().rstrip(".,") for m in ENTITY.findall(strip_markers(text))}


def _entities_lower(text: str) -> set[str]:
    return {w.lower().rstrip(".,") for w in re.findall(r"\b\w[\w,.]*\b", text)}
