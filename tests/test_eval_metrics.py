"""Evaluation metrics on hand-checked examples (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest

from rag.eval import metrics

REF_A = "The Magnitogorsk steel combine was modelled on U.S. Steel's works at Gary, Indiana."
REF_B = "The Tomioka Silk Mill opened in 1872 in Gunma prefecture."


# ------------------------------------------------------------------------- text
def test_normalize_answer_follows_squad() -> None:
    assert metrics.normalize_answer("  The Great, Leap!  Forward ") == "great leap forward"
    assert metrics.normalize_answer("An apple and a theory") == "apple and theory"


# -------------------------------------------------------------------- retrieval
def test_context_found_verbatim_ignores_whitespace_and_case() -> None:
    chunk = "Intro.  the magnitogorsk steel combine was modelled\non U.S. Steel's works at   Gary, Indiana. More."
    assert metrics.context_found(REF_A, chunk)
    assert not metrics.context_found(REF_A, "Gary, Indiana has a steel works.")


def test_context_found_by_word_coverage_threshold() -> None:
    reference = "one two three four five six seven eight nine ten"
    # 8 of the 10 reference words present: 8/10 = 0.8 >= 0.8.
    assert metrics.context_found(reference, "one two three four five six seven eight and more")
    # 7 of 10: 0.7 < 0.8 (in reverse order, so the chunk does not lie inside the reference either).
    assert not metrics.context_found(reference, "seven six five four three two one")
    # Multiplicity counts: "one one" in the reference needs two "one"s in the chunk (1 of 2 = 0.5).
    assert not metrics.context_found("one one", "one")
    assert not metrics.context_found("", "anything")


# A reference longer than a chunk, like a SQuAD paragraph: no chunk can contain it.
PARAGRAPH = (
    "The Meiji Restoration of 1868 ended the Tokugawa shogunate and brought to power a group of young "
    "samurai from the southwestern domains. Their goal was summed up in the slogan fukoku kyohei, rich "
    "country, strong army. Between 1871 and 1873 the Iwakura Mission travelled through the United States "
    "and Europe to study their institutions and factories."
)


def test_chunk_lying_mostly_inside_a_longer_reference_retrieves_it() -> None:
    # The chunk is the paragraph's middle sentence (14 words) plus a 3-word heading:
    # 14/17 = 0.82 of it lies inside the reference, while it covers only 14/56 of the reference.
    chunk = "Meiji Japan notes. Their goal was summed up in the slogan fukoku kyohei, rich country, strong army."
    assert metrics.context_found(PARAGRAPH, chunk)
    # Both halves of the paragraph, as two chunks with a neighbouring paragraph's words, retrieve it.
    first, second = PARAGRAPH[:150], PARAGRAPH[150:]
    found = metrics.matches([f"{first} Next.", f"Earlier text. {second}", "Unrelated chunk about dust."], [PARAGRAPH])
    assert found == [{0}, {0}, set()]


def test_containment_threshold_counts_the_chunk_words_inside_the_reference() -> None:
    reference = " ".join(f"w{i}" for i in range(1, 21))
    # 6 of 10 chunk words form a run the reference holds: 6/10 = 0.6 >= 0.6 (and 6/20 < 0.8 coverage).
    assert metrics.context_found(reference, "w5 w6 w7 w8 w9 w10 x1 x2 x3 x4")
    # 5 of 10: 0.5 < 0.6.
    assert not metrics.context_found(reference, "w5 w6 w7 w8 w9 x1 x2 x3 x4 x5")
    # Every word is in the reference but never 4 in a row: shared vocabulary is not containment.
    assert not metrics.context_found(reference, "w3 w1 w7 w5 w9 w2 w8")
    # A chunk shorter than a run never counts by containment.
    assert not metrics.context_found(reference, "w5 w6 w7")


def test_shared_words_of_another_passage_on_the_same_topic_do_not_count() -> None:
    chunk = "In 1868 the samurai of the southwestern domains took power and studied the factories of Europe."
    assert not metrics.context_found(PARAGRAPH, chunk)


# Retrieved chunks in rank order; references A (index 0) and B (index 1).
RETRIEVED = [
    "Nothing relevant here.",                # rank 1: {}
    f"Preamble. {REF_A} Coda.",              # rank 2: {A}
    "Also irrelevant.",                      # rank 3: {}
    f"{REF_B}",                              # rank 4: {B}
    f"A repeat: {REF_A}",                    # rank 5: {A} again
]


def test_matches_maps_chunks_to_the_references_they_hold() -> None:
    assert metrics.matches(RETRIEVED, [REF_A, REF_B]) == [set(), {0}, set(), {1}, {0}]


def test_hit_recall_rank_on_a_hand_checked_ranking() -> None:
    found = metrics.matches(RETRIEVED, [REF_A, REF_B])

    assert metrics.hit_at_k(found, 1) == 0.0     # rank 1 holds nothing
    assert metrics.hit_at_k(found, 2) == 1.0     # rank 2 holds A
    assert metrics.recall_at_k(found, 2, 3) == 0.5   # top 3 hold A only: 1/2
    assert metrics.recall_at_k(found, 2, 5) == 1.0   # top 5 hold A and B: 2/2
    assert metrics.reciprocal_rank(found) == 0.5     # first relevant at rank 2: 1/2
    assert metrics.reciprocal_rank([set(), set()]) == 0.0


def test_ndcg_counts_each_reference_once() -> None:
    found = metrics.matches(RETRIEVED, [REF_A, REF_B])
    # DCG@5 = 1/log2(2+1) [A at rank 2] + 1/log2(4+1) [B at rank 4]; the repeat of A at 5 adds 0
    #       = 0.630930 + 0.430677 = 1.061606
    # IDCG  = 1/log2(2) + 1/log2(3) = 1 + 0.630930 = 1.630930   (two references, k = 5)
    # nDCG  = 1.061606 / 1.630930 = 0.650920
    assert metrics.ndcg_at_k(found, 2, 5) == pytest.approx(0.650920, abs=1e-6)
    # Perfect ranking: A then B.
    assert metrics.ndcg_at_k([{0}, {1}], 2, 5) == pytest.approx(1.0)
    # One reference at rank 1, k = 3: IDCG = 1, DCG = 1.
    assert metrics.ndcg_at_k([{0}, {0}, set()], 1, 3) == pytest.approx(1.0)


def test_retrieval_metrics_need_references() -> None:
    with pytest.raises(ValueError):
        metrics.recall_at_k([set()], 0, 5)
    with pytest.raises(ValueError):
        metrics.ndcg_at_k([set()], 0, 5)


# ----------------------------------------------------------------------- answers
def test_token_f1_hand_checked() -> None:
    # prediction -> "lenin announced it" (3 tokens, "the" dropped); reference -> "lenin in 1921" (3 tokens)
    # common = {lenin} = 1; precision = 1/3, recall = 1/3, F1 = 1/3
    assert metrics.token_f1("The Lenin announced it", "Lenin, in 1921.") == pytest.approx(1 / 3)
    assert metrics.token_f1("Lenin", "lenin!") == 1.0
    assert metrics.token_f1("Stalin", "Lenin") == 0.0
    assert metrics.token_f1("", "Lenin") == 0.0


def test_lcs_length() -> None:
    assert metrics.lcs_length("a b c d e".split(), "a c e".split()) == 3
    assert metrics.lcs_length("x y".split(), "a b".split()) == 0
    assert metrics.lcs_length("b a".split(), "a b".split()) == 1


def test_rouge_l_hand_checked() -> None:
    # prediction: soon lenin then announced policy (5); reference: lenin announced new policy (4)
    # LCS = lenin announced policy = 3; P = 3/5, R = 3/4, F1 = 2*0.6*0.75/1.35 = 2/3
    assert metrics.rouge_l("Soon Lenin then announced policy", "Lenin announced new policy") == pytest.approx(2 / 3)
    # Order matters for ROUGE-L but not for token F1: reversed words share 1 in sequence.
    # "b a" vs "a b": LCS 1, P = R = 1/2, F1 = 1/2; token F1 = 1.
    assert metrics.rouge_l("beta alpha", "alpha beta") == pytest.approx(0.5)
    assert metrics.token_f1("beta alpha", "alpha beta") == 1.0


def test_cosine_hand_checked() -> None:
    assert metrics.cosine([1.0, 0.0], [1.0, 1.0]) == pytest.approx(1 / math.sqrt(2))
    assert metrics.cosine([1.0, 0.0], [0.0, 0.0]) == 0.0


def test_answer_contains_normalises_like_squad() -> None:
    assert metrics.answer_contains("It is shown by Madison's numbers [1].", ["Madison"])
    assert metrics.answer_contains("Announced by LENIN in 1921.", ["The Lenin"])
    assert metrics.answer_contains("Kao shan, fensan, yindong.", ["nothing", "kao shan fensan yindong"])
    # A match starts at a word boundary: "harvest" does not contain the answer "vest".
    assert not metrics.answer_contains("The harvest failed.", ["vest"])
    assert not metrics.answer_contains("Stalin.", ["Lenin"])
    assert not metrics.answer_contains("Anything", ["", "the"])


# --------------------------------------------------------------------- citations
def test_groundedness_counts_claims_only() -> None:
    # Two of three claims supported; the None (not a claim) is left out: 2/3.
    assert metrics.groundedness([True, False, None, True]) == pytest.approx(2 / 3)
    assert metrics.groundedness([None]) is None
    assert metrics.groundedness([]) is None


def test_citation_recall_and_precision_hand_checked() -> None:
    # Sentence 1 cites two passages scoring 0.9 and 0.2; sentence 2 one scoring 0.3; sentence 3 none.
    scores = [[0.9, 0.2], [0.3], []]
    # Recall: supported sentences / sentences = 1 (only sentence 1 reaches 0.55) / 3.
    assert metrics.citation_recall(scores, 0.55) == pytest.approx(1 / 3)
    # Precision: supporting pairs / pairs = 1 (0.9) / 3 (0.9, 0.2, 0.3).
    assert metrics.citation_precision(scores, 0.55) == pytest.approx(1 / 3)

    scores = [[0.6, 0.7], [0.1, 0.56]]
    assert metrics.citation_recall(scores, 0.55) == 1.0            # both sentences have a pair >= 0.55
    assert metrics.citation_precision(scores, 0.55) == pytest.approx(3 / 4)  # 0.6, 0.7, 0.56 of four
    assert metrics.citation_recall([], 0.55) is None
    assert metrics.citation_precision([[], []], 0.55) is None


# ---------------------------------------------------------------- refusals, time
def test_refusal_accuracy_and_false_refusal_rate() -> None:
    refused = [True, False, True, False, False]
    answerable = [False, False, True, True, True]
    # Unanswerable: questions 1 and 2, one refused: 1/2.
    assert metrics.refusal_accuracy(refused, answerable) == 0.5
    # Answerable: questions 3, 4, 5, one refused: 1/3.
    assert metrics.false_refusal_rate(refused, answerable) == pytest.approx(1 / 3)
    assert metrics.refusal_accuracy([False], [True]) is None
    assert metrics.false_refusal_rate([True], [False]) is None


def test_percentile_interpolates_linearly() -> None:
    values = [400.0, 100.0, 300.0, 200.0]
    # Sorted 100, 200, 300, 400. p50: position 1.5 -> 200 + 0.5*100 = 250.
    assert metrics.percentile(values, 50) == 250.0
    # p95: position 0.95*3 = 2.85 -> 300 + 0.85*100 = 385.
    assert metrics.percentile(values, 95) == pytest.approx(385.0)
    assert metrics.percentile([7.0], 95) == 7.0
    assert metrics.percentile([], 50) is None


def test_mean_skips_missing_values() -> None:
    assert metrics.mean([None, 1.0, 0.0]) == 0.5
    assert metrics.mean([None]) is None
