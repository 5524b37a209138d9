"""The bundled local LLM: hash-checked assembly, the answerability judge, the local backend, sharing.

These tests load the real Qwen2.5-Coder-1.5B model (about 2 GB resident, a few seconds a call on
two cores), so they are few; the file is skipped only where the model parts are not installed.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.answer import get_backend
from rag.answer.prompt import TASK_JUDGE, TASK_QUOTE, task_messages
from rag.config import Settings
from rag.embeddings import Embedder, embedder_for
from rag.errors import ConfigError
from rag.indexer import Indexer
from rag.answer.extractive import RANKED_SENTENCES
from rag.eval.metrics import answer_contains
from rag.judge import AnswerabilityJudge, get_judge, sentence_ranker
from rag.local_model import MODEL_FILE, MODEL_SIZE, bundled_path, get_local_model, part_files, resolve_path
from rag.pipeline import ask, retrieve_passages, stream
from rag.text import holds_quote, sentences
from rag.types import Answer, Passage, Status
from tests.helpers import SEED
from tests.scripted import ScriptedBackend

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(part_files() is None, reason="the local model parts are not installed (bash .ci/install)"),
]

PARAPHRASED = "What did the Soviet state squeeze to pay for its factories?"
OFF_CORPUS = "Which team won the 1958 football World Cup final in Stockholm?"


@pytest.fixture
def local(seeded: Settings, local_model_dir: Path) -> Settings:
    """Seeded settings answering with the local model and its judge, the model under ``local_model_dir``."""
    models = seeded.data_dir / "models"
    models.mkdir(parents=True, exist_ok=True)
    return seeded.with_updates(**{"answer.backend": "local", "local.judge": "on",
                                  "local.model_path": str(resolve_path(seeded.with_updates(data_dir=local_model_dir)))})


def test_bundled_model_assembles_to_the_upstream_file(local_model_dir: Path, settings: Settings) -> None:
    path = resolve_path(settings.with_updates(data_dir=local_model_dir))
    assert path.name == MODEL_FILE and path.stat().st_size == MODEL_SIZE
    assert not list(path.parent.glob(".*.part")), "no partial file is left behind"


def test_wrong_size_model_file_is_refused(settings: Settings) -> None:
    target = bundled_path(settings)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF" + b"\0" * 1000)
    with pytest.raises(ConfigError, match="not the expected"):
        resolve_path(settings)


def test_corrupted_model_file_of_the_right_size_is_refused(settings: Settings) -> None:
    target = bundled_path(settings)
    target.parent.mkdir(parents=True)
    with target.open("wb") as handle:  # sparse: the right size, the wrong bytes
        handle.truncate(MODEL_SIZE)
    with pytest.raises(ConfigError, match="sha256"):
        resolve_path(settings)


def test_judge_accepts_a_paraphrased_question_and_refuses_an_off_corpus_one(local: Settings) -> None:
    judge = get_judge(local)
    assert isinstance(judge, AnswerabilityJudge)
    yes = judge.decide(PARAPHRASED, retrieve_passages(PARAPHRASED, settings=local))
    no = judge.decide(OFF_CORPUS, retrieve_passages(OFF_CORPUS, settings=local))
    assert yes.answerable, yes
    assert not no.answerable and no.reason, no
    assert yes.probability > no.probability


def test_a_plainly_off_topic_question_is_refused_without_asking_the_model(local: Settings) -> None:
    # Over the seed alone, the model once quoted a seed sentence for this and its "yes" let it through.
    question = "How do I reverse a list in Python?"
    verdict = get_judge(local).decide(question, retrieve_passages(question, settings=local))
    assert not verdict.answerable and verdict.reason == "nothing in the documents is close to this question"
    assert "yes" not in verdict.features and not verdict.quote  # the model was not asked


def test_local_backend_answers_with_checked_citations(local: Settings) -> None:
    answer = ask(PARAPHRASED, settings=local.with_updates(**{"answer.fallback": False}))  # the writer itself
    assert answer.backend == "local" and not answer.refused, answer.text
    assert answer.citations and all(c.passage.source == SEED.name for c in answer.citations)
    assert any(c.supported for c in answer.citations)
    assert "</passage" not in answer.text and "<|im_" not in answer.text
    assert answer.to_dict()["judgement"]["answerable"] is True  # why it answered travels with the answer


def test_local_writer_in_fast_mode_answers_from_the_judges_sentences(local: Settings) -> None:
    fast = local.with_updates(**{"answer.fallback": False, "local.writer_reads": "sentences"})
    assert get_backend(fast, embedder=embedder_for(fast)).reads_judged_sentences
    assert not get_backend(local, embedder=embedder_for(local)).reads_judged_sentences
    answer = ask(PARAPHRASED, settings=fast)
    assert answer.backend == "local" and not answer.refused, answer.text
    assert answer.citations and all(c.passage.source == SEED.name for c in answer.citations)


@pytest.mark.parametrize("question", [PARAPHRASED,
                                      "Which book says moving farm labour into industry wrecked productivity?"])
def test_the_sentence_holding_the_judges_quote_opens_a_quoted_answer(local: Settings, question: str) -> None:
    answer = ask(question, settings=local, backend="extractive")
    judged = answer.judgement
    assert not answer.refused and judged["features"]["verbatim"] == 1.0, judged
    first = sentences(answer.text)[0].text
    assert holds_quote(first, judged["quote"]), (judged["quote"], answer.text)


def test_the_model_chooses_the_sentences_a_quoted_answer_is_made_of(local: Settings) -> None:
    # Every sentence of the answer shares words with the question; the one that answers it is
    # not the embedding's favourite, and the model's ranking finds it.
    question = "Which faction in Beijing wanted to follow Moscow's route, and what did it prioritise?"
    pieces = list(stream(question, settings=local, backend="extractive"))
    answer = pieces[-1]
    assert isinstance(answer, Answer) and not answer.refused, answer
    assert answer_contains(answer.text, ["heavy industry", "USSR-style"]), answer.text
    assert any(isinstance(p, Status) and "Choosing the passages' sentences" in p.text for p in pieces)
    assert 1 <= len(answer.sentences) <= RANKED_SENTENCES and all(c.supported for c in answer.citations)
    by_embedding = local.with_updates(**{"local.quote_ranking": "embedding"})
    assert sentence_ranker(by_embedding) is None
    assert sentence_ranker(local.with_updates(**{"local.judge": "off"})) is None
    rank = sentence_ranker(local)
    assert rank is not None
    answers, misses = rank(question, [
        "The part of the party in favour of a USSR-style development focused on heavy industry.",
        "Beijing and Moscow quarrelled over the route to socialism for years."])
    assert answers > misses


def test_an_unsupported_answer_falls_back_to_quotes_though_the_judge_found_words(local: Settings,
                                                                                scripted: ScriptedBackend) -> None:
    scripted.script("The book was written by John Smith at Oxford in 1972 [1].")
    answer = ask(PARAPHRASED, settings=local, backend="scripted")
    assert answer.judgement["features"]["verbatim"], "the judge quoted words the passages hold"
    assert answer.backend == "extractive" and answer.fallback.startswith("the scripted backend wrote nothing")
    assert "John Smith" not in answer.text


def test_refusal_says_why(local: Settings) -> None:
    answer = ask(OFF_CORPUS, settings=local)
    assert answer.refused and answer.refusal_reason
    assert answer.to_dict()["refusal_reason"] == answer.refusal_reason


def test_concurrent_sessions_all_get_their_own_answers(local: Settings) -> None:
    questions = [PARAPHRASED, OFF_CORPUS, "Why were the harvest figures reaching Beijing wrong?"]
    answers: dict[str, Answer] = {}
    errors: list[BaseException] = []

    def run(question: str) -> None:
        try:
            answers[question] = ask(question, settings=local)
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(q,)) for q in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    assert set(answers) == set(questions)
    assert all(a.question == q and a.text for q, a in answers.items())
    assert answers[OFF_CORPUS].refused and not answers[PARAPHRASED].refused
    assert get_local_model(local).waiting == 0


def test_a_sampled_reply_does_not_depend_on_the_calls_before_it(local: Settings) -> None:
    model = get_local_model(local)
    ask_for = [{"role": "user", "content": "Invent a name for a new river and describe it in one sentence."}]

    def reply() -> str:
        return "".join(model.stream(ask_for, max_tokens=24, temperature=1.0))

    first = reply()
    model.complete([{"role": "user", "content": "Name a colour."}], max_tokens=4)
    assert reply() == first


def test_a_verdict_does_not_depend_on_the_question_judged_before_it(local: Settings) -> None:
    model = get_local_model(local)
    text = SEED.read_text(encoding="utf-8")
    paragraphs = [p for p in text.split("\n\n") if len(p) > 200][:6]
    passages = [Passage(marker=n, id=str(n), text=t, source=SEED.name, title="Seed", score=1.0, start=0,
                        end=len(t)) for n, t in enumerate(paragraphs, 1)]

    def judged_after(before: Callable[[], object]) -> float:
        model._verdicts.clear()  # the verdict cache would hide a recomputation
        before()
        model._verdicts.clear()
        return model.judge(task_messages("Why were the harvest figures reaching Beijing wrong?", passages,
                                         TASK_JUDGE)).yes

    # llama.cpp reuses what the call before left in its cache: here little but the chat's opening,
    # then the same passages up to the question, then those and a sampled reply.
    after_unrelated = judged_after(lambda: model.judge(task_messages("What is tea?", passages[3:], TASK_JUDGE)))
    other = "Was the climate a factor?"
    assert judged_after(lambda: model.judge(task_messages(other, passages, TASK_JUDGE))) == after_unrelated
    assert judged_after(lambda: model.complete(task_messages(other, passages, TASK_QUOTE), max_tokens=8)) == (
        after_unrelated)


def test_model_is_loaded_once_per_process(local: Settings, embedder: Embedder, tmp_path: Path) -> None:
    other = local.with_updates(data_dir=tmp_path / "other-data", corpus_dir=tmp_path / "other-corpus")
    other.corpus_dir.mkdir()
    shutil.copy(SEED, other.corpus_dir / SEED.name)
    Indexer(other, embedder=embedder).sync()
    assert get_local_model(other) is get_local_model(local)
