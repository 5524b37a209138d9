"""When should BM25 join the dense ranking (``retrieval.keyword_lead``), and how many dense
candidates are re-ranked by their closest sentence (``retrieval.sentence_rerank``)? Retrieval alone.

Every candidate is scored on the development set (questions that reuse the documents' words)
and on the calibration half of the paraphrased set (readers' own words); the one with the most
questions whose top five passages hold a reference context wins, ties broken by MRR. The
held-out half is then reported for the chosen value and for fusing always (1.0), never chosen on.
Retrieval is not the whole answer: the default also depends on how the answerability judge,
refitted on what that retrieval returns, does (``evals/calibrate_judge.py``; README).

    python evals/fusion.py [--corpus evals/corpus] [--k 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.config import Settings, build_settings  # noqa: E402
from rag.eval.datasets import load_dataset  # noqa: E402
from rag.eval.index import prepare_index  # noqa: E402
from rag.eval.items import EvalItem  # noqa: E402
from rag.eval.metrics import matches, reciprocal_rank  # noqa: E402
from rag.pipeline import retrieve_passages  # noqa: E402

LEADS = (1.0, 1.2, 1.35, 1.5, 1.75, 2.0, 2.5, 1e9)  # 1e9: dense search alone
RERANKS = (0, 5, 10, 15)


def score(items: list[EvalItem], settings: Settings, k: int) -> tuple[int, float]:
    """Questions whose top ``k`` passages hold a reference context, and the mean reciprocal rank."""
    hits, rr = 0, 0.0
    for item in items:
        texts = [p.text for p in retrieve_passages(item.question, settings=settings, k=k).passages]
        found = matches(texts, item.reference_contexts)
        hits += any(found)
        rr += reciprocal_rank(found)
    return hits, rr / max(len(items), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO / "evals" / "corpus")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    base = prepare_index(build_settings(**{"local": {"judge": "off"}}), corpus=args.corpus)
    answerable = [i for i in load_dataset(REPO / "evals" / "paraphrase.jsonl").items if i.answerable]
    dev = [i for i in load_dataset(REPO / "evals" / "dev.jsonl").items if i.answerable]
    calibration = [i for i in answerable if i.split == "calibration"]
    heldout = [i for i in answerable if i.split == "heldout"]
    print(f"sentence_rerank | keyword_lead | dev hit@{args.k} (of {len(dev)}) | calibration hit@{args.k} "
          f"(of {len(calibration)}) | total | mrr dev / calibration")
    results = {}
    for rerank in RERANKS:
        for lead in LEADS:
            settings = base.with_updates(**{"retrieval.keyword_lead": lead, "retrieval.sentence_rerank": rerank})
            (dh, dm), (ch, cm) = score(dev, settings, args.k), score(calibration, settings, args.k)
            results[rerank, lead] = (dh + ch, dm + cm)
            print(f"{rerank} | {lead:g} | {dh} | {ch} | {dh + ch} | {dm:.3f} / {cm:.3f}", flush=True)
    chosen = max(results, key=lambda option: results[option])
    print(f"chosen on dev + calibration: sentence_rerank = {chosen[0]}, keyword_lead = {chosen[1]:g}")
    for rerank, lead in dict.fromkeys(((0, 1.0), chosen)):
        settings = base.with_updates(**{"retrieval.keyword_lead": lead, "retrieval.sentence_rerank": rerank})
        hits, mrr = score(heldout, settings, args.k)
        print(f"held-out, sentence_rerank {rerank}, keyword_lead {lead:g}: "
              f"hit@{args.k} {hits}/{len(heldout)} = {hits / len(heldout):.3f}, mrr {mrr:.3f}")


if __name__ == "__main__":
    main()
