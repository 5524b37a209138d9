"""Citation integrity: parse [n] markers, drop invented ones, check each sentence against its passage."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.answer.prompt import SYSTEM
from rag.embeddings import Embedder
from rag.local_model import LocalModel
from rag.text import MARKER, content_words, coverage, entities, markers_in, sentences, strip_markers, tokens_lower
from rag.types import Citation, Passage, Sentence

logger = logging.getLogger(__name__)

# Weight of embedding similarity against lexical coverage in the support score; a claim's
# names and numbers missing from the passage each halve it (invented names are the typical
# small-model hallucination, and embeddings barely notice them).
SEMANTIC_WEIGHT = 0.5
MISSING_ENTITY_FACTOR = 0.5
# Sentences with fewer content words than this are connective tissue, not claims.
MIN_CLAIM_WORDS = 4
# A sentence about "the passages" or "instructions" (the prompt's words for its own material;
# users and documents speak of documents) whose content words come at least ECHO_SHARE from the
# answer instructions restates them: no passage supports a claim about the prompt.
INSTRUCTION_WORDS = frozenset(content_words(SYSTEM))
PROMPT_TERMS = frozenset(content_words("passages passage instructions instruction"))
ECHO_SHARE = 0.75


@dataclass(frozen=True)
class CheckedAnswer:
    """Answer text with invalid markers removed, its sentences judged, and its citations."""

    text: str
    sentences: tuple[Sentence, ...]
    citations: tuple[Citation, ...]
    dropped_markers: tuple[int, ...]


@dataclass(frozen=True)
class SupportCalibration:
    """Logistic combination of the model's P(yes) (as a logit) and the similarity score."""

    intercept: float
    coef_yes: float
    coef_similarity: float
    threshold: float

    def probability(self, yes: float, similarity: float) -> float:
        """P(supported) from the model's verdict and the similarity score."""
        p = min(max(yes, 1e-4), 1 - 1e-4)
        z = self.intercept + self.coef_yes * math.log(p / (1 - p)) + self.coef_similarity * similarity
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


class SupportChecker:
    """Scores how well passages support claims; caches passage sentence vectors per instance."""

    def __init__(self, embedder: Embedder, *, model: LocalModel | None = None,
                 calibration: SupportCalibration | None = None) -> None:
        self.embedder = embedder
        self.model = model
        self.calibration = calibration
        self._vectors: dict[str, tuple[list[str], np.ndarray]] = {}
        self._claims: dict[str, np.ndarray] = {}

    def support(self, claim: str, passage_text: str) -> tuple[float, str]:
        """Support score in [0, 1] of ``claim`` by ``passage_text``, and the passage's best sentence.

        A verbatim quote scores 1 without any model. Otherwise, with a local model, the score is
        the calibrated probability that the passage entails the claim (the model's yes/no verdict
        combined with the similarity score); without one, the similarity score itself.
        """
        claim = strip_markers(claim)
        if claim and _normal(claim) and _normal(claim) in _normal(passage_text):
            return 1.0, _sentence_containing(passage_text, claim) or claim
        score, quote = self.similarity(claim, passage_text)
        if self.model is None or self.calibration is None or not quote:
            return score, quote
        from rag.answer.prompt import support_messages

        yes = self.model.judge(support_messages(claim, passage_text)).yes
        return self.calibration.probability(yes, score), quote

    def threshold_for(self, default: float) -> float:
        """The support threshold for this checker's scores: calibrated when a model takes part."""
        if self.model is not None and self.calibration is not None:
            return self.calibration.threshold
        return default

    def similarity(self, claim: str, passage_text: str) -> tuple[float, str]:
        """The model-free score: embedding similarity, word coverage, missing names and numbers."""
        claim = strip_markers(claim)
        units, vectors = self._units(passage_text)
        if not units or not claim:
            return 0.0, ""
        claim_vector = self._claims.get(claim)
        if claim_vector is None:
            claim_vector = self._claims[claim] = self.embedder.embed([claim])[0]
        sims = vectors @ claim_vector
        best = int(np.argmax(sims))
        quote = units[best]
        covered = coverage(content_words(claim), passage_text)
        score = SEMANTIC_WEIGHT * max(float(sims[best]), 0.0) + (1 - SEMANTIC_WEIGHT) * covered
        missing = entities(claim) - tokens_lower(passage_text)
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
          threshold: float, attribute: bool = True) -> CheckedAnswer:
    """Drop markers that match no passage, then judge every sentence against the passages it cites.

    With ``attribute``, a claim the writer left uncited, or cited to passages that do not support
    it, gets the marker of the passage that does (flagged ``attributed``); one no passage
    supports keeps its markers and stays unsupported.
    """
    by_marker = {p.marker: p for p in passages}
    threshold = checker.threshold_for(threshold)
    dropped: list[int] = []

    def keep_valid(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        valid = [n for n in numbers if n in by_marker]
        dropped.extend(n for n in numbers if n not in by_marker)
        return f"[{', '.join(str(n) for n in dict.fromkeys(valid))}]" if valid else ""

    # Until nothing changes: dropping the inner marker of "[0[0]]" leaves a new one, "[0]".
    cleaned, previous = MARKER.sub(keep_valid, text), text
    while cleaned != previous:
        cleaned, previous = MARKER.sub(keep_valid, cleaned), cleaned
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned).strip()
    if dropped:
        logger.info("dropped citation markers that match no passage: %s", sorted(set(dropped)))
    judged: list[Sentence] = []
    best: dict[int, tuple[float, str]] = {}
    pieces: list[str] = []
    cursor = 0
    for span in sentences(cleaned):
        pieces.append(cleaned[cursor:span.start])
        cursor = span.end
        text = span.text
        cited = list(dict.fromkeys(markers_in(text)))
        claim = strip_markers(text)
        attributed = False
        if echoes_instructions(claim, [by_marker[m].text for m in cited] or [p.text for p in passages]):
            logger.info("an answer sentence restates the prompt's instructions; not supported")
            judged.append(Sentence(claim, (), False))
            pieces.append(claim)
            continue
        if not cited and len(content_words(claim)) < MIN_CLAIM_WORDS:
            judged.append(Sentence(text, (), None))
            pieces.append(text)
            continue
        scores = [checker.support(claim, by_marker[m].text) for m in cited]
        if attribute and not any(score >= threshold for score, _ in scores):
            # Uncited, or its passages do not support it (small models often write the wrong
            # number): attach the passage that does, if one does. The cheap score picks the
            # passage; only that one is put to the full check.
            others = [p for p in passages if p.marker not in cited]
            top = max(others, key=lambda p: checker.similarity(claim, p.text)[0], default=None)
            found = checker.support(claim, top.text) if top is not None else (0.0, "")
            if top is not None and found[0] >= threshold:
                cited, scores, attributed = [top.marker], [found], True
                text = _with_marker(strip_markers(text).strip(), top.marker)
        if not cited:
            judged.append(Sentence(text, (), False))
            pieces.append(text)
            continue
        for marker, (score, quote) in zip(cited, scores):
            if score > best.get(marker, (-1.0, ""))[0]:
                best[marker] = (score, quote)
        judged.append(Sentence(text, tuple(cited), max(score for score, _ in scores) >= threshold, attributed))
        pieces.append(text)
    pieces.append(cleaned[cursor:])
    cleaned = "".join(pieces)
    order = list(dict.fromkeys(m for s in judged for m in s.markers))
    citations = tuple(
        Citation(marker=m, passage=by_marker[m], quote=best[m][1], supported=best[m][0] >= threshold,
                 support_score=best[m][0])
        for m in order
    )
    return CheckedAnswer(cleaned, tuple(judged), citations, tuple(dropped))


def echoes_instructions(claim: str, passage_texts: Sequence[str]) -> bool:
    """Whether ``claim`` restates the answer prompt's own rules ("I only use facts stated in the
    passages"): it speaks of the passages or instructions, mostly in the prompt's words, and is
    not a word-for-word quote of a passage."""
    words = content_words(claim)
    if not words or not PROMPT_TERMS & set(words):
        return False
    if sum(w in INSTRUCTION_WORDS for w in words) < ECHO_SHARE * len(words):
        return False
    normal = _normal(claim)
    return not any(normal in _normal(text) for text in passage_texts)


def _with_marker(sentence: str, marker: int) -> str:
    """``sentence`` with `` [marker]`` placed before its final punctuation."""
    match = re.search(r"([.!?][\"'”’)]*)$", sentence)
    if match:
        return f"{sentence[: match.start()]} [{marker}]{match.group(1)}"
    return f"{sentence} [{marker}]"


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _sentence_containing(passage_text: str, claim: str) -> str:
    target = _normal(claim)
    for span in sentences(passage_text):
        normal = _normal(span.text)
        if normal and (target in normal or normal in target):
            return span.text
    return ""


def _single_sentence(units: list[str], vectors: np.ndarray, claim_vector: np.ndarray) -> str:
    singles = [i for i, u in enumerate(units) if i < (len(units) + 1) // 2]
    best = max(singles, key=lambda i: float(vectors[i] @ claim_vector))
    return units[best]
