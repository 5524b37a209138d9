"""One row of the bench: a corpus size on one store, measured through `ingest.py`, the API and the app."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import synth
from app_probe import measure_app
from measure import PYTHON, REPO, Run, Server, chroma_server, git_commit, percentile, run

logger = logging.getLogger("bench")
QUESTIONS_FILE = REPO / "evals" / "dev.jsonl"


@dataclass
class Options:
    """What the whole bench run was asked to do."""

    work: Path
    cache: Path
    cache_min_chunks: int = 100_000
    cache_mode: str = "use"  # use | refresh | off
    questions: int = 30
    answers: int = 15
    app_questions: int = 3
    recipe_max_chunks: int = 3000
    seed: int = 12
    settings: dict[str, str] = field(default_factory=dict)  # extra FOOTNOTE_* for every child
    local_sample: int = 0  # answers with the default backend (local LLM), at the smallest size only
    smallest: int = 0
    standin: bool = False  # vectors missing from the cache get stand-ins instead of being embedded


def questions(n: int) -> list[str]:
    """The first ``n`` answerable development-set questions (real readers' questions)."""
    rows = [json.loads(line) for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["question"] for r in rows if r.get("answerable", True)][:n]


def base_env(footnote: dict[str, str] | None = None, **more: str) -> dict[str, str]:
    """The environment of every child: no inherited FOOTNOTE_* variable but the folder of exported
    models (one export for every child), offline, no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTNOTE_") or k == "FOOTNOTE_MODELS_DIR"}
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
               TOKENIZERS_PARALLELISM="false", PYTHONDONTWRITEBYTECODE="1")
    env.update({f"FOOTNOTE_{k.upper()}": v for k, v in {**(footnote or {}), **more}.items()})
    return env


def ingest(env: dict[str, str], *args: str) -> tuple[Run, dict[str, Any]]:
    """`python3 ingest.py ARGS --json`; the run and its JSON report."""
    done = run([PYTHON, "ingest.py", *args, "--json"], env=env).check(f"ingest.py {' '.join(args)}")
    return done, done.json()


def recipe(corpus: Path, work: Path, opts: Options, qfile: Path, nominal: int) -> dict[str, Any]:
    """The textbook recipe on the corpus, or on a prefix of it when it is larger than the cap."""
    source = corpus
    extrapolated = bool(opts.recipe_max_chunks) and nominal > opts.recipe_max_chunks
    if extrapolated:
        source = work / "recipe-corpus"
        synth.subset(corpus, source, opts.recipe_max_chunks)
    done = run([PYTHON, "bench/recipe.py", "--corpus", str(source), "--data", str(work / "recipe-data"),
                "--questions", str(qfile)], env=base_env()).check("the textbook recipe")
    got = done.json()
    shutil.rmtree(work / "recipe-data", ignore_errors=True)
    return {"recipe_chunks_per_s": got["chunks_per_s"], "recipe_chunks": got["chunks"],
            "recipe_extrapolated": extrapolated, "recipe_ingest_s": got["ingest_s"],
            "recipe_ingest_peak_mb": done.peak_mb, "recipe_wall_s": done.wall_s,
            "recipe_retrieval_p50_ms": percentile(got["search_ms"], 0.5),
            "recipe_retrieval_p95_ms": percentile(got["search_ms"], 0.95)}


def fingerprint(env: dict[str, str]) -> str:
    """Embedding backend and index fingerprint these settings give, via the public ``Settings``."""
    code = ("import rag; s = rag.build_settings(); "
            "print(getattr(s, 'embedding_backend', '?'), getattr(s, 'index_fingerprint', lambda: '?')())")
    done = run([PYTHON, "-c", code], env=env)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


@contextlib.contextmanager
def store_env(store: str, data: Path, corpus: Path, server_path: Path,
              extra: dict[str, str]) -> Iterator[tuple[dict[str, str], Server | None]]:
    """The environment of one row's children, with a `chroma run` server for the server store."""
    settings = {**extra, "data_dir": str(data), "corpus_dir": str(corpus), "answer__backend": "extractive",
                "local__judge": "off", "log_level": "WARNING"}
    if store == "local":
        yield base_env(settings), None
        return
    with chroma_server(server_path, server_path.parent / "chroma.log") as server:
        yield base_env(settings, chroma_url=server.url), server


def first_ingest(env: dict[str, str], corpus: Path, staging: Path, vectors: Path | None, *,
                 standin: bool = False) -> dict[str, Any]:
    """Set the index up on a one-file corpus (model export, collection), then time the real first ingest.

    With ``vectors``, the real ingest runs under bench/cached_embed.py: passages embedded by an
    earlier run come from that cache.
    """
    # The index is bound to its corpus folder: the folder holds one small file for the set-up,
    # then the real documents are moved in (renames, not copies) and the small file goes.
    corpus.mkdir(parents=True, exist_ok=True)
    warm = corpus / "warm.txt"
    warm.write_text("A short note so that the index exists before the timing.\n", encoding="utf-8")
    setup, _ = ingest(env)
    for item in staging.iterdir():
        item.rename(corpus / item.name)
    warm.unlink()
    wrapper = ["bench/cached_embed.py", str(vectors)] if vectors else []
    done = run([PYTHON, *wrapper, "ingest.py", "--json"], env={**env, "BENCH_STANDIN_VECTORS": str(int(standin))}
               ).check("the first ingest")
    report = done.json()
    hits = re.search(r"vector cache (\d+) hits, (\d+) misses, (\d+) stand-ins", done.stderr)
    rate = report["chunks_embedded"] / max(report["seconds"], 1e-9)
    return {"setup_s": setup.wall_s, "ingest_s": report["seconds"], "ingest_wall_s": done.wall_s,
            "chunks_embedded": report["chunks_embedded"], "chunks_indexed": report["chunks_total"],
            "ingest_chunks_per_s": rate, "ingest_peak_mb": done.peak_mb,
            "vectors_from_cache": int(hits.group(1)) if hits else 0,
            "vectors_standin": int(hits.group(3)) if hits else 0,
            "ingest_measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "ingest_commit": git_commit()}


def measure_row(chunks: int, store: str, corpus_base: Path, opts: Options, qfile: Path,
                recipe_row: dict[str, Any], shape: dict[str, int], *, first_only: bool = False) -> dict[str, Any]:
    """Every figure of one (size, store) row (only the first ingest with ``first_only``)."""
    work = opts.work / f"{chunks}-{store}"
    shutil.rmtree(work, ignore_errors=True)
    corpus, data, server_path = work / "corpus", work / "data", work / "chroma-server"
    shutil.copytree(corpus_base, work / "staging")
    cached = opts.cache_mode != "off" and chunks >= opts.cache_min_chunks
    if cached and opts.cache_mode == "refresh":
        shutil.rmtree(opts.cache / "vectors", ignore_errors=True)
    row: dict[str, Any] = {"chunks": chunks, "store": store, **shape}
    with store_env(store, data, corpus, server_path, opts.settings) as (env, _):
        logger.info("%s %d: first ingest%s", store, chunks, " (vector cache)" if cached else "")
        row.update(first_ingest(env, corpus, work / "staging", opts.cache / "vectors" if cached else None,
                                standin=opts.standin))
        row["embeddings_cached"] = row["vectors_from_cache"] + row["vectors_standin"] > 0
        record = opts.cache / f"record-{chunks}-{store}-seed{opts.seed}.json"
        if cached and not row["embeddings_cached"]:  # every vector computed: a real first ingest
            keep = {k: v for k, v in row.items() if k.startswith(("ingest", "chunks_"))}
            record.write_text(json.dumps(keep, indent=1), encoding="utf-8")
        elif row["embeddings_cached"]:
            # The live figures are the ingest without embedding; the rate shown is the run that embedded.
            row.update(ingest_cached_chunks_per_s=row["ingest_chunks_per_s"], ingest_cached_s=row["ingest_s"],
                       ingest_cached_peak_mb=row["ingest_peak_mb"], ingest_chunks_per_s=None, ingest_peak_mb=None)
            if record.exists():
                row.update({k: v for k, v in json.loads(record.read_text(encoding="utf-8")).items()
                            if k in {"ingest_chunks_per_s", "ingest_peak_mb", "ingest_measured", "ingest_commit",
                                     "ingest_s", "ingest_wall_s"}})
        if first_only:
            shutil.rmtree(work, ignore_errors=True)
            return row
        return steady_state(row, env, corpus, work, opts, qfile, recipe_row)


def steady_state(row: dict[str, Any], env: dict[str, str], corpus: Path, work: Path, opts: Options,
                 qfile: Path, recipe_row: dict[str, Any]) -> dict[str, Any]:
    """Everything measured on the built index: re-ingest, list, retrieval, answers, app, removal."""
    chunks, store = row["chunks"], row["store"]
    again, report = ingest(env)
    if report["chunks_embedded"] and row["embeddings_cached"]:
        raise RuntimeError(f"the cached index for {chunks} chunks is stale (an unchanged re-ingest embedded "
                           f"{report['chunks_embedded']} chunks); run with --cache refresh")
    row.update(reingest_s=report["seconds"], reingest_wall_s=again.wall_s,
               reingest_embedded=report["chunks_embedded"])
    row["changed_documents"] = synth.change(corpus, 0.01, seed=opts.seed)
    changed, report = ingest(env)
    row.update(reingest_changed_s=report["seconds"], reingest_changed_wall_s=changed.wall_s,
               reingest_changed_embedded=report["chunks_embedded"])
    listed = run([PYTHON, "ingest.py", "list", "--json"], env=env).check("ingest.py list")
    row.update(list_s=listed.wall_s, list_documents=len(listed.json()),
               cli_start_s=run([PYTHON, "ingest.py", "--help"], env=env).wall_s)
    logger.info("%s %d: retrieval and answers", store, chunks)
    sample = opts.local_sample if chunks == opts.smallest and store == "local" else 0
    probe = run([PYTHON, "bench/probe.py", "--questions", str(qfile), "--answers", str(opts.answers),
                 "--default-answers", str(sample)], env=env).check("bench/probe.py")
    got = probe.json()
    row.update(retrieval_p50_ms=percentile(got["hybrid_ms"], 0.5), retrieval_p95_ms=percentile(got["hybrid_ms"], 0.95),
               retrieval_dense_p50_ms=percentile(got["dense_ms"], 0.5),
               retrieval_dense_p95_ms=percentile(got["dense_ms"], 0.95),
               retrieval_cold_ms=got["cold_retrieval_ms"], answer_p50_ms=percentile(got["answer_ms"], 0.5),
               answer_p95_ms=percentile(got["answer_ms"], 0.95), answer_backend=got["backend"],
               answers_refused=got["refused"], answers_measured=len(got["answer_ms"]), probe_peak_mb=got["extractive_peak_mb"])
    if sample:
        row.update(default_answer_p50_ms=percentile(got["default_answer_ms"], 0.5),
                   default_answer_p95_ms=percentile(got["default_answer_ms"], 0.95),
                   default_backend=got["default_backend"], default_answers=len(got["default_answer_ms"]),
                   default_probe_peak_mb=probe.peak_mb)
    logger.info("%s %d: app start", store, chunks)
    asked = json.loads(qfile.read_text(encoding="utf-8"))[:opts.app_questions]
    row.update(measure_app(env, asked, work / "app.log"))
    if sample:
        local = {**env, "FOOTNOTE_ANSWER__BACKEND": "auto", "FOOTNOTE_LOCAL__JUDGE": "auto"}
        row.update({k.replace("app_", "app_local_"): v for k, v in measure_app(local, asked[:1], work / "app2.log").items()})
    removed, report = ingest(env, "remove", synth.BIG_NAME)
    row.update(remove_doc_s=report["seconds"], remove_doc_wall_s=removed.wall_s)
    row.update(recipe_row)
    rate, baseline = row.get("ingest_chunks_per_s"), row.get("recipe_chunks_per_s")
    row["ingest_ratio"] = rate / baseline if rate and baseline else None
    row.setdefault("recipe_chunks_per_s", None)
    shutil.rmtree(work, ignore_errors=True)
    return row
