"""Answer latency per backend, side by side on the same questions over the seed corpus.

    python bench/answer_latency.py [--llm-url http://127.0.0.1:8080/v1 --llm-model NAME] [--rounds 3]

Without --llm-url only the extractive backend runs. Figures are seconds per answer (p50, p95)
and, for streaming, time to the first piece of text.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.config import build_settings  # noqa: E402
from rag.indexer import Indexer  # noqa: E402
from rag.pipeline import ask  # noqa: E402

QUESTIONS = [
    "Which book argues that moving labour out of agriculture caused the collapse?",
    "Why did Mao oppose the Soviet model?",
    "What role did overreporting by local cadres play?",
    "Why was Russia's starting point different from China's?",
    "What did the USSR do to agriculture to fund industrialisation?",
]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile by linear interpolation."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm-url", default="")
    parser.add_argument("--llm-model", default="local")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="footnote-latency-"))
    base = build_settings(corpus_dir=REPO / "corpus", data_dir=data)
    Indexer(base).sync()
    backends = {"extractive": base}
    if args.llm_url:
        backends["openai"] = base.with_updates(**{"answer.backend": "openai", "answer.model": args.llm_model,
                                                  "answer.base_url": args.llm_url, "answer.max_tokens": 200})
    ask(QUESTIONS[0], settings=base)  # load the model and open the index once, outside the timing
    results: dict[str, dict[str, list[float]]] = {name: {"total": [], "first": []} for name in backends}
    for _ in range(args.rounds):
        for question in QUESTIONS:
            for name, settings in backends.items():  # interleaved, so noise hits both alike
                answer = ask(question, settings=settings)
                results[name]["total"].append(answer.timings["total_s"])
                results[name]["first"].append(answer.timings.get("first_token_s", answer.timings["total_s"]))
    print(f"{'backend':12} {'n':>3} {'p50 s':>7} {'p95 s':>7} {'first text p50 s':>17}")
    for name, r in results.items():
        print(f"{name:12} {len(r['total']):>3} {percentile(r['total'], .5):>7.2f} {percentile(r['total'], .95):>7.2f} "
              f"{statistics.median(r['first']):>17.2f}")
    if len(results) == 2:
        ratio = percentile(results["openai"]["total"], .5) / percentile(results["extractive"]["total"], .5)
        print(f"openai / extractive p50 ratio: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
