"""Running a dataset against settings: index preparation, per-question records, the summary, configurations."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rag.config import Settings
from rag.errors import BackendError, ConfigError
from rag.eval import metrics
from rag.eval.datasets import EvalItem
from rag.eval.judge import Judge
from rag.types import Answer, Passage

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

# Named configurations for --compare; key=value pairs may follow them ("hybrid,k=3").
PRESETS: dict[str, dict[str, Any]] = {
    "dense": {"retrieval.hybrid": False, "retrieval.mmr": False},
    "hybrid": {"retrieval.hybrid": True, "retrieval.mmr": False},
    "mmr": {"retrieval.mmr": True},
    "extractive": {"answer.backend": "extractive"},
    "local": {"answer.backend": "local"},
    "judge": {"local.judge": "on"},
    "nojudge": {"local.judge": "off"},
    "openai": {"answer.backend": "openai"},
    "ollama": {"answer.backend": "ollama"},
}
# Short keys accepted in configurations; any dotted settings key (retrieval.rrf_k) works too.
ALIASES = {
    "k": "retrieval.top_k", "top_k": "retrieval.top_k", "hybrid": "retrieval.hybrid",
    "mmr": "retrieval.mmr", "mmr_lambda": "retrieval.mmr_lambda", "candidates": "retrieval.candidates",
    "rrf_k": "retrieval.rrf_k", "min_relevance": "retrieval.min_relevance",
    "backend": "answer.backend", "model": "answer.model", "base_url": "answer.base_url",
    "temperature": "answer.temperature", "max_tokens": "answer.max_tokens",
    "max_sentences": "answer.max_sentences", "support_threshold": "answer.support_threshold",
    "judge": "local.judge", "chunk_tokens": "chunking.chunk_tokens", "overlap_tokens": "chunking.overlap_tokens",
}
RATIO_METRICS = ("hit@{k}", "recall@{k}", "mrr", "ndcg@{k}", "token_f1", "rouge_l", "semantic_similarity",
                 "answer_contains", "groundedness", "citation_precision", "citation_recall",
                 "refusal_accuracy", "false_refusal_rate")
LATENCY_METRICS = ("latency_p50_ms", "latency_p95_ms")
JUDGE_METRICS = ("judge_faithfulness", "judge_correctness")
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of one question in the report file."""
        return {
            "id": self.id, "question": self.question, "answerable": self.answerable,
            "reference_answer": self.reference_answer, "answer": self.answer, "refused": self.refused,
            "latency_ms": round(self.latency_ms, 1), "retrieved": self.retrieved, "cited": self.cited,
            "metrics": {k: _round(v) for k, v in self.metrics.items()}, "error": self.error,
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of one run in the report file."""
        return {
            "label": self.label, "settings": self.settings, "k": self.k, "summary": self.summary,
            "judge_unparsable": self.judge_unparsable, "errors": self.errors,
            "seconds": round(self.seconds, 2), "questions": [r.to_dict() for r in self.records],
        }


# ------------------------------------------------------------------------- configurations
def parse_config(spec: str) -> dict[str, Any]:
    """Settings changes named by one --compare configuration.

    A configuration is a comma-separated list of presets (``dense``, ``hybrid``, ``mmr``,
    ``extractive``, ``openai``, ``ollama``) and ``key=value`` pairs, where a key is a short name
    from ``ALIASES`` (``k``, ``hybrid``, ``backend`` ...) or a dotted settings key
    (``retrieval.rrf_k``). Later items win: ``hybrid,k=3``, ``backend=openai,model=smol``.

    Raises:
        ConfigError: an unknown preset or key, or an empty configuration.
    """
    changes: dict[str, Any] = {}
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"Empty --compare configuration {spec!r}; use e.g. dense, hybrid or k=3.")
    for part in parts:
        if "=" not in part:
            if part.lower() not in PRESETS:
                raise ConfigError(
                    f"Unknown configuration {part!r} in {spec!r}; use a preset ({', '.join(PRESETS)}) "
                    "or key=value such as k=3, hybrid=false, backend=openai.")
            changes.update(PRESETS[part.lower()])
            continue
        key, _, raw = part.partition("=")
        changes[_settings_key(key.strip(), spec)] = _value(raw.strip())
    return changes


def configure(settings: Settings, spec: str) -> Settings:
    """``settings`` with one --compare configuration applied."""
    return settings.with_updates(**parse_config(spec))


def describe(settings: Settings) -> str:
    """A short label for a configuration: backend, k, dense/hybrid, mmr."""
    r = settings.retrieval
    return f"{settings.answer.backend} k={r.top_k} {'hybrid' if r.hybrid else 'dense'}{' mmr' if r.mmr else ''}"


def _settings_key(key: str, spec: str) -> str:
    dotted = ALIASES.get(key.lower(), key)
    section, _, leaf = dotted.partition(".")
    fields = Settings.model_fields
    if not leaf:
        if section in fields and not _is_section(fields[section].annotation):
            return section
    elif section in fields and _is_section(fields[section].annotation):
        annotation = fields[section].annotation
        if isinstance(annotation, type) and leaf in annotation.model_fields:
            return dotted
    raise ConfigError(
        f"Unknown setting {key!r} in --compare {spec!r}; use {', '.join(sorted(ALIASES))} "
        "or a dotted settings key such as retrieval.rrf_k.")


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in {"true", "yes", "on"}:
        return True
    if lowered in {"false", "no", "off"}:
        return False
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


# ------------------------------------------------------------------------------ index
def prepare_index(settings: Settings, *, corpus: Path | None = None, documents: dict[str, str] | None = None,
                  progress: Any = None) -> Settings:
    """Settings pointing at an index of the evaluation corpus, ingested (or reused) for the run.

    With ``corpus``, that folder is indexed into ``<data_dir>/eval/<hash>``, named after the
    folder and the index fingerprint, so the user's own index is never touched and an unchanged
    corpus is reused. Without it, ``documents`` (the paragraphs a SQuAD file brings) are written
    as .txt files into such a folder and indexed there. With neither, ``settings`` are returned
    as they are: the run uses the configured index.

    Raises:
        ConfigError: the corpus folder does not exist or nothing in it could be indexed.
    """
    if corpus is None and not documents:
        return settings
    from rag.indexer import Indexer

    fingerprint = settings.index_fingerprint()
    if corpus is not None:
        if not corpus.is_dir():
            raise ConfigError(f"Evaluation corpus {corpus} is not a folder. Pass --corpus DIR.")
        key = f"corpus|{corpus.resolve()}|{fingerprint}"
        folder = settings.data_dir / "eval" / _short_hash(key)
        corpus_dir = corpus.resolve()
    else:
        assert documents is not None
        content = hashlib.sha256()
        for name in sorted(documents):
            content.update(f"{name}\x00{documents[name]}\x00".encode())
        folder = settings.data_dir / "eval" / _short_hash(f"documents|{content.hexdigest()}|{fingerprint}")
        corpus_dir = folder / "corpus"
        _write_documents(corpus_dir, documents)
    # A Chroma server names collections by fingerprint alone: evaluating there would mix the
    # evaluation corpus into the user's collection, so evaluation indexes are always local.
    prepared = settings.with_updates(data_dir=str(folder), corpus_dir=str(corpus_dir), chroma_url="")
    report = Indexer(prepared, progress=progress).sync()
    for source, message in report.failed:
        logger.warning("evaluation corpus: %s not indexed: %s", source, message)
    if report.chunks_total == 0:
        raise ConfigError(f"Nothing in the evaluation corpus {corpus_dir} could be indexed.")
    logger.info("evaluation index %s: %s", folder, report.to_dict())
    return prepared


def _write_documents(corpus_dir: Path, documents: dict[str, str]) -> None:
    """Write documents, leaving unchanged files untouched and removing files no longer wanted."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        path = corpus_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for path in corpus_dir.iterdir():
        if path.is_file() and path.name not in documents:
            path.unlink()


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- running
def evaluate(items: Sequence[EvalItem], *, settings: Settings, progress: Progress | None = None,
             judge: Judge | None = None, label: str = "") -> EvalReport:
    """Ask every question with ``settings`` and score retrieval, answers, citations and refusals.

    ``progress(done, total)`` is called before the first question and after each one.
    Retrieval and answer metrics cover answerable questions only; refusal metrics use both
    kinds; latency is the wall time of ``ask``.

    Raises:
        FootnoteError: the index is missing or a setting is invalid. A backend failing on one
            question is recorded on that question (``error``) and the run goes on.
    """
    from rag.embeddings import get_embedder
    from rag.judge import support_checker
    from rag.pipeline import ask, retrieve_passages

    started = time.perf_counter()
    k = settings.retrieval.top_k
    embedder = get_embedder(settings.embedding_model, settings.embedding_batch_size)
    checker = support_checker(settings, embedder)
    threshold = checker.threshold_for(settings.answer.support_threshold)
    total = len(items)
    if progress:
        progress(0, total)
    if items:
        # Loads the store and keyword index so the first question's latency is not a cold start.
        retrieve_passages(items[0].question, settings=settings)
    records: list[QuestionRecord] = []
    unparsable = 0
    for done, item in enumerate(items, start=1):
        retrieval = retrieve_passages(item.question, settings=settings)
        error = ""
        mark = time.perf_counter()
        try:
            answer = ask(item.question, settings=settings)
        except BackendError as exc:
            logger.warning("question %s: %s", item.id, exc)
            answer, error = Answer(question=item.question, text=""), str(exc)
        latency = (time.perf_counter() - mark) * 1000
        record = _record(item, answer, retrieval.passages, latency, error, k=k)
        _score(record, item, answer, retrieval.passages, k=k, embedder=embedder, checker=checker,
               threshold=threshold)
        if judge is not None:
            unparsable += _judge(record, item, answer, retrieval.passages, judge)
        records.append(record)
        if progress:
            progress(done, total)
    summary = summarize(records, k=k, judge=judge is not None)
    return EvalReport(label=label or describe(settings), settings=settings_summary(settings), k=k,
                      records=records, summary=summary, judge_unparsable=unparsable,
                      seconds=time.perf_counter() - started)


def _record(item: EvalItem, answer: Answer, passages: Sequence[Passage], latency: float, error: str,
            *, k: int) -> QuestionRecord:
    found = metrics.matches([p.text for p in passages], item.reference_contexts)
    return QuestionRecord(
        id=item.id, question=item.question, answerable=item.answerable,
        reference_answer=item.reference_answer, answer=answer.text, refused=answer.refused,
        latency_ms=latency, error=error,
        retrieved=[{"rank": i, "source": p.source, "title": p.title, "start": p.start, "end": p.end,
                    "score": round(p.score, 4), "holds_reference": bool(refs)}
                   for i, (p, refs) in enumerate(zip(passages[:k], found), start=1)],
        cited=[{"marker": c.marker, "source": c.passage.source, "start": c.passage.start,
                "end": c.passage.end, "supported": c.supported, "support_score": round(c.support_score, 4)}
               for c in answer.citations],
    )


def _score(record: QuestionRecord, item: EvalItem, answer: Answer, passages: Sequence[Passage], *,
           k: int, embedder: Any, checker: Any, threshold: float) -> None:
    m = record.metrics
    m["refused"] = float(answer.refused)
    if not item.answerable:
        return
    if item.reference_contexts:
        found = metrics.matches([p.text for p in passages[:k]], item.reference_contexts)
        n = len(item.reference_contexts)
        m[f"hit@{k}"] = metrics.hit_at_k(found, k)
        m[f"recall@{k}"] = metrics.recall_at_k(found, n, k)
        m["mrr"] = metrics.reciprocal_rank(found)
        m[f"ndcg@{k}"] = metrics.ndcg_at_k(found, n, k)
    text = "" if answer.refused else metrics.strip_markers(answer.text)
    if item.reference_answer:
        m["token_f1"] = metrics.token_f1(text, item.reference_answer)
        m["rouge_l"] = metrics.rouge_l(text, item.reference_answer)
        if text:
            vectors = embedder.embed([text, item.reference_answer])
            m["semantic_similarity"] = metrics.cosine(vectors[0], vectors[1])
        else:
            m["semantic_similarity"] = 0.0
    if item.answers:
        m["answer_contains"] = float(metrics.answer_contains(text, item.answers))
    if answer.refused or record.error:
        return
    claims = [s for s in answer.sentences if s.supported is not None]
    m["groundedness"] = metrics.groundedness([s.supported for s in claims])
    by_marker = {c.marker: c.passage for c in answer.citations}
    pair_scores = [
        [checker.support(metrics.strip_markers(s.text), by_marker[n].text)[0] for n in s.markers if n in by_marker]
        for s in claims
    ]
    m["citation_recall"] = metrics.citation_recall(pair_scores, threshold)
    m["citation_precision"] = metrics.citation_precision(pair_scores, threshold)


def _judge(record: QuestionRecord, item: EvalItem, answer: Answer, passages: Sequence[Passage],
           judge: Judge) -> int:
    """Add the judge's scores to ``record``; return how many judge replies were unparsable."""
    if not item.answerable:
        return 0
    unparsable = 0
    if answer.refused or record.error:
        if item.reference_answer:
            record.metrics["judge_correctness"] = 0.0
        return 0
    faithful = judge.faithfulness(answer.text, [p.text for p in passages])
    if faithful is not None:
        record.metrics["judge_faithfulness"] = faithful.value
        unparsable += faithful.unparsable
    if item.reference_answer:
        correct = judge.correctness(item.question, answer.text, item.reference_answer)
        record.metrics["judge_correctness"] = correct.value
        unparsable += correct.unparsable
    return unparsable


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
