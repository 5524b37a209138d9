"""The `extractive` backend: no LLM; the answer is the passages' most relevant sentences, quoted exactly."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import numpy as np

from rag.embeddings import Embedder
from rag.text import content_words, coverage, holds_quote, sentences
from rag.types import Passage

# Weight of question-word coverage next to embedding similarity when scoring a sentence.
KEYWORD_WEIGHT = 0.3
# Sentences scoring below this share of the best one are left out: concise beats exhaustive.
RELATIVE_FLOOR = 0.75
# Two sentences this similar say the same thing; keep the first.
DUPLICATE_SIMILARITY = 0.9
MIN_WORDS = 4
FOLLOW_UP = re.compile(
    r"^\s*(and|but|also|so|then|what about|how about|why not|same for)\b|\b(it|its|they|them|their|"
    r"that|this|those|these|he|she|his|her|there)\b", re.IGNORECASE)


class ExtractiveBackend:
    """Composes an answer of at most ``max_sentences`` exact quotes, each followed by its marker."""

    name = "extractive"
    reads_judged_sentences = False

    def __init__(self, embedder: Embedder, *, max_sentences: int = 5) -> None:
        self.embedder = embedder
        self.max_sentences = max_sentences

    def generate(self, question: str, passages: Sequence[Passage], *, lead: str = "") -> Iterator[str]:
        """Yield chosen sentences one at a time, in order of relevance; the best-scored sentence
        that holds ``lead`` (the words the judge quoted as the answer) comes first."""
        candidates = [
            (p.marker, s.text) for p in passages for s in sentences(p.text)
            if len(s.text.split()) >= MIN_WORDS and not s.text.rstrip().endswith("?")
            and not _is_heading(s.text)
        ]
        if not candidates:
            return
        texts = [text for _, text in candidates]
        vectors = self.embedder.embed([question, *texts])
        query, sentence_vectors = vectors[0], vectors[1:]
        asked = set(content_words(question))
        scores = []
        for vector, text in zip(sentence_vectors, texts):
            scores.append(float(vector @ query) + KEYWORD_WEIGHT * coverage(asked, text))
        order = np.argsort(scores)[::-1]
        best = scores[int(order[0])]
        led = next((int(i) for i in order if holds_quote(texts[i], lead)), None) if lead else None
        chosen = [] if led is None else [led]
        for i in order:
            if len(chosen) >= self.max_sentences or scores[i] < RELATIVE_FLOOR * best:
                break
            if i in chosen or any(float(sentence_vectors[i] @ sentence_vectors[j]) > DUPLICATE_SIMILARITY for j in chosen):
                continue
            chosen.append(int(i))
        for n, i in enumerate(chosen):
            marker, text = candidates[i]
            yield ("" if n == 0 else " ") + f"{text} [{marker}]"

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """Carry the previous question's key terms into a follow-up that leans on it."""
        if not history or not _is_follow_up(question):
            return question
        previous = history[-1][0]
        have = set(content_words(question))
        carried = [w for w in dict.fromkeys(content_words(previous)) if w not in have][:8]
        return f"{question} ({' '.join(carried)})" if carried else question


def _is_heading(sentence: str) -> bool:
    """A title line: short and without end punctuation (a Markdown table row is not one)."""
    if sentence.lstrip().startswith("|"):
        return False
    return len(sentence.split()) < 12 and not re.search(r"[.!:;\"”’)\]]$", sentence.rstrip())


def _is_follow_up(question: str) -> bool:
    return bool(FOLLOW_UP.search(question)) or len(content_words(question)) < 3
