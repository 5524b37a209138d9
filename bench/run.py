"""Speed and scale bench of issue 12: Footnote against the textbook LangChain recipe, side by side.

    python bench/run.py [--chunks 1000,10000,100000] [--stores local,server] [--json]
                        [--docs docs] [--keep-rows] [--cache use|refresh|off]

For each corpus size (a seeded synthetic corpus) and store (local, or a `chroma run` server on
loopback) it measures first ingest against the recipe, re-ingest, removal, `ingest.py list`,
retrieval and answer latency, app start-up and memory, all through the public CLI and API in
subprocesses. It writes DOCS/benchmarks.md and DOCS/bench-scale.png; rows also go to
bench/out/rows.json, and --keep-rows reports earlier rows of sizes and stores not rerun.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
import synth  # noqa: E402
from measure import REPO, git_commit, machine, versions  # noqa: E402
from scenario import Options, base_env, fingerprint, measure_row, questions, recipe  # noqa: E402

logger = logging.getLogger("bench")
OUT = REPO / "bench" / "out"
KEYS = ("chunks", "store", "ingest_chunks_per_s", "recipe_chunks_per_s", "ingest_ratio", "reingest_s",
        "remove_doc_s", "list_s", "retrieval_p50_ms", "retrieval_p95_ms", "answer_p50_ms", "app_start_s",
        "app_rss_mb", "ingest_peak_mb")
PACKAGES = ("chromadb", "sentence-transformers", "torch", "onnxruntime", "bm25s", "langchain-core",
            "langchain-chroma", "langchain-huggingface", "langchain-text-splitters", "gradio")


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", default="1000,10000,100000", help="corpus sizes, comma-separated")
    parser.add_argument("--stores", default="local,server", help="local and/or server")
    parser.add_argument("--json", action="store_true", help='print {"rows": [...]} on stdout')
    parser.add_argument("--docs", type=Path, default=REPO / "docs", help="folder for benchmarks.md and the chart")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temp folder)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--questions", type=int, default=30, help="questions timed for retrieval")
    parser.add_argument("--answers", type=int, default=15, help="questions answered end to end")
    parser.add_argument("--app-questions", type=int, default=3, help="questions asked through the app")
    parser.add_argument("--recipe-max-chunks", type=int, default=3000,
                        help="run the recipe on a prefix of about this many chunks above it (0: never)")
    parser.add_argument("--cache", choices=("use", "refresh", "off"), default="use",
                        help="keep built indexes of large corpora under bench/out/cache")
    parser.add_argument("--cache-dir", type=Path, default=None, help="the vector cache's folder (default OUT/cache)")
    parser.add_argument("--cache-min-chunks", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=OUT, help="rows.json and the index cache (git-ignored)")
    parser.add_argument("--standin-vectors", action="store_true",
                        help="at cached sizes, give passages missing from the vector cache stand-in vectors "
                             "(a cached vector plus noise) instead of embedding them; flagged in the report")
    parser.add_argument("--no-recipe", action="store_true", help="skip the textbook recipe (no ratio)")
    parser.add_argument("--merge-rows", type=Path, action="append", default=[], metavar="ROWS_JSON",
                        help="also report the rows of this rows.json (from a run with another --out)")
    parser.add_argument("--report-only", action="store_true", help="measure nothing: write the report from rows")
    parser.add_argument("--keep-rows", action="store_true", help="also report earlier rows from bench/out/rows.json")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a Footnote setting for every child, e.g. embedding_backend=onnx-int8 "
                             "(FOOTNOTE_KEY; nested keys with __)")
    parser.add_argument("--build-cache-only", action="store_true",
                        help="only run the first ingests of sizes >= --cache-min-chunks (fills the vector cache)")
    parser.add_argument("--local-sample", type=int, default=0,
                        help="at the smallest size, also this many answers and an app run with the default "
                             "backend (the local LLM when installed)")
    parser.add_argument("--note", action="append", default=[], help="a line for the report's Notes section")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = dict(item.split("=", 1) for item in args.setting if "=" in item)
    sizes = [int(s.replace("_", "")) for s in args.chunks.split(",") if s.strip()]
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if not sizes or any(s not in {"local", "server"} for s in stores) or not stores:
        raise SystemExit("--chunks needs sizes and --stores only local and/or server")
    own_work = args.work is None
    work = Path(tempfile.mkdtemp(prefix="footnote-scale-")) if own_work else args.work
    opts = Options(work=work, cache=args.cache_dir or args.out / "cache", cache_min_chunks=args.cache_min_chunks, cache_mode=args.cache,
                   questions=args.questions, answers=args.answers, app_questions=args.app_questions,
                   recipe_max_chunks=args.recipe_max_chunks, seed=args.seed,
                   settings=settings, local_sample=args.local_sample, smallest=min(sizes),
                   standin=args.standin_vectors)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    meta: dict[str, Any] = {"started": started, "machine": machine(), "versions": versions(PACKAGES),
                            "commit": git_commit(), "fingerprint": fingerprint(base_env(settings)),
                            "settings": settings,
                            "questions": args.questions, "answers": args.answers, "notes": args.note,
                            "argv": shown_argv(sys.argv[1:] if argv is None else argv)}
    qfile = work / "questions.json"
    work.mkdir(parents=True, exist_ok=True)
    qfile.write_text(json.dumps(questions(args.questions)), encoding="utf-8")
    chain = synth.Chain.train()
    rows: list[dict[str, Any]] = []
    try:
        for size in [] if args.report_only else sizes:
            corpus = work / f"corpus-{size}"
            shape = synth.build(corpus, size, seed=args.seed, chain=chain)
            logger.info("%d chunks: corpus of %d documents", size, shape["documents"])
            if args.build_cache_only:
                if size >= args.cache_min_chunks:
                    for store in stores:
                        logger.info("%d %s: %s", size, store, measure_row(
                            size, store, corpus, opts, qfile, {}, shape, first_only=True))
                continue
            recipe_row = {} if args.no_recipe else recipe(corpus, work / f"recipe-{size}", opts, qfile, size)
            for store in stores:
                row = measure_row(size, store, corpus, opts, qfile, recipe_row, shape)
                row.update(commit=meta["commit"], load=round(os.getloadavg()[0], 1))
                rows.append(row)
                save_rows(rows, args.out)
                logger.info("%d %s: %s", size, store, {k: _round(row.get(k)) for k in KEYS[2:]})
            shutil.rmtree(corpus, ignore_errors=True)
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    if args.build_cache_only:
        return 0
    reported = merged(rows, args.out) if args.keep_rows or args.report_only else rows
    for extra in args.merge_rows:
        known = {(r["chunks"], r["store"]) for r in reported}
        reported += [r for r in json.loads(extra.read_text(encoding="utf-8")) if (r["chunks"], r["store"]) not in known]
    reported.sort(key=lambda r: (r["chunks"], r["store"]))
    meta["report_only"] = args.report_only
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    meta["load_end"] = [round(x, 2) for x in os.getloadavg()]
    path = report.write(reported, meta, args.docs)
    logger.info("wrote %s", path)
    if args.json:
        print(json.dumps({"rows": rows}))
    return 0


def shown_argv(argv: list[str]) -> str:
    """The command line for the report's header, without the --note texts (they are in the report)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--note":
            skip = True
        elif not arg.startswith("--note="):
            kept.append(arg)
    return " ".join(kept) + (" --note ..." if len(kept) < len(argv) else "")


def _round(value: Any) -> Any:
    return round(value, 2) if isinstance(value, float) else value


def save_rows(rows: list[dict[str, Any]], out: Path) -> None:
    """Record measured rows in OUT/rows.json, replacing earlier ones of the same size and store."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "rows.json").write_text(json.dumps(merged(rows, out), indent=1), encoding="utf-8")


def merged(rows: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """Earlier rows from OUT/rows.json overlaid with ``rows``, by (chunks, store)."""
    path = out / "rows.json"
    earlier = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    by_key = {(r["chunks"], r["store"]): r for r in earlier}
    by_key.update({(r["chunks"], r["store"]): r for r in rows})
    return sorted(by_key.values(), key=lambda r: (r["chunks"], r["store"]))


if __name__ == "__main__":
    sys.exit(main())
