"""The answerability judge's model-free parts: reading the model's quote, the fitted weights."""

from __future__ import annotations

import pytest

from rag.judge import load_weights, quote_evidence, quote_support
from rag.types import Passage

PASSAGE = Passage(marker=1, id="a", text="Grain was requisitioned from the peasants to pay for imports in 1929.",
                  source="s", title="t", score=1.0, start=0, end=10)
QUESTION = "What did the state take from the villages to pay for imports?"


def test_quote_support_counts_only_words_the_passages_hold() -> None:
    assert quote_support("requisitioned from the peasants", [PASSAGE]) == 1.0
    assert quote_support("peasants", [PASSAGE]) == 1.0, "a one-word answer found in the passage is whole"
    assert quote_support("NONE", [PASSAGE]) == 0.0
    assert quote_support("taxes on vodka and salt", [PASSAGE]) <= 0.2


@pytest.mark.parametrize(("quote", "kind"), [
    ("Grain was requisitioned from the peasants", "verbatim"),
    ("1929", "verbatim"),
    ("1931", "invented"),  # a year the passage never gives: the model's own knowledge
    ("100,000 tons of steel", "invented"),
    ("NONE", "silent"),
    ("", "silent"),
    ("The state took from the villages to pay for imports.", None),  # restates the question
])
def test_quote_evidence_names_the_kind_of_quote(quote: str, kind: str | None) -> None:
    evidence = quote_evidence(quote, QUESTION, [PASSAGE])
    flags = {name for name in ("verbatim", "invented", "silent") if evidence[name]}
    assert flags == ({kind} if kind else set()), evidence


def test_shipped_weights_never_count_closeness_against_answering() -> None:
    weights = load_weights()
    assert weights.coef, "the calibration names its features"
    for name in ("relevance", "cosine", "yes", "quote", "verbatim"):
        assert weights.coef.get(name, 0.0) >= 0.0, name
    assert 0.0 < weights.threshold < 1.0
