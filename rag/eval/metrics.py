"""Evaluation metrics as pure functions: retrieval, answer overlap, citations, refusals, latency.

Nothing here calls a model. Scores that need one (embeddings, the support check) are computed
by the runner and handed in as numbers.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

# A reference context counts as found in a chunk that covers this share of its word tokens:
# chunk borders cut sentences, and a chunk holding most of the reference did find it.
COVERAGE = 0.8
# A chunk lying mostly inside a reference context also found it: a reference longer than a
# chunk (a whole SQuAD paragraph) is never held by one chunk, yet a chunk cut from it is on target.
# "Inside" means within runs of RUN consecutive words that the reference also has, so words the
# two share by chance (articles, the topic's names) never add up to containment.
CONTAINED = 0.6
RUN = 4
WORD = re.compile(r"\w+")
ARTICLES = re.compile(r"\b(a|an|the)\b")
PUNCTUATION = set(string.punctuation)


# ------------------------------------------------------------------------------ text
def normalize_whitespace(text: str) -> str:
    """Runs of whitespace collapsed to one space, ends stripped."""
    return " ".join(text.split())


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in PUNCTUATION)
    text = ARTICLES.sub(" ", text)
    return " ".join(text.split())


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, underscore)."""
    return WORD.findall(text.lower())


# ------------------------------------------------------------------------- retrieval
def context_found(reference: str, chunk: str, *, coverage: float = COVERAGE,
                  contained: float = CONTAINED) -> bool:
    """Whether a retrieved ``chunk`` retrieves the ``reference`` context.

    It does when it contains the reference verbatim (whitespace and case normalised), when it
    covers at least ``coverage`` of the reference's word tokens (counted with multiplicity), or
    when the reference contains most of it: at least ``contained`` of the chunk's word tokens lie
    in runs of ``RUN`` consecutive words that the reference also holds (chunks shorter than
    ``RUN`` words never count this way).
    """
    ref = normalize_whitespace(reference).lower()
    if not ref:
        return False
    if ref in normalize_whitespace(chunk).lower():
        return True
    ref_tokens, chunk_tokens = words(reference), words(chunk)
    if not ref_tokens:
        return False
    shared = sum((Counter(ref_tokens) & Counter(chunk_tokens)).values())
    if shared / len(ref_tokens) >= coverage:
        return True
    return len(chunk_tokens) >= RUN and _share_inside(chunk_tokens, ref_tokens) >= contained


def _share_inside(part: list[str], whole: list[str]) -> float:
    """Share of ``part``'s tokens lying in a run of ``RUN`` consecutive tokens that ``whole`` also has."""
    grams = {tuple(whole[i:i + RUN]) for i in range(len(whole) - RUN + 1)}
    inside = [False] * len(part)
    for i in range(len(part) - RUN + 1):
        if tuple(part[i:i + RUN]) in grams:
            inside[i:i + RUN] = [True] * RUN
    return sum(inside) / len(part)


def matches(retrieved: Sequence[str], references: Sequence[str], *,
            coverage: float = COVERAGE, contained: float = CONTAINED) -> list[set[int]]:
    """For each retrieved chunk (in rank order), the indices of the references it retrieves."""
    return [{j for j, ref in enumerate(references)
             if context_found(ref, chunk, coverage=coverage, contained=contained)}
            for chunk in retrieved]


def hit_at_k(found: Sequence[set[int]], k: int) -> float:
    """1.0 when any of the first ``k`` chunks holds any reference context, else 0.0.

    ``found`` is the output of ``matches``.
    """
    return 1.0 if any(found[:k]) else 0.0


def recall_at_k(found: Sequence[set[int]], n_references: int, k: int) -> float:
    """Share of the ``n_references`` reference contexts held by at least one of the first ``k`` chunks."""
    if n_references <= 0:
        raise ValueError("recall needs at least one reference context")
    hit: set[int] = set().union(*found[:k]) if found[:k] else set()
    return len(hit) / n_references


def reciprocal_rank(found: Sequence[set[int]]) -> float:
    """1/rank of the first chunk holding any reference context, 0.0 if none does (MRR averages it)."""
    for rank, refs in enumerate(found, start=1):
        if refs:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(found: Sequence[set[int]], n_references: int, k: int) -> float:
    """Normalised discounted cumulative gain of the first ``k`` chunks, binary gains.

    A chunk gains 1 when it holds a reference context that no higher-ranked chunk held (so
    near-duplicate chunks do not count twice), discounted by log2(rank + 1). The ideal ranking
    puts one chunk per reference first: IDCG = sum of 1/log2(i + 1) for i = 1..min(k, n_references).
    """
    if n_references <= 0:
        raise ValueError("nDCG needs at least one reference context")
    seen: set[int] = set()
    dcg = 0.0
    for rank, refs in enumerate(found[:k], start=1):
        new = refs - seen
        if new:
            dcg += 1.0 / math.log2(rank + 1)
            seen |= new
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, n_references) + 1))
    return dcg / ideal


# ---------------------------------------------------------------------------- answers
def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 between an answer and the reference answer (after ``normalize_answer``)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: LCS of the normalised tokens over prediction (precision) and reference (recall)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    lcs = lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def cosine(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Cosine similarity of two vectors (0.0 when either is zero)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / norm if norm else 0.0


def answer_contains(answer: str, acceptable: Iterable[str]) -> bool:
    """Whether the normalised answer contains one of the normalised acceptable answers.

    Both sides go through ``normalize_answer``; a match must start at a word boundary but may
    run into a suffix, because removing punctuation turns "Madison's" into "madisons".
    """
    text = f" {normalize_answer(answer)}"
    return any(f" {norm}" in text for norm in (normalize_answer(a) for a in acceptable) if norm)


# -------------------------------------------------------------------------- citations
def groundedness(supported: Sequence[bool | None]) -> float | None:
    """Share of an answer's claims the answer path marked supported by the passages they cite.

    ``supported`` holds one flag per sentence (``Sentence.supported``): True or False for a
    claim (a claim citing nothing is False), None for a sentence too short to be a claim, which
    is left out. None when the answer has no claims.
    """
    claims = [s for s in supported if s is not None]
    if not claims:
        return None
    return sum(1 for s in claims if s) / len(claims)


def citation_recall(pair_scores: Sequence[Sequence[float]], threshold: float) -> float | None:
    """ALCE citation recall of one answer: share of its sentences supported by their citations.

    ``pair_scores[i]`` holds the support score of sentence i against each passage it cites
    (empty when it cites nothing). A sentence is supported when its cited passages together
    support it; the support check scores a sentence against a passage's best sentence, so
    "together" is the best single passage: max(scores) >= threshold. A sentence citing
    nothing is unsupported. None for an answer without sentences.
    """
    if not pair_scores:
        return None
    return sum(1 for scores in pair_scores if scores and max(scores) >= threshold) / len(pair_scores)


def citation_precision(pair_scores: Sequence[Sequence[float]], threshold: float) -> float | None:
    """ALCE citation precision of one answer: share of (sentence, cited passage) pairs that support.

    ALCE calls a citation irrelevant when it does not support its sentence alone and removing it
    does not change whether the rest support it. With max-combined support (see
    ``citation_recall``), removing a non-supporting citation never changes the outcome, so a
    citation is precise exactly when its own score >= threshold. None when nothing is cited.
    """
    pairs = [score for scores in pair_scores for score in scores]
    if not pairs:
        return None
    return sum(1 for s in pairs if s >= threshold) / len(pairs)


# --------------------------------------------------------------------- refusals, time
def refusal_accuracy(refused: Sequence[bool], answerable: Sequence[bool]) -> float | None:
    """Share of unanswerable questions that were refused (None when every question is answerable)."""
    flags = [r for r, a in zip(refused, answerable, strict=True) if not a]
    return sum(flags) / len(flags) if flags else None


def false_refusal_rate(refused: Sequence[bool], answerable: Sequence[bool]) -> float | None:
    """Share of answerable questions that were wrongly refused (None when none is answerable)."""
    flags = [r for r, a in zip(refused, answerable, strict=True) if a]
    return sum(flags) / len(flags) if flags else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
