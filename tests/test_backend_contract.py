"""The contract every registered answer backend keeps, run against each one.

`openai` answers from a real llama.cpp server on loopback; `local` loads the bundled model (slow,
skipped where its parts are not installed); `ollama` needs an Ollama server, which speaks its own
protocol that llama.cpp does not serve, so it is skipped with that reason; `scripted` (the tests'
stand-in) must keep the contract too, or tests built on it would prove nothing.
"""

from __future__ import annotations

import pytest

from rag.answer import backend_names, get_backend
from rag.config import Settings
from rag.embeddings import Embedder
from rag.local_model import part_files, resolve_path
from rag.pipeline import ask, retrieve_passages
from tests.helpers import written_from

QUESTION = "Which book argues that moving labour out of agriculture caused the collapse?"
SCRIPTED_ANSWER = "Chris Bramall argues labour was diverted from agriculture to industry [1]."
HISTORY = [("Why did the Great Leap Forward fail?", "Labour shortages in agriculture [1].")]
SLOW = {"local", "openai", "ollama"}
BACKENDS = [pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else [])
            for name in [*backend_names(), "scripted"]]


@pytest.fixture(params=BACKENDS)
def backend_settings(request: pytest.FixtureRequest, seeded: Settings) -> Settings:
    """Seeded settings answering with one backend, its server or model ready."""
    name = request.param
    if name == "ollama":
        pytest.skip("no Ollama server on loopback (llama.cpp does not serve Ollama's /api/chat)")
    if name == "openai":
        return seeded.with_updates(**{"answer.backend": "openai", "answer.model": "smollm2",
                                      "answer.base_url": request.getfixturevalue("llama_server"),
                                      "answer.max_tokens": 120})
    if name == "local":
        if part_files() is None:
            pytest.skip("the local model parts are not installed (bash .ci/install)")
        model_dir = request.getfixturevalue("local_model_dir")
        path = resolve_path(seeded.with_updates(data_dir=model_dir))
        return seeded.with_updates(**{"answer.backend": "local", "local.model_path": str(path),
                                      "answer.max_tokens": 120})
    if name == "scripted":
        request.getfixturevalue("scripted").script(SCRIPTED_ANSWER)
    return seeded.with_updates(**{"answer.backend": name})


def test_backend_is_found_under_its_registered_name(backend_settings: Settings, embedder: Embedder) -> None:
    backend = get_backend(backend_settings, embedder=embedder)
    assert backend.name == backend_settings.answer.backend


def test_backend_streams_text_pieces_for_relevant_passages(backend_settings: Settings,
                                                          embedder: Embedder) -> None:
    backend = get_backend(backend_settings, embedder=embedder)
    passages = retrieve_passages(QUESTION, settings=backend_settings).passages
    pieces = list(backend.generate(QUESTION, passages))
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert "".join(pieces).strip()


def test_backend_answers_cite_only_retrieved_passages(backend_settings: Settings) -> None:
    answer = ask(QUESTION, settings=backend_settings)
    # A writer that cites nothing on an answerable question is replaced by quotes, and says so.
    assert answer.backend == ("extractive" if answer.fallback else backend_settings.answer.backend)
    retrieved = written_from(QUESTION, backend_settings)
    assert {c.marker for c in answer.citations} <= set(retrieved)
    for citation in answer.citations:
        assert citation.passage == retrieved[citation.marker]
    for sentence in answer.sentences:
        assert set(sentence.markers) <= set(retrieved), sentence
    assert answer.refused or answer.citations, "an answer that is not a refusal cites its passages"


def test_backend_rewrite_keeps_a_first_question_and_answers_a_follow_up(backend_settings: Settings,
                                                                        embedder: Embedder) -> None:
    backend = get_backend(backend_settings, embedder=embedder)
    assert backend.rewrite("Plain question?", []) == "Plain question?"
    follow_up = backend.rewrite("And the Soviet side?", HISTORY)
    assert isinstance(follow_up, str) and follow_up.strip()
