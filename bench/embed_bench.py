"""Embedding benchmark: the torch backend against onnx-int8 on the same passages and the same ingest.

The corpus is bench/ingest_bench.py's (standard-library documentation as .txt files) cut by
Footnote's own chunker. The ONNX model is exported once into a cache first (timed apart); then each
round runs one backend in a fresh subprocess (clean peak-memory figures), alternating torch and
onnx-int8 so that load from other work on the machine falls on both alike, and medians are printed:

- passages/s: the chunks embedded in one ``Embedder.embed`` call, after a warm-up;
- cosine: each passage's onnx-int8 vector against its torch vector;
- ingest s: a first ``Indexer.sync`` of the corpus into an empty data folder (read, chunk, embed,
  write to Chroma and BM25), with the model already loaded;
- load: importing ``rag.embeddings`` and loading the model, from the subprocess's start;
- peak RSS: of the whole subprocess, after loading, after embedding and after the ingest.

    python bench/embed_bench.py [--modules 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

BACKENDS = ("torch", "onnx-int8")


def passages(corpus: Path) -> list[str]:
    """The corpus's chunks, as Footnote's loader and chunker cut them."""
    from rag.chunking import make_splitter, split
    from rag.config import build_settings
    from rag.embeddings import load_tokenizer, read_spec, resolve_model_path
    from rag.loaders import load

    settings = build_settings()
    # The tokenizer alone, without importing torch (which would spoil onnx-int8's memory figure).
    spec = read_spec(settings.embedding_model, resolve_model_path(settings.embedding_model))
    splitter = make_splitter(load_tokenizer(spec.transformer_dir), chunk_tokens=settings.chunking.chunk_tokens,
                             overlap_tokens=settings.chunking.overlap_tokens, max_seq_length=spec.max_seq_length)
    docs = [d for p in sorted(corpus.glob("*.txt")) for d in load(p, source=p.name, max_bytes=10**8)]
    return [c.page_content for c in split(docs, splitter)]


def child(backend: str, corpus: Path, data: Path, cache: Path, vectors: Path | None) -> dict[str, float]:
    """One round of one backend in this process: load, embed the passages, ingest the corpus."""
    started = time.perf_counter()
    from rag.config import build_settings
    from rag.embeddings import get_embedder

    settings = build_settings(corpus_dir=corpus, data_dir=data, embedding_backend=backend)
    embedder = get_embedder(settings.embedding_model, settings.embedding_batch_size,
                            backend=backend, cache_dir=cache)
    load_s = time.perf_counter() - started
    rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch_imported = "torch" in sys.modules
    from rag.indexer import Indexer

    texts = passages(corpus)
    embedder.embed(texts[:8])
    started = time.perf_counter()
    result = embedder.embed(texts)
    embed_s = time.perf_counter() - started
    rss_embed = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if vectors is not None:
        np.save(vectors, result)
    report = Indexer(settings, embedder=embedder).sync()
    return {
        "passages": len(texts), "load_s": load_s, "rss_load_mb": rss_load, "embed_s": embed_s,
        "passages_per_s": len(texts) / embed_s, "ingest_s": report.seconds,
        "ingest_chunks": report.chunks_embedded, "rss_embed_mb": rss_embed,
        "rss_ingest_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_imported": float(torch_imported),
    }


def export(cache: Path) -> float:
    """Export the ONNX model into ``cache`` (the one-time cost); seconds taken."""
    from rag.config import BUNDLED_MODEL
    from rag.embeddings import Embedder

    started = time.perf_counter()
    Embedder(BUNDLED_MODEL, backend="onnx-int8", cache_dir=cache)
    return time.perf_counter() - started


def run(args: list[str]) -> dict[str, float]:
    """Run this script with ``args`` in a subprocess; its last stdout line as JSON."""
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False,
                         env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if out.returncode:
        sys.exit(f"child {args[:2]} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=(*BACKENDS, "export"))
    parser.add_argument("--work", type=Path)
    parser.add_argument("--round", type=int, default=0)
    args = parser.parse_args()
    if args.child == "export":
        print(json.dumps({"export_s": export(args.work / "cache")}))
        return 0
    if args.child:
        work = args.work
        vectors = work / f"{args.child}.npy" if args.round == 0 else None
        print(json.dumps(child(args.child, work / "corpus", work / f"data-{args.child}-{args.round}",
                               work / "cache", vectors)))
        return 0

    from ingest_bench import build_corpus

    work = Path(tempfile.mkdtemp(prefix="footnote-embed-bench-"))
    try:
        build_corpus(work / "corpus", args.modules)
        first = run(["--child", "export", "--work", str(work)])
        results: dict[str, list[dict[str, float]]] = {b: [] for b in BACKENDS}
        for n in range(args.rounds):
            for backend in BACKENDS if n % 2 == 0 else reversed(BACKENDS):
                results[backend].append(run(["--child", backend, "--work", str(work), "--round", str(n)]))
                got = results[backend][-1]
                print(f"round {n + 1} {backend:9}: {got['passages_per_s']:6.1f} passages/s, "
                      f"ingest {got['ingest_s']:5.1f} s", file=sys.stderr)
        a, b = np.load(work / "torch.npy"), np.load(work / "onnx-int8.npy")
        cosines = (a * b).sum(axis=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def median(backend: str, key: str) -> float:
        return statistics.median(r[key] for r in results[backend])

    t, o = "torch", "onnx-int8"
    rows = [
        ("passages embedded", f"{median(t, 'passages'):.0f}", f"{median(o, 'passages'):.0f}", ""),
        ("import + model load, s", f"{median(t, 'load_s'):.2f}", f"{median(o, 'load_s'):.2f}",
         f"onnx export once: {first['export_s']:.1f} s"),
        ("RSS after load, MB", f"{median(t, 'rss_load_mb'):.0f}", f"{median(o, 'rss_load_mb'):.0f}", ""),
        ("passages/s", f"{median(t, 'passages_per_s'):.1f}", f"{median(o, 'passages_per_s'):.1f}",
         f"{median(o, 'passages_per_s') / median(t, 'passages_per_s'):.2f}x"),
        ("first ingest, s", f"{median(t, 'ingest_s'):.1f}", f"{median(o, 'ingest_s'):.1f}",
         f"{median(t, 'ingest_s') / median(o, 'ingest_s'):.2f}x faster"),
        ("chunks in ingest", f"{median(t, 'ingest_chunks'):.0f}", f"{median(o, 'ingest_chunks'):.0f}", ""),
        ("peak RSS after embedding, MB", f"{median(t, 'rss_embed_mb'):.0f}", f"{median(o, 'rss_embed_mb'):.0f}",
         f"{median(o, 'rss_embed_mb') / median(t, 'rss_embed_mb'):.2f}x"),
        ("peak RSS after ingest, MB", f"{median(t, 'rss_ingest_mb'):.0f}", f"{median(o, 'rss_ingest_mb'):.0f}",
         f"{median(o, 'rss_ingest_mb') / median(t, 'rss_ingest_mb'):.2f}x"),
        ("torch imported to load", f"{median(t, 'torch_imported'):.0f}", f"{median(o, 'torch_imported'):.0f}", ""),
    ]
    print(f"medians of {args.rounds} alternating rounds, {os.cpu_count()} cores")
    print(f"{'':30} {'torch':>10} {'onnx-int8':>10}  ratio")
    for name, x, y, ratio in rows:
        print(f"{name:30} {x:>10} {y:>10}  {ratio}")
    print(f"cosine onnx-int8 vs torch: mean {cosines.mean():.4f}, min {cosines.min():.4f}, "
          f"5th percentile {np.percentile(cosines, 5):.4f}")
    print(json.dumps({"export_s": first["export_s"], "rounds": results,
                      "cosine_mean": float(cosines.mean()), "cosine_min": float(cosines.min())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
