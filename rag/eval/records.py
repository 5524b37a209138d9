"""What an evaluation run produces: per-question records, the run's report and its summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rag.config import Settings
from rag.eval import metrics

RATIO_METRICS = ("hit@{k}", "recall@{k}", "mrr", "ndcg@{k}", "answer_hit@{k}", "token_f1", "rouge_l",
                 "semantic_similarity", "answer_contains", "groundedness", "citation_precision", "citation_recall",
                 "refusal_accuracy", "false_refusal_rate")
LATENCY_METRICS = ("latency_p50_ms", "latency_p95_ms")
JUDGE_METRICS = ("judge_faithfulness", "judge_correctness")
# Stages of an answer timed by the pipeline (``Answer.timings``), reported as p50/p95 per run.
STAGES = ("retrieve_s", "judge_s", "first_token_s", "generate_s", "check_s", "total_s")
# Metrics where lower is better (the gate reads their thresholds as maxima).
LOWER_IS_BETTER = frozenset({"false_refusal_rate", *LATENCY_METRICS})


def metric_names(k: int, *, judge: bool = False) -> list[str]:
    """The summary's metric keys in report order, with ``k`` filled in (``hit@5``)."""
    names = [m.format(k=k) for m in RATIO_METRICS] + list(LATENCY_METRICS)
    return names + (list(JUDGE_METRICS) if judge else [])


@dataclass
class QuestionRecord:
    """What happened to one question: what was retrieved, the answer, and its metrics."""

    id: str
    question: str
    answerable: bool
    reference_answer: str
    answer: str
    refused: bool
    latency_ms: float
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    cited: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    error: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    judgement: dict[str, Any] = field(default_factory=dict)  # the refusal judge's verdict: why
    fallback: str = ""  # set when an LLM writer's answer was replaced by the passages' own sentences

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of one question in the report file."""
        return {
            "id": self.id, "question": self.question, "answerable": self.answerable,
            "reference_answer": self.reference_answer, "answer": self.answer, "refused": self.refused,
            "latency_ms": round(self.latency_ms, 1), "retrieved": self.retrieved, "cited": self.cited,
            "metrics": {k: _round(v) for k, v in self.metrics.items()}, "error": self.error,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "judgement": self.judgement, "fallback": self.fallback,
        }


@dataclass
class EvalReport:
    """One configuration's run over a dataset: per-question records and the summary."""

    label: str
    settings: dict[str, Any]
    k: int
    records: list[QuestionRecord]
    summary: dict[str, float | int | None]
    judge_unparsable: int = 0
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        """Questions whose answer failed (a backend error), counted in the metrics as empty answers."""
        return sum(1 for r in self.records if r.error)

    @property
    def stages(self) -> dict[str, dict[str, float | int]]:
        """p50 and p95 in ms of each timed stage, over the questions that reached it."""
        out: dict[str, dict[str, float | int]] = {}
        for stage in STAGES:
            values = [r.timings[stage] * 1000 for r in self.records if not r.error and stage in r.timings]
            p50, p95 = metrics.percentile(values, 50), metrics.percentile(values, 95)
            if p50 is not None and p95 is not None:
                out[stage.removesuffix("_s")] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "n": len(values)}
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of one run in the report file."""
        return {
            "label": self.label, "settings": self.settings, "k": self.k, "summary": self.summary,
            "stages": self.stages, "judge_unparsable": self.judge_unparsable, "errors": self.errors,
            "seconds": round(self.seconds, 2), "questions": [r.to_dict() for r in self.records],
        }


def summarize(records: Sequence[QuestionRecord], *, k: int, judge: bool = False) -> dict[str, float | int | None]:
    """The summary of a run: each metric averaged over the questions it applies to, plus ``n``.

    A per-question metric left unset (not applicable) is skipped; a metric that applies to no
    question is None.
    """
    summary: dict[str, float | int | None] = {}
    for name in metric_names(k, judge=judge):
        if name in LATENCY_METRICS:
            continue
        if name in ("refusal_accuracy", "false_refusal_rate"):
            continue
        summary[name] = _round(metrics.mean(r.metrics.get(name) for r in records))
    refused = [r.refused for r in records]
    answerable = [r.answerable for r in records]
    summary["refusal_accuracy"] = _round(metrics.refusal_accuracy(refused, answerable))
    summary["false_refusal_rate"] = _round(metrics.false_refusal_rate(refused, answerable))
    latencies = [r.latency_ms for r in records if not r.error]
    p50, p95 = metrics.percentile(latencies, 50), metrics.percentile(latencies, 95)
    summary["latency_p50_ms"] = None if p50 is None else round(p50, 1)
    summary["latency_p95_ms"] = None if p95 is None else round(p95, 1)
    ordered: dict[str, float | int | None] = {name: summary[name] for name in metric_names(k, judge=judge)}
    ordered["n"] = len(records)
    return ordered


def settings_summary(settings: Settings) -> dict[str, Any]:
    """The settings that shape results, for the report (no secrets)."""
    return {
        "backend": settings.answer.backend, "model": settings.answer.model,
        "top_k": settings.retrieval.top_k, "hybrid": settings.retrieval.hybrid,
        "mmr": settings.retrieval.mmr, "mmr_lambda": settings.retrieval.mmr_lambda,
        "min_relevance": settings.retrieval.min_relevance,
        "support_threshold": settings.answer.support_threshold,
        "embedding_model": settings.embedding_model, "chunk_tokens": settings.chunking.chunk_tokens,
        "overlap_tokens": settings.chunking.overlap_tokens, "index": settings.index_fingerprint(),
        "corpus_dir": str(settings.corpus_dir), "data_dir": str(settings.data_dir),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
