"""The `extractive` backend: no LLM; the answer is the passages' most relevant sentences, quoted exactly."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

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
# With a sentence ranker (the local model's "does this sentence answer the question?"), it reads
# the embedding's best candidates and the answer quotes the ones it rates highest. Chosen on the
# calibration half (evals/paraphrase.jsonl): the quotes hold the reference for 36 of 48 accepted
# questions, against 30 for up to five sentences chosen by embedding; 8 candidates: 33.
RANKED_CANDIDATES = 10
RANKED_SENTENCES = 3
# Scores each sentence for the question (higher answers it better).
SentenceRanker = Callable[[str, Sequence[str]], Sequence[float]]
FOLLOW_UP = re.compile(
    r"^\s*(and|but|also|so|then|what about|how about|why not|same for)\b|\b(it|its|they|them|their|"
    r"that|this|those|these|he|she|his|her|there)\b", re.IGNORECASE)


class ExtractiveBackend:
    """Composes an answer of at most ``max_sentences`` exact quotes, each followed by its marker."""

    name = "extractive"
    reads_judged_sentences = False

    def __init__(self, embedder: Embedder, *, max_sentences: int = 5, ranker: SentenceRanker | None = None) -> None:
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.ranker = ranker

    def generate(self, question: str, passages: Sequence[Passage], *, lead: str = "") -> Iterator[str]:
        """Yield chosen sentences one at a time, in order of relevance (the ranker's, when there is
        one); the best-scored sentence that holds ``lead`` (the words the judge quoted as the
        answer) comes first."""
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
        order = [int(i) for i in np.argsort(scores)[::-1]]
        led = next((i for i in order if holds_quote(texts[i], lead)), None) if lead else None
        if self.ranker is not None:
            shortlist = order[:RANKED_CANDIDATES]
            rated = self.ranker(question, [texts[i] for i in shortlist])
            order = [shortlist[j] for j in np.argsort(-np.asarray(rated, dtype=float), kind="stable")]
            limit, floor = min(self.max_sentences, RANKED_SENTENCES), float("-inf")
        else:
            limit, floor = self.max_sentences, RELATIVE_FLOOR * scores[order[0]]
        chosen = [] if led is None else [led]
        for i in order:
            if len(chosen) >= limit or scores[i] < floor:
                break
            if i in chosen or any(float(sentence_vectors[i] @ sentence_vectors[j]) > DUPLICATE_SIMILARITY for j in chosen):
                continue
            chosen.append(i)
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
