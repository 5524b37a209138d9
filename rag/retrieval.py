"""Question -> ranked, numbered Passages: dense + BM25 fused by reciprocal rank, optional MMR."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from rag.config import Settings
from rag.embeddings import Embedder
from rag.store import Store, StoredChunk
from rag.text import content_words, coverage, mentions, sentences, specifics
from rag.types import Passage

logger = logging.getLogger(__name__)


# Relevance mixes the best passage's cosine with how much of the question it covers; every
# name or number of the question found in no passage halves it. Near-topic questions the corpus
# cannot answer ("the Soviet grain harvest in 1937") score as high as answerable ones on cosine
# alone; their specifics are what is missing. Weights and threshold: evals/calibrate.py.
COSINE_WEIGHT = 0.5
MISSING_SPECIFIC_FACTOR = 0.5
# A re-ranked candidate's score: this share of its own cosine, the rest its closest sentence's.
PASSAGE_WEIGHT = 0.5


@dataclass(frozen=True)
class Retrieval:
    """Ranked passages for a question, and the evidence used to decide whether to refuse."""

    passages: list[Passage]
    best_similarity: float
    relevance: float

    def covers(self, threshold: float) -> bool:
        """Whether the corpus seems to hold an answer: relevance reaches ``threshold``."""
        return bool(self.passages) and self.relevance >= threshold


def relevance(question: str, passages: Sequence[Passage]) -> float:
    """How likely the passages answer ``question``, in [0, 1] (see COSINE_WEIGHT above)."""
    if not passages:
        return 0.0
    asked = set(content_words(question))
    best = 0.0
    for p in passages:
        best = max(best, COSINE_WEIGHT * max(p.score, 0.0) + (1 - COSINE_WEIGHT) * coverage(asked, p.text))
    found = " ".join(p.text for p in passages)
    missing = [w for w in specifics(question) if not mentions(found, w)]
    return best * MISSING_SPECIFIC_FACTOR ** len(missing)


def fuse(rankings: Sequence[Sequence[str]], *, k: int) -> dict[str, float]:
    """Reciprocal rank fusion: each list adds 1 / (k + rank) to the ids it ranks."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + rank)
    return scores


def keyword_counts(scores: Sequence[float], lead: float) -> bool:
    """Whether the BM25 ranking joins the fusion: when its best match stands out, ``lead`` times
    the runner-up's score (the question shares rare words with a passage). A question asked in
    other words than the documents' gets flat BM25 scores, a ranking of passages that merely
    share its common words; dense search then ranks alone."""
    return len(scores) < 2 or scores[1] <= 0 or scores[0] >= lead * scores[1]


def by_closest_sentence(query: np.ndarray, ranking: list[str], n: int, store: Store,
                        embedder: Embedder) -> list[str]:
    """``ranking`` with its first ``n`` chunks re-ranked by ``PASSAGE_WEIGHT`` of their cosine to
    ``query`` plus the rest of their closest sentence's."""
    head = store.get(ranking[:n], with_vectors=True)
    spans = [(c.id, s.text) for c in head for s in sentences(c.text)]
    if not spans:
        return ranking
    closest: dict[str, float] = {}
    for (chunk_id, _), sim in zip(spans, embedder.embed([t for _, t in spans]) @ query):
        closest[chunk_id] = max(closest.get(chunk_id, -1.0), float(sim))
    score = {c.id: PASSAGE_WEIGHT * float(np.dot(query, c.embedding)) + (1 - PASSAGE_WEIGHT) * closest[c.id]
             for c in head if c.embedding is not None and c.id in closest}
    reranked = sorted(score, key=lambda i: score[i], reverse=True)
    return reranked + [i for i in ranking if i not in score]


def retrieve(question: str, *, settings: Settings, store: Store, embedder: Embedder,
             k: int | None = None, sources: Sequence[str] | None = None,
             hybrid: bool | None = None, mmr: bool | None = None) -> Retrieval:
    """Rank passages for ``question``; ``k``, ``sources``, ``hybrid`` and ``mmr`` override settings."""
    opts = settings.retrieval
    k = k or opts.top_k
    hybrid = opts.hybrid if hybrid is None else hybrid
    mmr = opts.mmr if mmr is None else mmr
    sources = list(sources) if sources else None
    query = embedder.embed([question])[0]
    # Ranks and vectors only: the texts are read below for the few passages that are kept.
    dense = store.dense_search(query, k=opts.candidates, sources=sources, with_vectors=True, with_text=False)
    rankings = [[c.id for c in dense]]
    if opts.sentence_rerank:
        rankings = [by_closest_sentence(query, [c.id for c in dense], opts.sentence_rerank, store, embedder)]
    keyword: dict[str, float] = {}
    if hybrid:
        keyword = dict(store.keyword_search(question, k=opts.candidates, sources=sources))
        rankings.append(list(keyword))
    fused = fuse(rankings if keyword_counts(list(keyword.values()), opts.keyword_lead) else rankings[:1],
                 k=opts.rrf_k)
    order = sorted(fused, key=lambda i: fused[i], reverse=True)
    vectors = {c.id: c.embedding for c in dense if c.embedding is not None}
    by_id = _head(order, max(k * 3, k) if mmr else k, store, vectors)
    candidates = list(by_id)
    similarity = {i: float(np.dot(query, vectors[i])) for i in candidates if i in vectors}
    if mmr and len(candidates) > k:
        picked = maximal_marginal_relevance(
            query, [vectors[i].tolist() for i in candidates], lambda_mult=opts.mmr_lambda, k=k)
        candidates = [candidates[n] for n in picked]
    passages = []
    for marker, chunk_id in enumerate(candidates[:k], start=1):
        chunk = by_id[chunk_id]
        meta = chunk.metadata
        passages.append(Passage(
            marker=marker, id=chunk_id, text=chunk.text, source=str(meta.get("source", "")),
            title=str(meta.get("title", "")), score=similarity.get(chunk_id, 0.0),
            start=int(meta.get("start", 0)), end=int(meta.get("end", 0)),
            page=int(meta["page"]) if "page" in meta else None,
            authors=str(meta.get("authors", "")), url=str(meta.get("url", "")),
            dense_score=similarity.get(chunk_id), keyword_score=keyword.get(chunk_id),
        ))
    logger.debug("retrieved %s", [(p.id[:8], round(p.score, 3)) for p in passages])
    best = max((p.score for p in passages), default=0.0)
    return Retrieval(passages=passages, best_similarity=best, relevance=relevance(question, passages))


def _head(order: list[str], want: int, store: Store, vectors: dict[str, np.ndarray]) -> dict[str, StoredChunk]:
    """The first ``want`` chunks of ``order`` read from the store, skipping any whose text repeats
    an earlier one (the same passage stored in two documents); ``vectors`` gains the vectors read."""
    kept: dict[str, StoredChunk] = {}
    seen: set[str] = set()
    start = 0
    while len(kept) < want and start < len(order):
        ids = order[start : start + want - len(kept)]
        start += len(ids)
        for chunk in store.get(ids, with_vectors=any(i not in vectors for i in ids)):
            if chunk.embedding is not None:
                vectors.setdefault(chunk.id, chunk.embedding)
            key = " ".join(chunk.text.split()).lower()
            if key not in seen:
                seen.add(key)
                kept[chunk.id] = chunk
    return kept
