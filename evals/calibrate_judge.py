"""Fit the answerability judge and the model-assisted support check; write rag/calibration.json.

Fitted on calibration data only: the ``calibration`` halves of evals/paraphrase.jsonl and
evals/offtopic.jsonl plus every question of evals/dev.jsonl (refusal), and the ``calibration`` half
of evals/support_pairs.jsonl (support). False refusals are read on readers' questions (paraphrase),
refusal accuracy on every unanswerable question. Which evidence the judge combines (``FEATURE_SETS``) is chosen by 5-fold
cross-validation inside the calibration data. The held-out halves are scored once with the fitted
models and the figures written beside the weights, so what is reported is never what was fitted
or chosen. The model's outputs are computed once and cached (``--features``), so refitting takes
seconds.

    python evals/calibrate_judge.py [--max-false-refusals 0.10] [--refresh]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

from rag.answer.prompt import support_messages  # noqa: E402
from rag.citations import SupportChecker  # noqa: E402
from rag.config import build_settings  # noqa: E402
from rag.embeddings import embedder_for  # noqa: E402
from rag.indexer import Indexer  # noqa: E402
from rag.judge import (  # noqa: E402
    JUDGE_PASSAGES, AnswerabilityJudge, Weights, grounded_yes, logit, nearest_sentences, quote_evidence)
from rag.local_model import get_local_model  # noqa: E402
from rag.pipeline import retrieve_passages  # noqa: E402

EVALS = REPO / "evals"
POSITIVE = frozenset({"relevance", "cosine", "yes", "grounded_yes", "quote", "verbatim"})
# Candidate evidence for the answer-or-refuse model; cross-validation on calibration data picks one.
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "all": ("relevance", "cosine", "yes", "quote", "verbatim", "made_up", "paraphrased", "echo", "silent"),
    "model": ("yes", "quote", "verbatim", "made_up", "paraphrased", "echo", "silent"),
    "quote": ("verbatim", "made_up", "paraphrased", "echo", "silent"),
    "yes+quote": ("yes", "verbatim", "made_up", "echo"),
    "grounded yes+quote": ("grounded_yes", "verbatim", "made_up", "echo"),
    "retrieval+yes+quote share": ("relevance", "cosine", "yes", "quote"),
}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON Lines file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def question_rows() -> list[dict[str, Any]]:
    """Every refusal-calibration and held-out question, tagged with its split."""
    rows = [dict(r, dataset="paraphrase") for r in read_jsonl(EVALS / "paraphrase.jsonl")]
    # The development set reuses the documents' words; without it the fit would learn from the
    # paraphrase set alone that word overlap means "unanswerable" (its answerable questions avoid
    # the passages' words by design, its unanswerable ones name what the documents discuss).
    rows += [dict(r, split="calibration", dataset="dev") for r in read_jsonl(EVALS / "dev.jsonl")]
    # Off-topic questions (other subjects, chit-chat, requests): the other sets' unanswerable
    # questions all name what the documents discuss, and a judge fitted on those alone may answer
    # whatever the model has nothing to quote for.
    rows += [dict(r, dataset="offtopic") for r in read_jsonl(EVALS / "offtopic.jsonl")]
    return rows


def calibration_settings() -> Any:
    """Settings of the evaluation corpus's own index, built (or synced) in a temp folder."""
    settings = build_settings(corpus_dir=EVALS / "corpus", data_dir=Path(tempfile.gettempdir()) / "footnote-calibrate-judge")
    Indexer(settings).sync()
    return settings


def compute_features(cache: Path, refresh: bool) -> dict[str, Any]:
    """The model's outputs per question (P(yes), quote) and per support pair, cached in ``cache``
    (questions and pairs added to the files since are computed, the rest read from it)."""
    cached: dict[str, Any] = {"questions": [], "pairs": []}
    if cache.is_file() and not refresh:
        cached = json.loads(cache.read_text(encoding="utf-8"))
    rows = question_rows()
    known = {(q.get("dataset", "paraphrase"), q["id"]): q for q in cached["questions"]}
    missing = [r for r in rows if (r["dataset"], r["id"]) not in known]
    pair_rows = read_jsonl(EVALS / "support_pairs.jsonl")
    scored_pairs = {p["id"]: p for p in cached["pairs"]}
    new_pairs = [r for r in pair_rows if r["id"] not in scored_pairs]
    if not missing and not new_pairs:
        return cached
    settings = calibration_settings()
    model = get_local_model(settings)
    judge = AnswerabilityJudge(model, Weights(0.0, {}, 0.5, 0.0), embedder_for(settings))
    for n, row in enumerate(missing, start=1):
        found = retrieve_passages(row["question"], settings=settings)
        started = time.perf_counter()
        feats, quote = judge.features(row["question"], found)
        known[(row["dataset"], row["id"])] = {
            "id": row["id"], "dataset": row["dataset"], "split": row["split"],
            "answerable": bool(row["answerable"]), "features": feats, "quote": quote,
            "seconds": time.perf_counter() - started}
        print(f"{n}/{len(missing)} {row['id']} {row['answerable']} {feats}", file=sys.stderr)
    cached["questions"] = [known[(r["dataset"], r["id"])] for r in rows]
    checker = SupportChecker(embedder_for(settings))
    for row in new_pairs:  # pairs added to the file since the cache was written
        similarity = checker.support(row["claim"], row["passage"])[0]
        started = time.perf_counter()
        yes = model.judge(support_messages(row["claim"], row["passage"])).yes
        scored_pairs[row["id"]] = {"id": row["id"], "kind": row["kind"], "split": row["split"],
                                   "label": row["label"], "similarity": similarity, "yes": yes,
                                   "seconds": time.perf_counter() - started}
    cached["pairs"] = [scored_pairs[r["id"]] for r in pair_rows]
    cache.write_text(json.dumps(cached, indent=1), encoding="utf-8")
    return cached


def with_quote_evidence(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Questions whose features include today's reading of the cached quote (no model call)."""
    settings = calibration_settings()
    embedder = embedder_for(settings)
    texts = {(r["dataset"], r["id"]): r["question"] for r in question_rows()}
    out = []
    for q in questions:
        question = texts[(q["dataset"], q["id"])]
        found = retrieve_passages(question, settings=settings)
        shown = nearest_sentences(question, found.passages[:JUDGE_PASSAGES], embedder)
        evidence = quote_evidence(q["quote"], question, shown)
        yes = grounded_yes(q["features"]["yes"], evidence)
        out.append(dict(q, features={**q["features"], **evidence, "grounded_yes": yes}))
    return out


def rates(probabilities: list[float], labels: list[bool], threshold: float) -> dict[str, float]:
    """Refusal accuracy (unanswerable refused) and false-refusal rate at ``threshold``."""
    refused = [p < threshold for p in probabilities]
    neg = [r for r, y in zip(refused, labels) if not y]
    pos = [r for r, y in zip(refused, labels) if y]
    return {"refusal_accuracy": round(sum(neg) / max(len(neg), 1), 3),
            "false_refusal_rate": round(sum(pos) / max(len(pos), 1), 3),
            "answerable": len(pos), "unanswerable": len(neg)}


def fit(train: list[dict[str, Any]], names: tuple[str, ...], max_false_refusals: float) -> Weights:
    """Logistic regression over ``names``; the floor and the threshold from ``train`` as well.

    Evidence for answering (``POSITIVE``) may not earn a negative weight: a feature that does is
    dropped and the model refitted. Otherwise the paraphrase set, whose unanswerable questions name
    what the documents discuss, teaches that a closer passage means "refuse", which is false of
    the off-topic questions users really ask.
    """
    labels = np.array([q["answerable"] for q in train])
    while True:
        x = np.array([[q["features"][f] for f in names] for q in train])
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(x, labels)
        wrong = [n for n, c in zip(names, model.coef_[0]) if n in POSITIVE and c < 0]
        if not wrong or len(names) == 1:
            break
        names = tuple(n for n in names if n not in wrong)
    # The cheap floors sit 0.05 below the least relevant / least similar answerable question.
    floor = max(0.0, min(q["features"]["relevance"] for q in train if q["answerable"]) - 0.05)
    cosine_floor = max(0.0, min(q["features"]["cosine"] for q in train if q["answerable"]) - 0.05)
    weights = Weights(float(model.intercept_[0]), dict(zip(names, map(float, model.coef_[0]))), 0.5, floor,
                      cosine_floor)
    probs, answerable = probabilities(weights, scored(train)), [q["answerable"] for q in scored(train)]
    # The highest threshold whose false refusals stay within the budget refuses the most. It is
    # placed half-way to the next lower probability, not on a question's own: with few distinct
    # probabilities (the quote's kinds) one on the threshold would flip with the rounding of the
    # shipped weights.
    candidates = sorted(set(probs)) + [1.0]
    best = max((t for t in candidates if rates(probs, answerable, t)["false_refusal_rate"] <= max_false_refusals),
               default=0.5)
    threshold = (best + max((p for p in candidates if p < best), default=0.0)) / 2
    return Weights(weights.intercept, weights.coef, threshold, floor, cosine_floor)


def probabilities(weights: Weights, rows: list[dict[str, Any]]) -> list[float]:
    """P(answerable) per question; 0 below either floor, as the judge decides."""
    return [0.0 if weights.off_topic(q["features"]["relevance"], q["features"]["cosine"])
            else weights.probability(q["features"]) for q in rows]


def scored(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The questions every rate is read on: the answerable ones asked in readers' own words (the
    paraphrase set), and every unanswerable one (on-topic and off-topic). The development set's
    answerable questions reuse the documents' words and are almost never refused: counted in, they
    let the false refusals of real questions run to twice the budget (0.07 over both sets was 0.13
    on paraphrases)."""
    return [q for q in rows if not q["answerable"] or q.get("dataset") == "paraphrase"] or rows


def score(weights: Weights, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Refusal rates of fitted ``weights`` on the ``scored`` questions of ``rows``."""
    rows = scored(rows)
    return rates(probabilities(weights, rows), [q["answerable"] for q in rows], weights.threshold)


def cross_validate(train: list[dict[str, Any]], names: tuple[str, ...], max_false_refusals: float) -> dict[str, float]:
    """Mean refusal rates over 5 stratified folds of the calibration data."""
    labels = np.array([q["answerable"] for q in train])
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(np.zeros(len(train)), labels)
    scores = [score(fit([train[i] for i in fit_idx], names, max_false_refusals), [train[i] for i in test_idx])
              for fit_idx, test_idx in folds]
    return {k: round(float(np.mean([s[k] for s in scores])), 3) for k in ("refusal_accuracy", "false_refusal_rate")}


def fit_judge(questions: list[dict[str, Any]], max_false_refusals: float) -> dict[str, Any]:
    """Pick the feature set by cross-validation, fit it on all calibration data, score held-out."""
    train = [q for q in questions if q["split"] == "calibration"]
    held = [q for q in questions if q["split"] == "heldout"]
    cv = {name: cross_validate(train, names, max_false_refusals) for name, names in FEATURE_SETS.items()}

    def merit(name: str) -> tuple[float, float]:
        # Most unanswerable questions refused while false refusals stay near the budget.
        return (cv[name]["refusal_accuracy"] - 2 * max(0.0, cv[name]["false_refusal_rate"] - max_false_refusals),
                -len(FEATURE_SETS[name]))

    chosen = max(cv, key=merit)
    weights = fit(train, FEATURE_SETS[chosen], max_false_refusals)
    relevance_rule = rates([q["features"]["relevance"] for q in held], [q["answerable"] for q in held], 0.45)
    seconds = sorted(q["seconds"] for q in questions)
    return {"features": chosen, "intercept": round(weights.intercept, 5),
            "coef": {k: round(v, 5) for k, v in weights.coef.items()},
            "threshold": round(weights.threshold, 5), "floor": round(weights.floor, 4),
            "cosine_floor": round(weights.cosine_floor, 4),
            "measured": {"cross_validation": cv, "calibration": score(weights, train),
                         "heldout": score(weights, held),
                         "heldout_by_dataset": {name: score(weights, [q for q in held if q["dataset"] == name])
                                                for name in ("paraphrase", "offtopic")},
                         "heldout_by_set": {name: score(fit(train, names, max_false_refusals), held)
                                            for name, names in FEATURE_SETS.items()},
                         "heldout_relevance_rule_0.45": relevance_rule,
                         "judge_seconds_p50": round(seconds[len(seconds) // 2], 2),
                         "judge_seconds_p95": round(seconds[int(len(seconds) * 0.95)], 2)}}


def fit_support(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Logistic regression of label on (logit P(yes), similarity); threshold for balanced accuracy.

    As in the judge, closeness may not count against support: a negative similarity weight (the
    reversed-relation pairs use the passage's own words) is dropped and the verdict fitted alone.
    """
    uses_similarity = True

    def x_of(rows: list[dict[str, Any]]) -> np.ndarray:
        return np.array([[logit(r["yes"]), r["similarity"] if uses_similarity else 0.0] for r in rows])

    train = [r for r in pairs if r["split"] == "calibration"]
    held = [r for r in pairs if r["split"] == "heldout"]
    labels = np.array([r["label"] for r in train])
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(x_of(train), labels)
    if model.coef_[0][1] < 0:
        uses_similarity = False
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(x_of(train), labels)
    threshold = 0.5

    def accuracy(rows: list[dict[str, Any]]) -> dict[str, Any]:
        predicted = model.predict_proba(x_of(rows))[:, 1] >= threshold
        kinds: dict[str, list[bool]] = {}
        for r, p in zip(rows, predicted):
            kinds.setdefault(r["kind"], []).append(bool(p) == r["label"])
        pos = [bool(p) for r, p in zip(rows, predicted) if r["label"]]
        neg = [not p for r, p in zip(rows, predicted) if not r["label"]]
        precision_den = sum(bool(p) for p in predicted)
        precision_num = sum(bool(p) and r["label"] for r, p in zip(rows, predicted))
        return {"true_positive_rate": round(sum(pos) / max(len(pos), 1), 3),
                "true_negative_rate": round(sum(neg) / max(len(neg), 1), 3),
                "precision": round(precision_num / max(precision_den, 1), 3),
                "by_kind": {k: round(sum(v) / len(v), 3) for k, v in sorted(kinds.items())}}

    similarity_only = {"true_positive_rate": round(sum(r["similarity"] >= 0.5 for r in held if r["label"])
                                                   / max(sum(r["label"] for r in held), 1), 3),
                       "true_negative_rate": round(sum(r["similarity"] < 0.5 for r in held if not r["label"])
                                                   / max(sum(not r["label"] for r in held), 1), 3)}
    return {"intercept": round(float(model.intercept_[0]), 5), "coef_yes": round(float(model.coef_[0][0]), 5),
            "coef_similarity": round(float(model.coef_[0][1]), 5), "threshold": threshold,
            "measured": {"calibration": accuracy(train), "heldout": accuracy(held),
                         "heldout_similarity_only_0.5": similarity_only}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, default=Path(tempfile.gettempdir()) / "footnote-judge-features.json")
    parser.add_argument("--refresh", action="store_true", help="recompute the features with the model")
    parser.add_argument("--max-false-refusals", type=float, default=0.10,
                        help="false refusals allowed on the calibration half of readers' questions (the target)")
    parser.add_argument("--out", type=Path, default=REPO / "rag" / "calibration.json")
    args = parser.parse_args()
    data = compute_features(args.features, args.refresh)
    result = {"note": f"Fitted by evals/calibrate_judge.py on {date.today()} on calibration data only; "
                      "'measured' gives the held-out figures.",
              "judge": fit_judge(with_quote_evidence(data["questions"]), args.max_false_refusals),
              "support": fit_support(data["pairs"])}
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
