"""The answerability judge's model-free parts: reading the model's quote, the fitted weights."""

from __future__ import annotations

import pytest

from rag.judge import QUOTE_KINDS, grounded_yes, load_weights, quote_evidence, quote_support
from rag.types import Passage

PASSAGE = Passage(marker=1, id="a", text="Grain was requisitioned from the peasants to pay for imports in 1929. "
                  "The new line ran for 1,100 kilometres. The plan took four years and three months.",
                  source="s", title="t", score=1.0, start=0, end=10)
QUESTION = "What did the state take from the villages to pay for imports?"


def test_quote_support_counts_only_words_the_passages_hold() -> None:
    assert quote_support("requisitioned from the peasants", [PASSAGE]) == 1.0
    assert quote_support("peasants", [PASSAGE]) == 1.0, "a one-word answer found in the passage is whole"
    assert quote_support("NONE", [PASSAGE]) == 0.0
    assert quote_support("taxes on vodka and salt", [PASSAGE]) <= 0.2
    assert quote_support("10", [PASSAGE]) == 0.0, "a number is matched whole, not inside 1,100"


@pytest.mark.parametrize(("quote", "kind"), [
    ("Grain was requisitioned from the peasants", "verbatim"),
    ("1929", "verbatim"),
    ("1,100 kilometres", "verbatim"),
    ("1931", "made_up"),  # a year the passage never gives: the model's own knowledge
    ("10", "made_up"),  # not found inside "1,100": numbers match whole
    ("1 year", "made_up"),  # a short answer must be found whole, not by its "1"
    ("1", "made_up"),  # "one" is not read as a number: it is mostly a pronoun
    ("peasants, imports", "verbatim"),  # a short answer's words, found apart
    ("1,100 kilometers", "verbatim"),  # another spelling of a long word
    ("4 years and 3 months", "verbatim"),  # number words read as digits
    ("100,000 tons of steel", "made_up"),
    ("The peasants had to hand over their harvests so that the regime could buy machines abroad.",
     "paraphrased"),
    ("The state took from the villages to pay for imports.", "echo"),  # restates the question
    ("imports", "echo"),  # names only what the question names
    ("the villages'", "echo"),
    ("NONE", "silent"),
    ("NOT NONE", "silent"),  # nothing to check: "not" is in every passage
    ("of the", "silent"),
    ("", "silent"),
    ("Yes", None),  # a yes/no question answered in one word
])
def test_quote_evidence_names_the_kind_of_quote(quote: str, kind: str | None) -> None:
    evidence = quote_evidence(quote, QUESTION, [PASSAGE])
    flags = {name for name in QUOTE_KINDS if evidence[name]}
    assert flags == ({kind} if kind else set()), evidence


def test_a_quote_of_the_name_a_question_gives_in_the_possessive_is_an_echo() -> None:
    passage = Passage(marker=1, id="b", text="Dikötter's book was criticised by Cormac Ó Gráda.",
                      source="s", title="t", score=1.0, start=0, end=10)
    assert quote_evidence("Dikötter", "Who is Dikötter's best-known critic?", [passage])["echo"] == 1.0
    assert quote_evidence("Cormac Ó Gráda", "Who is Dikötter's best-known critic?", [passage])["verbatim"] == 1.0


def test_shipped_weights_never_count_closeness_against_answering() -> None:
    weights = load_weights()
    assert weights.coef, "the calibration names its features"
    for name in ("relevance", "cosine", "yes", "grounded_yes", "quote", "verbatim"):
        assert weights.coef.get(name, 0.0) >= 0.0, name
    assert 0.0 < weights.threshold < 1.0


def test_the_yes_of_a_model_that_answers_from_its_own_knowledge_is_not_counted() -> None:
    made_up = quote_evidence("1931", QUESTION, [PASSAGE])
    echo = quote_evidence("imports", QUESTION, [PASSAGE])
    found = quote_evidence("requisitioned from the peasants", QUESTION, [PASSAGE])
    assert grounded_yes(2.0, made_up) == 0.0
    assert grounded_yes(2.0, echo) == 0.0
    assert grounded_yes(2.0, found) == 2.0
