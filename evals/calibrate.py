"""Calibrate the refusal and support thresholds on the development set, and report how they do.

Refusal: the retrieval relevance of answerable questions against that of unanswerable but
near-topic ones; the threshold maximising balanced accuracy is reported with the trade-off
table (a false refusal costs a user more than quoted-but-beside-the-point material, which the
extractive backend never invents, so the shipped threshold sits left of that optimum). Support: reference answers scored
against the passage holding their reference context (supported) and against the best passage
of another document, plus the same answers with their names swapped for invented ones
(unsupported). Each threshold is also scored by 2-fold cross-validation (fit on half the
questions, measured on the other half), so the figure reported is not the figure fitted.

    python evals/calibrate.py [--dataset evals/dev.jsonl] [--corpus evals/corpus]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.citations import SupportChecker  # noqa: E402
from rag.config import build_settings  # noqa: E402
from rag.embeddings import embedder_for  # noqa: E402
from rag.indexer import Indexer  # noqa: E402
from rag.pipeline import retrieve_passages  # noqa: E402

INVENTED = ["Ivanov", "Zhang Wei", "1947", "Smith", "Okonkwo", "Larsen", "1989", "Bukharin Jr"]


def best_threshold(positives: list[float], negatives: list[float]) -> tuple[float, float]:
    """The cut (midpoint between neighbouring scores) with the best balanced accuracy."""
    scores = sorted(set(positives + negatives))
    cuts = [(a + b) / 2 for a, b in zip(scores, scores[1:])] or [0.5]
    def balanced(cut: float) -> float:
        tp = sum(p >= cut for p in positives) / max(len(positives), 1)
        tn = sum(n < cut for n in negatives) / max(len(negatives), 1)
        return (tp + tn) / 2
    best = max(cuts, key=lambda c: (balanced(c), -abs(c - 0.5)))
    return best, balanced(best)


def cross_validated(pos: list[tuple[str, float]], neg: list[tuple[str, float]]) -> float:
    """Balanced accuracy of thresholds fitted on one half of the ids and tested on the other."""
    ids = sorted({i for i, _ in pos + neg})
    random.Random(7).shuffle(ids)
    folds = [set(ids[::2]), set(ids[1::2])]
    results = []
    for train, test in (folds, folds[::-1]):
        cut, _ = best_threshold([s for i, s in pos if i in train], [s for i, s in neg if i in train])
        tp = [s >= cut for i, s in pos if i in test]
        tn = [s < cut for i, s in neg if i in test]
        results.append((sum(tp) / max(len(tp), 1) + sum(tn) / max(len(tn), 1)) / 2)
    return sum(results) / len(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=REPO / "evals" / "dev.jsonl")
    parser.add_argument("--corpus", type=Path, default=REPO / "evals" / "corpus")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "footnote-calibrate")
    args = parser.parse_args()
    settings = build_settings(corpus_dir=args.corpus, data_dir=args.data_dir)
    Indexer(settings).sync()
    items = [json.loads(line) for line in args.dataset.read_text(encoding="utf-8").splitlines() if line.strip()]
    checker = SupportChecker(embedder_for(settings))

    answerable: list[tuple[str, float]] = []
    unanswerable: list[tuple[str, float]] = []
    supported: list[tuple[str, float]] = []
    unsupported: list[tuple[str, float]] = []
    rng = random.Random(11)
    for item in items:
        found = retrieve_passages(item["question"], settings=settings)
        (answerable if item["answerable"] else unanswerable).append((item["id"], found.relevance))
        if not item["answerable"] or not item.get("reference_answer"):
            continue
        claim = item["reference_answer"]
        contexts = item.get("reference_contexts") or []
        holder = next((p for p in found.passages if any(c in p.text for c in contexts)), None)
        if holder is not None:
            supported.append((item["id"], checker.support(claim, holder.text)[0]))
            others = [p for p in found.passages if p.source != holder.source]
            if others:
                unsupported.append((item["id"], checker.support(claim, others[0].text)[0]))
            words = claim.split()
            names = [n for n, w in enumerate(words) if n > 0 and w[:1].isupper()]
            if names:
                swapped = list(words)
                swapped[rng.choice(names)] = rng.choice(INVENTED)
                unsupported.append((item["id"], checker.support(" ".join(swapped), holder.text)[0]))

    refusal_cut, refusal_acc = best_threshold([s for _, s in answerable], [s for _, s in unanswerable])
    support_cut, support_acc = best_threshold([s for _, s in supported], [s for _, s in unsupported])
    report = {
        "refusal": {
            "threshold": round(refusal_cut, 3), "balanced_accuracy": round(refusal_acc, 3),
            "cross_validated_balanced_accuracy": round(cross_validated(answerable, unanswerable), 3),
            "answerable": len(answerable), "unanswerable": len(unanswerable),
            "trade_off": [
                {"threshold": cut,
                 "refusal_accuracy": round(sum(s < cut for _, s in unanswerable) / max(len(unanswerable), 1), 3),
                 "false_refusal_rate": round(sum(s < cut for _, s in answerable) / max(len(answerable), 1), 3)}
                for cut in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
            ],
        },
        "support": {
            "threshold": round(support_cut, 3), "balanced_accuracy": round(support_acc, 3),
            "cross_validated_balanced_accuracy": round(cross_validated(supported, unsupported), 3),
            "supported_pairs": len(supported), "unsupported_pairs": len(unsupported),
            "lowest_supported": round(min((s for _, s in supported), default=0.0), 3),
            "highest_unsupported": sorted(round(s, 3) for _, s in unsupported)[-3:],
        },
        "settings": {"min_relevance": settings.retrieval.min_relevance,
                     "support_threshold": settings.answer.support_threshold},
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
