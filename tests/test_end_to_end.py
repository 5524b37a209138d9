"""From files to a cited answer, as a user gets there: `python ingest.py`, then `python -m rag ask`."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from tests.helpers import copy_fixture_corpus, run_ingest, run_script

OFFLINE = {"FOOTNOTE_ANSWER__BACKEND": "extractive", "FOOTNOTE_LOCAL__JUDGE": "off"}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The fixture corpus, indexed by `python ingest.py --json` (read-only for the tests)."""
    root = tmp_path_factory.mktemp("end-to-end")
    corpus, data = root / "corpus", root / "data"
    copy_fixture_corpus(corpus)
    result = run_ingest("--json", corpus=corpus, data=data, env=OFFLINE)
    return SimpleNamespace(corpus=corpus, data=data, result=result)


def _ask(indexed: SimpleNamespace, question: str) -> dict[str, Any]:
    asked = run_script("-m", "rag", "ask", question, "--json", corpus=indexed.corpus, data=indexed.data,
                       env=OFFLINE)
    assert asked.returncode == 0, asked.stderr
    answer: dict[str, Any] = json.loads(asked.stdout)
    return answer


@pytest.mark.slow
def test_ingest_indexes_every_file(indexed: SimpleNamespace) -> None:
    assert indexed.result.returncode == 0, indexed.result.stderr
    summary = json.loads(indexed.result.stdout)
    assert summary["added"] == len(list(indexed.corpus.iterdir())) and summary["failed"] == []


@pytest.mark.slow
def test_files_become_a_cited_answer_through_the_cli(indexed: SimpleNamespace) -> None:
    answer = _ask(indexed, "When did the Zollverein come into force?")

    assert not answer["refused"] and "1 January 1834" in answer["answer"]
    assert answer["citations"], answer
    for citation in answer["citations"]:
        assert f"[{citation['marker']}]" in answer["answer"]
        assert citation["quote"] in citation["text"]
    cited = next(c for c in answer["citations"] if c["source"] == "zollverein.txt")
    source_text = (indexed.corpus / "zollverein.txt").read_text(encoding="utf-8")
    assert source_text[cited["start"]:cited["end"]] == cited["text"]
    assert cited["supported"]


@pytest.mark.slow
def test_question_outside_the_corpus_is_refused_through_the_cli(indexed: SimpleNamespace) -> None:
    answer = _ask(indexed, "Who won the 1958 FIFA World Cup?")

    assert answer["refused"] and not answer["citations"] and answer["closest"]
