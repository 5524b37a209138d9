"""Running a dataset against settings: ask every question once, score it, and compare configurations."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import BackendError
from rag.eval import metrics
from rag.eval.configs import configure, describe
from rag.eval.datasets import EvalItem
from rag.eval.index import prepare_index
from rag.eval.judge import Judge
from rag.eval.records import EvalReport, QuestionRecord, settings_summary, summarize
from rag.text import strip_markers
from rag.types import Answer, Passage

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def evaluate(items: Sequence[EvalItem], *, settings: Settings, progress: Progress | None = None,
             judge: Judge | None = None, label: str = "", collections: Sequence[str] | None = None) -> EvalReport:
    """Ask every question with ``settings`` and score retrieval, answers, citations and refusals.

    Only the documents of ``collections`` are searched when named (``pipeline.scope``).
    ``progress(done, total)`` is called before the first question and after each one.
    Retrieval and answer metrics cover answerable questions only; refusal metrics use both
    kinds; latency is the wall time of ``ask``.

    Raises:
        FootnoteError: the index is missing or a setting is invalid. A backend failing on one
            question is recorded on that question (``error``) and the run goes on.
    """
    from rag.judge import support_checker
    from rag.embeddings import embedder_for
    from rag.pipeline import ask, reading_passages, retrieve_passages, scope

    started = time.perf_counter()
    sources = scope(settings, collections=collections)
    k = settings.retrieval.top_k
    embedder = embedder_for(settings)  # the answer path's embedder (torch or onnx-int8), loaded once
    checker = support_checker(settings, embedder)
    threshold = checker.threshold_for(settings.answer.support_threshold)
    total = len(items)
    if progress:
        progress(0, total)
    if items:
        # Loads the store and keyword index so the first question's latency is not a cold start.
        retrieve_passages(items[0].question, settings=settings, sources=sources)
    records: list[QuestionRecord] = []
    unparsable = 0
    for done, item in enumerate(items, start=1):
        error = ""
        mark = time.perf_counter()
        # One retrieval per question: the answer is written from the passages that are scored.
        retrieval = retrieve_passages(item.question, settings=settings, sources=sources)
        retrieved_s = time.perf_counter() - mark
        try:
            answer = ask(item.question, settings=settings, retrieval=retrieval, sources=sources)
        except BackendError as exc:
            logger.warning("question %s: %s", item.id, exc)
            answer, error = Answer(question=item.question, text=""), str(exc)
        latency = (time.perf_counter() - mark) * 1000
        # The retrieval was done here, outside ask(): its time and the whole answer's are ours.
        answer.timings.update(retrieve_s=retrieved_s, total_s=latency / 1000)
        record = _record(item, answer, retrieval.passages, latency, error, k=k)
        # What an accepted answer is written from (retrieval.answer_rerank), for every answerable
        # question, so its hit@k compares with the judged passages' (deterministic: the same
        # passages ask() read).
        reading = reading_passages(item.question, retrieval, settings=settings, k=None, sources=sources,
                                   hybrid=None, mmr=None) if item.answerable else retrieval
        _score(record, item, answer, retrieval.passages, k=k, embedder=embedder, checker=checker,
               threshold=threshold, reading=reading.passages)
        if judge is not None:
            unparsable += _judge(record, item, answer, retrieval.passages, judge)
        records.append(record)
        if progress:
            progress(done, total)
    summary = summarize(records, k=k, judge=judge is not None)
    summary_of_settings = settings_summary(settings) | ({"collections": list(collections)} if collections else {})
    return EvalReport(label=label or describe(settings), settings=summary_of_settings, k=k,
                      records=records, summary=summary, judge_unparsable=unparsable,
                      seconds=time.perf_counter() - started)


def _record(item: EvalItem, answer: Answer, passages: Sequence[Passage], latency: float, error: str,
            *, k: int) -> QuestionRecord:
    found = metrics.matches([p.text for p in passages], item.reference_contexts)
    return QuestionRecord(
        id=item.id, question=item.question, answerable=item.answerable,
        reference_answer=item.reference_answer, answer=answer.text, refused=answer.refused,
        latency_ms=latency, error=error, timings=dict(answer.timings), judgement=dict(answer.judgement),
        fallback=answer.fallback,
        retrieved=[{"rank": i, "source": p.source, "title": p.title, "start": p.start, "end": p.end,
                    "score": round(p.score, 4), "holds_reference": bool(refs)}
                   for i, (p, refs) in enumerate(zip(passages[:k], found), start=1)],
        cited=[{"marker": c.marker, "source": c.passage.source, "start": c.passage.start,
                "end": c.passage.end, "supported": c.supported, "support_score": round(c.support_score, 4)}
               for c in answer.citations],
    )


def _score(record: QuestionRecord, item: EvalItem, answer: Answer, passages: Sequence[Passage], *,
           k: int, embedder: Any, checker: Any, threshold: float, reading: Sequence[Passage] = ()) -> None:
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
        if reading:
            read = metrics.matches([p.text for p in reading[:k]], item.reference_contexts)
            m[f"answer_hit@{k}"] = metrics.hit_at_k(read, k)
    text = "" if answer.refused else strip_markers(answer.text)
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
        [checker.support(strip_markers(s.text), by_marker[n].text)[0] for n in s.markers if n in by_marker]
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


def compare(items: Sequence[EvalItem], base: Settings, specs: Sequence[str], *, corpus: Path | None = None,
            documents: dict[str, str] | None = None, judge: Judge | None = None,
            bar: Callable[[str], Any] | None = None, collections: Sequence[str] | None = None) -> list[EvalReport]:
    """One report per --compare configuration (or one for ``base`` when there are none), each
    searching only ``collections`` when named.

    Configurations sharing an index fingerprint share one evaluation index (see ``prepare_index``);
    ``bar(label)`` returns a context manager with an ``update(done, total)`` progress method.
    """
    configs = [(spec, configure(base, spec)) for spec in specs] or [(describe(base), base)]
    prepared: dict[str, Settings] = {}
    reports = []
    for label, settings in configs:
        key = settings.index_fingerprint()
        if key not in prepared:
            prepared[key] = prepare_index(settings, corpus=corpus, documents=documents)
        index = prepared[key]
        run_settings = settings.with_updates(data_dir=str(index.data_dir), corpus_dir=str(index.corpus_dir),
                                             chroma_url=index.chroma_url)
        if bar is None:
            reports.append(evaluate(items, settings=run_settings, judge=judge, label=label,
                                    collections=collections))
            continue
        with bar(label) as shown:
            reports.append(evaluate(items, settings=run_settings, progress=shown.update, judge=judge,
                                    label=label, collections=collections))
    return reports
