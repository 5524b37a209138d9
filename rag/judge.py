"""Answerability: one calibrated decision, for every backend, on whether the passages answer a question.

The evidence, combined by a logistic model fitted on calibration data only
(``evals/calibrate_judge.py`` picks the feature set by cross-validation and writes
``rag/calibration.json``):

- ``relevance`` and ``cosine``: retrieval's score of the best passage (``retrieval.relevance``);
- ``yes``: the local model's P(yes) to "do the passages contain the answer?", as a logit;
  ``grounded_yes``: the same, but 0 when the quote (below) is made up or an echo, since the
  model's "yes" then comes from its own knowledge, not from the passages;
- the model's quote of the words that answer, checked against the passages: ``quote`` (share of
  its words found as one run in a passage; of a short answer, share of its words found anywhere;
  a number matches only the whole number, so "10" is not found in "1,100"), and its kind, one of:
  ``verbatim`` (mostly found; a short answer wholly), ``made_up`` (a short answer, a name or a
  number, that the passages do not hold: the small model answering from its own knowledge, e.g.
  a year the passages never give, or a placeholder such as "10"), ``paraphrased`` (a longer
  answer in other words), ``echo`` (it names nothing the question did not: "Gosplan" for "Who
  chaired Gosplan?"), ``silent`` (it replied NONE, or nothing but function words such as "NOT
  NONE"); a bare Yes or No is none of these.

Questions below a cheap floor (retrieval's relevance, or the best passage's cosine) are refused
without asking the model.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.extractive import SentenceRanker
from rag.answer.prompt import TASK_JUDGE, TASK_QUOTE, sentence_messages, task_messages
from rag.citations import SupportCalibration, SupportChecker
from rag.config import Settings
from rag.embeddings import Embedder, embedder_for
from rag.local_model import LocalModel, get_local_model, is_available
from rag.retrieval import Retrieval
from rag.text import SHORT_ANSWER_WORDS, STOPWORDS, VERBATIM_SHARE, quote_share, sentences, tokens
from rag.types import Passage

logger = logging.getLogger(__name__)

CALIBRATION = Path(__file__).with_name("calibration.json")
FEATURES = ("relevance", "cosine", "yes", "grounded_yes", "quote", "verbatim", "made_up", "paraphrased", "echo",
            "silent")
# The judge reads only the sentences nearest the question, from the top passages: reading the
# prompt is the cost on a CPU (about 90 tokens/s on two cores), and the small model judges a few
# focused sentences better than whole passages (held-out refusal accuracy 0.24 -> 0.59).
JUDGE_PASSAGES = 5
JUDGE_SENTENCES = 6
GAP = " … "
QUOTE_TOKENS = 32
QUOTE_KINDS = ("verbatim", "made_up", "paraphrased", "echo", "silent")
NONE_REPLY = re.compile(r"^\W*none\b", re.IGNORECASE)
YES_NO_REPLY = re.compile(r"^\W*(?:yes|no)\W*$", re.IGNORECASE)
POSSESSIVE = re.compile(r"['’]s?$")


@dataclass(frozen=True)
class Weights:
    """A fitted logistic model over ``FEATURES``, its decision threshold and the cheap floor."""

    intercept: float
    coef: dict[str, float]
    threshold: float
    floor: float
    cosine_floor: float = 0.0  # the best passage's cosine below which a question is off-topic

    @property
    def asks_yes(self) -> bool:
        """Whether the fitted model uses the yes/no verdict (else that model call is skipped)."""
        return bool(self.coef.get("yes") or self.coef.get("grounded_yes"))

    def off_topic(self, relevance: float, cosine: float) -> bool:
        """Below either cheap floor (retrieval's relevance, the best passage's cosine): refused
        without asking the model."""
        return relevance < self.floor or cosine < self.cosine_floor

    def probability(self, features: dict[str, float]) -> float:
        """P(answerable) for one question's features."""
        z = self.intercept + sum(weight * features[name] for name, weight in self.coef.items())
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


@functools.lru_cache(maxsize=1)
def load_weights(path: Path = CALIBRATION) -> Weights:
    """The shipped judge calibration."""
    data = json.loads(path.read_text(encoding="utf-8"))["judge"]
    return Weights(intercept=float(data["intercept"]), coef={k: float(v) for k, v in data["coef"].items()},
                   threshold=float(data["threshold"]), floor=float(data["floor"]),
                   cosine_floor=float(data.get("cosine_floor", 0.0)))


@functools.lru_cache(maxsize=1)
def load_support_calibration(path: Path = CALIBRATION) -> SupportCalibration:
    """The shipped calibration of the model-assisted support check."""
    data = json.loads(path.read_text(encoding="utf-8"))["support"]
    return SupportCalibration(intercept=float(data["intercept"]), coef_yes=float(data["coef_yes"]),
                              coef_similarity=float(data["coef_similarity"]),
                              threshold=float(data["threshold"]))


def support_checker(settings: Settings, embedder: Embedder) -> SupportChecker:
    """The citation checker: model-assisted for paraphrases when the judge is on."""
    if judge_enabled(settings):
        return SupportChecker(embedder, model=get_local_model(settings),
                              calibration=load_support_calibration())
    return SupportChecker(embedder)


@dataclass(frozen=True)
class Verdict:
    """Whether to answer, how sure, and why (shown with a refusal)."""

    answerable: bool
    probability: float
    reason: str
    features: dict[str, float] = field(default_factory=dict)
    quote: str = ""
    seconds: float = 0.0
    shown: tuple[Passage, ...] = ()  # what the model read: the passages cut to their nearest sentences

    @property
    def lead(self) -> str:
        """The words the model quoted as the answer, when it answers and the passages hold them."""
        return self.quote if self.answerable and self.features.get("verbatim") else ""


def logit(p: float) -> float:
    """log(p / (1 - p)), clipped so a certain model does not dominate the sum."""
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def says_something(quote: str) -> bool:
    """Whether the reply holds a word to check: not NONE, not only function words ("NOT NONE")."""
    return not NONE_REPLY.match(quote) and any(w not in STOPWORDS and w != "none" for w in tokens(quote))


def quote_support(quote: str, passages: Sequence[Passage]) -> float:
    """Share of the quote the passages hold (``quote_share``; 0 for NONE)."""
    return quote_share(quote, [p.text for p in passages]) if says_something(quote) else 0.0


def quote_kind(quote: str, question: str, share: float) -> str:
    """What the model's quote is: verbatim, made_up, paraphrased, echo, silent, or "" (Yes/No)."""
    words = tokens(quote)
    if YES_NO_REPLY.match(quote):
        return ""
    if not says_something(quote):
        return "silent"
    asked = {_base(w) for w in tokens(question)}
    new_words = [w for w in words if w not in STOPWORDS and _base(w) not in asked]
    if len(new_words) <= len(words) // 8:  # a short answer adds none; a restatement one in eight
        return "echo"
    if len(words) <= SHORT_ANSWER_WORDS:
        return "verbatim" if share == 1.0 else "made_up"
    return "verbatim" if share >= VERBATIM_SHARE else "paraphrased"


def _base(word: str) -> str:
    """A word without its possessive or plural ending, so "Dikötter's" matches "Dikötter"."""
    return POSSESSIVE.sub("", word).rstrip("s")


def quote_evidence(quote: str, question: str, passages: Sequence[Passage]) -> dict[str, float]:
    """The quote's features: its share found in a passage, and its kind as 0/1 flags."""
    share = quote_support(quote, passages)
    kind = quote_kind(quote, question, share)
    return {"quote": share, **{name: float(kind == name) for name in QUOTE_KINDS}}


def grounded_yes(yes: float, evidence: dict[str, float]) -> float:
    """The yes/no logit, or 0 when the quote shows the model answering from its own knowledge
    (a made-up answer) or naming only the question's own words (an echo): its "yes" then says
    what the model knows, not what the passages hold."""
    return 0.0 if evidence["made_up"] or evidence["echo"] else yes


def nearest_sentences(question: str, passages: Sequence[Passage], embedder: Embedder,
                      k: int = JUDGE_SENTENCES) -> list[Passage]:
    """The passages cut down to the ``k`` sentences nearest the question, kept in their order.

    Each passage keeps its number; one that holds none of the ``k`` is left out.
    """
    spans = [(n, s.text) for n, p in enumerate(passages) for s in sentences(p.text)]
    if not spans:
        return list(passages)
    sims = embedder.embed([text for _, text in spans]) @ embedder.embed([question])[0]
    keep = set(np.argsort(-sims, kind="stable")[:k].tolist())
    out = []
    for n, p in enumerate(passages):
        chosen = [text for j, (m, text) in enumerate(spans) if m == n and j in keep]
        if chosen:
            out.append(replace(p, text=GAP.join(chosen)))
    return out


class AnswerabilityJudge:
    """Decides, from the retrieved passages, whether to answer or refuse."""

    def __init__(self, model: LocalModel, weights: Weights, embedder: Embedder) -> None:
        self.model = model
        self.weights = weights
        self.embedder = embedder

    def read(self, question: str, found: Retrieval) -> list[Passage]:
        """What the model is shown: the sentences nearest the question in the top passages."""
        return nearest_sentences(question, found.passages[:JUDGE_PASSAGES], self.embedder)

    def features(self, question: str, found: Retrieval, *, ask_yes: bool = True,
                 shown: Sequence[Passage] | None = None) -> tuple[dict[str, float], str]:
        """The model-based evidence plus retrieval's, and the quote the model gave.

        ``ask_yes=False`` skips the yes/no call (its feature is then 0) when the weights ignore it;
        ``shown`` is what ``read`` gave, when already known.
        """
        passages = list(shown) if shown is not None else self.read(question, found)
        yes = self.model.judge(task_messages(question, passages, TASK_JUDGE)).yes if ask_yes else 0.5
        quote = self.model.complete(task_messages(question, passages, TASK_QUOTE),
                                    max_tokens=QUOTE_TOKENS, stop=["\n"]).strip()
        evidence = quote_evidence(quote, question, passages)
        return {"relevance": found.relevance, "cosine": found.best_similarity, "yes": logit(yes),
                "grounded_yes": grounded_yes(logit(yes), evidence), **evidence}, quote

    def decide(self, question: str, found: Retrieval) -> Verdict:
        """Answer or refuse; plainly off-topic questions never reach the model."""
        started = time.perf_counter()
        if not found.passages or self.weights.off_topic(found.relevance, found.best_similarity):
            return Verdict(False, 0.0, "nothing in the documents is close to this question",
                           {"relevance": found.relevance, "cosine": found.best_similarity})
        shown = self.read(question, found)
        feats, quote = self.features(question, found, ask_yes=self.weights.asks_yes, shown=shown)
        probability = self.weights.probability(feats)
        answerable = probability >= self.weights.threshold
        if answerable:
            reason = "the passages answer this question"
        elif feats["made_up"]:
            reason = "the model's answer is not in the passages (it came from the model, not the documents)"
        elif not feats["verbatim"]:
            reason = "the model found no words in the passages that answer it"
        else:
            reason = "the passages touch on the topic but do not answer the question"
        logger.debug("judge %s p=%.3f %s", answerable, probability, feats)
        return Verdict(answerable, probability, reason, feats, quote, time.perf_counter() - started, tuple(shown))


class RelevanceRule:
    """The model-free decision: retrieval relevance against ``retrieval.min_relevance``."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def decide(self, question: str, found: Retrieval) -> Verdict:
        """Answer when relevance reaches the threshold."""
        ok = found.covers(self.threshold)
        reason = "the passages match the question" if ok else "no passage matches the question's words closely"
        return Verdict(ok, found.relevance, reason, {"relevance": found.relevance, "cosine": found.best_similarity})


def judge_enabled(settings: Settings) -> bool:
    """Whether the model judge decides refusals (``local.judge``; auto: when the model is installed)."""
    mode = settings.local.judge
    return mode == "on" or (mode == "auto" and is_available(settings))


def ranks_quotes(settings: Settings) -> bool:
    """Whether quoted answers ask the local model which sentences answer (``local.quote_ranking``)."""
    return settings.local.quote_ranking == "model" and judge_enabled(settings)


def sentence_ranker(settings: Settings) -> SentenceRanker | None:
    """The local model's P(yes) that a sentence answers the question, for quoted answers
    (``local.quote_ranking``); None when the judge is off, so no model is loaded for it."""
    if not ranks_quotes(settings):
        return None
    model = get_local_model(settings)

    def rank(question: str, texts: Sequence[str]) -> list[float]:
        return [model.judge(sentence_messages(question, text)).yes for text in texts]

    return rank


def get_judge(settings: Settings) -> AnswerabilityJudge | RelevanceRule:
    """The refusal decision these settings ask for."""
    if judge_enabled(settings):
        return AnswerabilityJudge(get_local_model(settings), load_weights(), embedder_for(settings))
    return RelevanceRule(settings.retrieval.min_relevance)


def describe(verdict: Verdict) -> dict[str, Any]:
    """The verdict as JSON for answers, reports and the UI."""
    return {"answerable": verdict.answerable, "probability": round(verdict.probability, 4),
            "reason": verdict.reason, "quote": verdict.quote,
            "features": {k: round(v, 4) for k, v in verdict.features.items()}}
