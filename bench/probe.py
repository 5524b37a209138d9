"""Child process of the bench: retrieval and answer latency through Footnote's public API.

    python bench/probe.py --questions FILE [--answers N] [--rounds R]

Settings come from FOOTNOTE_* variables (corpus, data folder, Chroma URL, backend), exactly as a
user's would. Prints one JSON line: per-question milliseconds for dense and hybrid retrieval and
for whole answers, the cold first retrieval, and this process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--answers", type=int, default=10, help="questions answered end to end")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions for retrieval")
    parser.add_argument("--default-answers", type=int, default=0,
                        help="then this many answers with the default backend and judge (the local LLM when installed)")
    args = parser.parse_args()
    questions = json.loads(args.questions.read_text(encoding="utf-8"))

    started = time.perf_counter()
    import rag
    from rag.pipeline import retrieve_passages

    settings = rag.build_settings()
    import_s = time.perf_counter() - started
    mark = time.perf_counter()
    retrieve_passages(questions[0], settings=settings, hybrid=True)  # model load, index open, BM25 load
    cold_ms = (time.perf_counter() - mark) * 1000
    timings: dict[str, list[float]] = {"dense": [], "hybrid": []}
    for _ in range(args.rounds):
        for question in questions:
            for mode in ("dense", "hybrid"):  # interleaved, so machine noise falls on both alike
                mark = time.perf_counter()
                found = retrieve_passages(question, settings=settings, hybrid=mode == "hybrid")
                timings[mode].append((time.perf_counter() - mark) * 1000)
                if not found.passages:
                    raise SystemExit(f"no passages for {question!r}: the index looks empty")
    answers: list[float] = []
    refused = 0
    backend = ""
    for question in questions[:args.answers]:
        mark = time.perf_counter()
        answer = rag.ask(question, settings=settings)
        answers.append((time.perf_counter() - mark) * 1000)
        refused += int(answer.refused)
        backend = answer.backend
    extractive_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    default_ms: list[float] = []
    default_backend = ""
    if args.default_answers:
        auto = settings.with_updates(**{"answer.backend": "auto", "local.judge": "auto"})
        for question in questions[:args.default_answers]:
            mark = time.perf_counter()
            default_backend = rag.ask(question, settings=auto).backend
            default_ms.append((time.perf_counter() - mark) * 1000)
    print(json.dumps({
        "default_answer_ms": default_ms, "default_backend": default_backend, "extractive_peak_mb": extractive_peak,
        "import_s": import_s, "cold_retrieval_ms": cold_ms, "dense_ms": timings["dense"],
        "hybrid_ms": timings["hybrid"], "answer_ms": answers, "refused": refused, "backend": backend,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
