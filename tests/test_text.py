"""rag.text: the one home of sentences, markers, content words, names and numbers, refusals."""

from __future__ import annotations

from rag.text import (REFUSAL, content_words, coverage, entities, holds_quote, markers_in, mentions, quote_share,
                      repair_copied_words, source_vocabulary,
                      sentences, specifics, strip_markers, tokens_lower)


def test_strip_markers_removes_every_marker_form() -> None:
    text = "Lenin announced it [1]. It began in 1921 [2, 3]. It ended [1; 2]."
    assert strip_markers(text) == "Lenin announced it. It began in 1921. It ended."


def test_markers_in_reads_comma_and_semicolon_lists_in_order() -> None:
    assert markers_in("A [2]. B [3; 1]. C [4, 2].") == [2, 3, 1, 4, 2]


def test_sentences_keep_markers_and_abbreviations_and_offsets() -> None:
    text = "Dr. Smith went to the U.S. in 1921 [1]. Then he left! Why?"
    spans = sentences(text)
    assert [s.text for s in spans] == ["Dr. Smith went to the U.S. in 1921 [1].", "Then he left!", "Why?"]
    assert all(text[s.start:s.end] == s.text for s in spans)


def test_coverage_counts_the_share_of_words_a_text_holds() -> None:
    words = content_words("steel works at Magnitogorsk")
    assert coverage(words, "The Magnitogorsk steel combine") == 2 / 3
    assert coverage([], "anything") == 0.0
    assert coverage(["steel", "steel", "coal"], "steel") == 2 / 3  # repeats count


def test_specifics_are_names_and_numbers_not_the_opening_word() -> None:
    assert specifics("When did the Bank of England raise rates in 1931?") == ["Bank of England", "1931"]
    assert specifics("Where was Gosplan?") == ["Gosplan"]


def test_mentions_accepts_verbatim_word_by_word_and_acronym() -> None:
    assert mentions("The Great Leap Forward began in 1958.", "Great Leap Forward")
    assert mentions("During the GLF, output fell.", "Great Leap Forward")
    assert not mentions("Output fell in 1959.", "Great Leap Forward")


def test_a_claims_entities_missing_from_a_passage_are_found() -> None:
    claim = "In 1931 the Bank of England left gold [2]."
    passage = "The Bank of England suspended the gold standard."
    assert entities(claim) - tokens_lower(passage) == {"1931"}


def test_refusal_names_what_follows_it() -> None:
    assert REFUSAL.startswith("The documents do not cover this question.")
    assert not markers_in(REFUSAL)


def test_a_quote_is_held_whole_a_short_answer_word_by_word() -> None:
    text = "Its centre lay in the Oklahoma and Texas panhandles for four years and three months."
    assert holds_quote(text, "Oklahoma, Texas"), "a short answer's words may stand apart"
    assert holds_quote(text, "4 years and 3 months"), "number words read as digits"
    assert not holds_quote(text, "1 year"), "a short answer is not found by part of it"
    assert holds_quote(text, "lay in the Oklahoma and Texas panhandles and beyond")
    assert not holds_quote(text, "the dust storms reached Washington and darkened the sky there")
    assert quote_share("Texas, Kansas", [text, "Kansas too"]) == 1.0, "a short answer may span texts"


def test_words_garbled_in_copying_are_put_right_and_nothing_else() -> None:
    vocabulary = source_vocabulary(["The USSR forced collectivisation and industrialisation on the proletariat."])
    assert repair_copied_words("It squeezed by collectingivisation [1].", vocabulary) == \
        "It squeezed by collectivisation [1]."
    assert repair_copied_words("Collectingivisation and collectvisation.", vocabulary) == \
        "Collectivisation and collectivisation."
    for kept in ("collectivisations", "recollectivisation", "industrialised", "proletariats", "collectivization",
                 "Stalinism", "a brand new word"):
        assert repair_copied_words(kept, vocabulary) == kept
