"""Citation integrity: invented markers dropped, unsupported claims flagged, quotes from the passage."""

from __future__ import annotations



from rag.citations import SupportChecker, check, support
from rag.config import Settings
from rag.embeddings import Embedder
from rag.pipeline import ask
from rag.text import markers_in, sentences
from rag.types import Passage
from tests.helpers import SEED
from tests.scripted import ScriptedBackend

BRAMALL = ("In Chinese Economic Development, Chris Bramall argues the diversion of labour from "
           "agriculture to industry led to a collapse of productivity due to labour shortages.")
QUESTION = "Which book argues that moving labour out of agriculture caused the collapse?"


def _passage(marker: int, text: str) -> Passage:
    return Passage(marker=marker, id=f"p{marker}", text=text, source="s.txt", title="t", score=0.5,
                   start=0, end=len(text))


def _bramall_marker(scripted: ScriptedBackend) -> int:
    question, passages = scripted.seen[-1]
    return next(p.marker for p in passages if "Bramall" in p.text)


def test_citation_to_unknown_passage_is_dropped(seeded: Settings, scripted: ScriptedBackend) -> None:
    scripted.script(f"{BRAMALL} [1] Output was overreported by local cadres [42].")
    answer = ask(QUESTION, settings=seeded, backend="scripted")
    passages = scripted.seen[-1][1]
    assert "[42]" not in answer.text
    assert 42 not in markers_in(answer.text)
    assert {c.marker for c in answer.citations} <= {p.marker for p in passages}


def test_every_citation_points_at_a_retrieved_passage(seeded: Settings, scripted: ScriptedBackend) -> None:
    scripted.script(f"{BRAMALL} [1] [2] Mao wished to have an equal development of agriculture and industry [3]. [7]")
    answer = ask(QUESTION, settings=seeded, backend="scripted")
    retrieved = {p.id: p for p in scripted.seen[-1][1]}
    for citation in answer.citations:
        assert citation.passage.id in retrieved
        assert citation.passage.text == retrieved[citation.passage.id].text
        assert citation.quote and citation.quote in citation.passage.text


def test_invented_claim_is_flagged_unsupported(seeded: Settings, scripted: ScriptedBackend) -> None:
    scripted.script("Placeholder")
    ask(QUESTION, settings=seeded, backend="scripted")
    n = _bramall_marker(scripted)
    scripted.script(f"{BRAMALL} [{n}] The book was written by John Smith in 1972 at Oxford [{n}].")
    answer = ask(QUESTION, settings=seeded, backend="scripted")
    verdicts = {s.text.split(" [")[0]: s.supported for s in answer.sentences}
    assert verdicts[BRAMALL] is True
    assert verdicts["The book was written by John Smith in 1972 at Oxford"] is False
    assert answer.citations[0].supported is True


def test_uncited_supported_claim_gets_its_passage(seeded: Settings, scripted: ScriptedBackend) -> None:
    scripted.script("Chris Bramall argues that the diversion of labour from agriculture to industry led to a "
                    "collapse of productivity.")
    answer = ask(QUESTION, settings=seeded, backend="scripted")
    assert answer.citations and "Bramall" in answer.citations[0].passage.text
    assert answer.sentences[0].attributed and answer.sentences[0].supported


def test_answer_with_nothing_citable_is_a_refusal(seeded: Settings, scripted: ScriptedBackend) -> None:
    scripted.script("Bananas are the main export of Ecuador and grow in tropical climates.")
    answer = ask(QUESTION, settings=seeded.with_updates(**{"answer.fallback": False}), backend="scripted")
    assert answer.refused and not answer.citations and answer.closest
    assert answer.sentences and answer.sentences[0].supported is False


def test_exact_quote_scores_full_support(embedder: Embedder) -> None:
    score, quote = support(BRAMALL, SEED.read_text(encoding="utf-8"), embedder=embedder)
    assert score == 1.0 and quote == BRAMALL


def test_paraphrase_is_supported_and_changed_name_is_not(embedder: Embedder) -> None:
    checker = SupportChecker(embedder)
    passage = _passage(1, BRAMALL + " This was intensified by widespread overreporting of output by local cadres.")
    faithful = "Chris Bramall argues that moving labour out of agriculture caused productivity to collapse [1]."
    invented = "John Smith argues that moving labour out of agriculture caused productivity to collapse [1]."
    result = check(f"{faithful} {invented}", [passage], checker=checker, threshold=0.5)
    assert [s.supported for s in result.sentences] == [True, False]


def test_markers_stay_with_their_sentence() -> None:
    spans = sentences("First claim. [1] Second claim [2]. Third! [1, 3] Tail")
    assert [markers_in(s.text) for s in spans] == [[1], [2], [1, 3], []]


METHOD = ("A note on method. The historians of the Gosplan archive used only facts stated in the passages "
          "they quoted, and treated those passages as quoted source material, not as instructions.")


def test_sentence_restating_the_prompts_rules_is_not_supported(embedder: Embedder) -> None:
    checker = SupportChecker(embedder)
    passage = _passage(1, METHOD)
    echoes = ["I only use facts stated in the passages [1].", "The passages are quoted source material [1]."]
    quote = "The historians of the Gosplan archive used only facts stated in the passages they quoted [1]."
    # The passage shares their words: the support score alone would pass them.
    assert all(checker.support(e, METHOD)[0] >= 0.5 for e in echoes)

    result = check(" ".join([*echoes, quote]), [passage], checker=checker, threshold=0.5)

    assert [s.supported for s in result.sentences] == [False, False, True]
    assert [s.markers for s in result.sentences] == [(), (), (1,)]
    assert result.text.count("[1]") == 1
    only_echoes = check(" ".join(echoes), [passage], checker=checker, threshold=0.5)
    assert only_echoes.citations == () and not markers_in(only_echoes.text)


def test_miscited_claim_moves_to_the_passage_that_supports_it(embedder: Embedder) -> None:
    passages = [_passage(1, "The Dust Bowl hit the southern plains in the 1930s after a long drought."),
                _passage(2, f"Historians disagree about the famine. {BRAMALL} Others blame procurement.")]
    invented = "The book was written by John Smith in 1972 at Oxford"
    answer = check(f"{BRAMALL[:-1]} [1]. {invented} [1].", passages, checker=SupportChecker(embedder),
                   threshold=0.5)
    moved, kept = answer.sentences
    assert moved.markers == (2,) and moved.supported and moved.attributed
    assert kept.markers == (1,) and kept.supported is False and not kept.attributed
    assert markers_in(answer.text.split(invented)[0]) == [2]
    unchanged = check(f"{BRAMALL[:-1]} [1].", passages, checker=SupportChecker(embedder), threshold=0.5,
                      attribute=False)
    assert unchanged.sentences[0].markers == (1,) and unchanged.sentences[0].supported is False
