"""Hybrid retrieval: fusion, keyword index consistency, source restriction, MMR."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import Settings
from rag.embeddings import Embedder
from rag.indexer import Indexer
from rag.pipeline import ask, retrieve_passages
from rag.retrieval import fuse, keyword_counts
from rag.store import Store

DISTRACTORS = {
    "pumps-1.txt": "Centrifugal pumps in water treatment plants need regular maintenance. Worn impellers "
                   "reduce flow and raise energy use, so operators inspect them every quarter.",
    "pumps-2.txt": "Pump maintenance schedules balance downtime against wear. Seals and bearings are the "
                   "parts that fail most often in industrial pumps.",
    "pumps-3.txt": "Vibration monitoring warns of pump failures early. Maintenance teams replace bearings "
                   "before they seize.",
    "pumps-4.txt": "Energy audits of pumping stations often find oversized motors. Variable speed drives "
                   "cut electricity costs of pump systems.",
    "pumps-5.txt": "A failing pump shows rising temperature, noise and leaks; each failure mode has a "
                   "maintenance procedure in the plant handbook.",
}
# The answer names a rare code and is worded unlike the question: dense search ranks the
# on-topic distractors above it, BM25 finds the code.
TARGET = ("report.txt", "Report QZ-19 covers the Harbour Road station. Inspectors found corrosion of "
                        "the intake grilles.")


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def _rank(passages: list, source: str) -> int:
    sources = [p.source for p in passages]
    return sources.index(source) + 1 if source in sources else 99


def test_rrf_rewards_agreement_between_rankings() -> None:
    scores = fuse([["a", "b", "c"], ["c", "a"]], k=60)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert max(scores, key=scores.__getitem__) == "a"


def test_fusion_beats_dense_only_on_a_rare_keyword(settings: Settings, embedder: Embedder) -> None:
    _write(settings.corpus_dir, {**DISTRACTORS, TARGET[0]: TARGET[1]})
    Indexer(settings, embedder=embedder).sync()
    question = "What pump failure does QZ-19 describe?"
    dense = retrieve_passages(question, settings=settings, hybrid=False, k=6).passages
    hybrid = retrieve_passages(question, settings=settings, hybrid=True, k=6).passages
    assert _rank(hybrid, "report.txt") < _rank(dense, "report.txt")
    assert hybrid[0].keyword_score is not None


def test_keyword_index_follows_add_and_remove(settings: Settings, embedder: Embedder, tmp_path: Path) -> None:
    _write(settings.corpus_dir, DISTRACTORS)
    indexer = Indexer(settings, embedder=embedder)
    indexer.sync()
    store = Store(settings)
    assert store.keyword_search("Harbour Road grilles", k=5) == []
    outside = tmp_path / "incoming" / TARGET[0]
    outside.parent.mkdir()
    outside.write_text(TARGET[1], encoding="utf-8")
    indexer.add([str(outside)])
    other_process = Store(settings)  # a second reader, as another process would open it
    for reader in (store, other_process):
        hits = reader.keyword_search("Harbour Road grilles", k=5)
        assert [reader.get([i])[0].metadata["source"] for i, _ in hits] == ["report.txt"]
    indexer.remove(["report.txt"])
    assert store.keyword_search("Harbour Road grilles", k=5) == []
    assert other_process.keyword_search("Harbour Road grilles", k=5) == []
    assert store.keywords.folder.exists()


def test_keyword_index_is_rebuilt_from_chroma_without_embedding(settings: Settings, embedder: Embedder) -> None:
    _write(settings.corpus_dir, {**DISTRACTORS, TARGET[0]: TARGET[1]})
    Indexer(settings, embedder=embedder).sync()
    store = Store(settings)
    import shutil

    shutil.rmtree(store.keywords.folder)  # lost or never built here: Chroma's text suffices
    fresh = Store(settings)
    hits = fresh.keyword_search("QZ-19 grilles", k=3)
    assert hits and fresh.get([hits[0][0]])[0].metadata["source"] == "report.txt"


def test_sources_restrict_retrieval(settings: Settings, embedder: Embedder) -> None:
    _write(settings.corpus_dir, {**DISTRACTORS, TARGET[0]: TARGET[1]})
    Indexer(settings, embedder=embedder).sync()
    for hybrid in (True, False):
        found = retrieve_passages("pump maintenance and bearings", settings=settings, hybrid=hybrid,
                                  sources=["pumps-4.txt", "report.txt"], k=5)
        assert found.passages
        assert {p.source for p in found.passages} <= {"pumps-4.txt", "report.txt"}


def test_passages_are_numbered_from_one_and_carry_offsets(settings: Settings, embedder: Embedder) -> None:
    _write(settings.corpus_dir, {**DISTRACTORS, TARGET[0]: TARGET[1]})
    Indexer(settings, embedder=embedder).sync()
    found = retrieve_passages("pump bearings", settings=settings, k=4)
    assert [p.marker for p in found.passages] == [1, 2, 3, 4]
    for p in found.passages:
        text = (settings.corpus_dir / p.source).read_text(encoding="utf-8")
        assert text[p.start:p.end] == p.text


def test_mmr_diversifies_near_duplicates(settings: Settings, embedder: Embedder) -> None:
    base = DISTRACTORS["pumps-2.txt"]
    _write(settings.corpus_dir, {
        "copy-a.txt": base, "copy-b.txt": base.replace("industrial", "factory"),
        "copy-c.txt": base.replace("wear", "abrasion"), **DISTRACTORS,
    })
    Indexer(settings, embedder=embedder).sync()
    question = "Which pump parts fail most often?"
    plain = retrieve_passages(question, settings=settings, k=3, mmr=False).passages
    diverse = retrieve_passages(question, settings=settings, k=3, mmr=True).passages
    def copies(ps: list) -> int:
        return sum(p.source.startswith("copy-") or p.source == "pumps-2.txt" for p in ps)
    assert copies(diverse) < copies(plain)


def test_keyword_ranking_joins_only_when_its_best_match_stands_out() -> None:
    assert keyword_counts([9.0, 3.0, 2.5], lead=1.75)  # a rare word shared with one passage
    assert not keyword_counts([2.3, 2.1, 2.0], lead=1.75)  # common words only: flat scores
    assert keyword_counts([2.3, 2.1], lead=1.0)  # 1: always fused
    assert keyword_counts([4.0], lead=1.75) and keyword_counts([], lead=1.75)


# One sentence of a long report answers the question; the rest of it is about other things, so
# as a whole it is further from the question than short passages on the question's topic.
LONG_REPORT = ("long-report.txt",
               "The harbour board met in March to approve the ferry timetable for the summer season. "
               "Members discussed the budget for the new visitor centre and the parking charges at the "
               "marina. A dredging contract for the outer channel was awarded to a local firm. Staff "
               "numbers at the harbour office will stay the same next year. Salt water corroded the "
               "pump impellers at the Harbour Road station, which is why they wore out within months. "
               "The board thanked the volunteers who organised the regatta.")


def test_closest_sentence_lifts_a_long_passage_with_one_answering_sentence(
        settings: Settings, embedder: Embedder) -> None:
    _write(settings.corpus_dir, {**DISTRACTORS, LONG_REPORT[0]: LONG_REPORT[1]})
    Indexer(settings, embedder=embedder).sync()
    question = "Why did the impellers of the Harbour Road pumps wear out so fast?"
    plain = retrieve_passages(question, settings=settings, hybrid=False, k=6).passages
    reranked = retrieve_passages(question, settings=settings.with_updates(**{"retrieval.sentence_rerank": 6}),
                                 hybrid=False, k=6).passages
    assert _rank(reranked, "long-report.txt") < _rank(plain, "long-report.txt")
    # Scores stay the passages' own cosine: the judge and the relevance rule read them as before.
    assert {p.id: p.score for p in reranked} == pytest.approx({p.id: p.score for p in plain})


def test_an_accepted_question_is_answered_from_passages_reranked_by_sentence(
        settings: Settings, embedder: Embedder) -> None:
    _write(settings.corpus_dir, {**DISTRACTORS, LONG_REPORT[0]: LONG_REPORT[1]})
    Indexer(settings, embedder=embedder).sync()
    question = "Why did the impellers of the Harbour Road pumps wear out so fast?"
    accepting = settings.with_updates(**{"retrieval.min_relevance": 0.0, "retrieval.answer_rerank": 10})
    judged = retrieve_passages(question, settings=accepting, hybrid=False, k=3).passages
    assert "long-report.txt" not in {p.source for p in judged}
    answer = ask(question, settings=accepting, hybrid=False, k=3)
    assert "long-report.txt" in {c.passage.source for c in answer.citations}
    assert "Salt water corroded" in answer.text
    unchanged = ask(question, settings=accepting.with_updates(**{"retrieval.answer_rerank": 0}), hybrid=False, k=3)
    assert "long-report.txt" not in {c.passage.source for c in unchanged.citations}
