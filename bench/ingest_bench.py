"""Ingestion benchmark: Footnote's incremental ingest against the textbook LangChain recipe.

Both run side by side on the same corpus in this script, each in its own subprocess (clean
memory figures), and the results are printed as ratios. The corpus is the docstrings of Python
standard-library modules (English prose available offline on every machine), a few hundred chunks.

    python bench/ingest_bench.py [--modules 60] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import os
import pydoc
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULES = """argparse asyncio base64 bisect calendar collections contextlib csv dataclasses datetime
decimal difflib email enum fractions functools gettext glob gzip hashlib heapq hmac html http
imaplib inspect io ipaddress itertools json logging mailbox mimetypes multiprocessing numbers
operator optparse pathlib pickle pprint queue random re sched secrets shelve shlex shutil socket
sqlite3 statistics string struct subprocess tarfile tempfile textwrap threading timeit tkinter
tokenize trace unittest urllib uuid warnings weakref xml zipfile zlib""".split()


def build_corpus(folder: Path, n: int) -> None:
    """Write the first ``n`` modules' rendered documentation as .txt files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in MODULES[:n]:
        try:
            module = __import__(name)
        except ImportError:
            continue
        text = pydoc.render_doc(module, renderer=pydoc.plaintext)  # type: ignore[attr-defined]  # not in typeshed
        (folder / f"{name}.txt").write_text(text[:12000], encoding="utf-8")


def footnote(corpus: Path, data: Path) -> dict[str, float]:
    """First ingest, unchanged re-ingest, and one changed file, with Footnote's indexer."""
    sys.path.insert(0, str(REPO))
    from rag.config import build_settings
    from rag.embeddings import embedder_for
    from rag.indexer import Indexer

    settings = build_settings(corpus_dir=corpus, data_dir=data)
    started = time.perf_counter()
    embedder = embedder_for(settings)
    embedder.embed(["warm up"])
    load_s = time.perf_counter() - started
    indexer = Indexer(settings, embedder=embedder)
    first = indexer.sync()
    again = indexer.sync()
    victim = sorted(corpus.glob("*.txt"))[3]
    text = victim.read_text(encoding="utf-8")
    half = len(text) // 2
    victim.write_text(text[:half] + "\n\nAn inserted paragraph about benchmarks.\n\n" + text[half:], encoding="utf-8")
    changed = indexer.sync()
    return {
        "model_load_s": load_s,
        "first_s": first.seconds, "first_chunks": first.chunks_embedded,
        "unchanged_s": again.seconds, "unchanged_embedded": again.chunks_embedded,
        "changed_s": changed.seconds, "changed_embedded": changed.chunks_embedded,
        "changed_file_chunks": changed.chunks_embedded + changed.chunks_reused,
    }


def textbook_run(corpus: Path, data: Path) -> dict[str, float]:
    """The recipe of countless tutorials, twice (it has no way to skip unchanged files)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path.insert(0, str(REPO))
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from rag.embeddings import resolve_model_path

    started = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(model_name=resolve_model_path("all-MiniLM-L6-v2"))
    embeddings.embed_query("warm up")
    load_s = time.perf_counter() - started
    results: dict[str, float] = {"model_load_s": load_s}
    for run in ("first", "again"):
        started = time.perf_counter()
        docs = [Document(page_content=p.read_text(encoding="utf-8"), metadata={"source": p.name})
                for p in sorted(corpus.glob("*.txt"))]
        chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
        Chroma.from_documents(chunks, embeddings, persist_directory=str(data / run))
        results[f"{run}_s"] = time.perf_counter() - started
        results[f"{run}_chunks"] = len(chunks)
    return results


def child(kind: str, corpus: Path, data: Path) -> None:
    """Run one variant in this process and print its figures as JSON."""
    result = footnote(corpus, data) if kind == "footnote" else textbook_run(corpus, data)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=25)
    parser.add_argument("--child", choices=("footnote", "textbook"))
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.corpus, args.data)
        return 0
    work = Path(tempfile.mkdtemp(prefix="footnote-bench-"))
    results = {}
    try:
        for kind in ("footnote", "textbook"):
            corpus = work / kind / "corpus"
            build_corpus(corpus, args.modules)
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind, "--corpus", str(corpus), "--data", str(work / kind / "data")],
                capture_output=True, text=True, check=True, env={**os.environ, "FOOTNOTE_LOG_LEVEL": "WARNING"},
            )
            results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    f, t = results["footnote"], results["textbook"]
    f_rate = f["first_chunks"] / f["first_s"]
    t_rate = t["first_chunks"] / t["first_s"]
    rows = [
        ("chunks in first ingest", f"{f['first_chunks']}", f"{t['first_chunks']}", ""),
        ("first ingest, s", f"{f['first_s']:.1f}", f"{t['first_s']:.1f}", f"{t['first_s'] / f['first_s']:.2f}x faster"),
        ("first ingest, chunks/s", f"{f_rate:.1f}", f"{t_rate:.1f}", f"{f_rate / t_rate:.2f}x"),
        ("re-ingest unchanged, s", f"{f['unchanged_s']:.2f}", f"{t['again_s']:.1f}", f"{t['again_s'] / max(f['unchanged_s'], 1e-3):.0f}x faster"),
        ("chunks embedded on re-ingest", f"{f['unchanged_embedded']}", f"{t['again_chunks']}", ""),
        ("one file edited: chunks embedded", f"{f['changed_embedded']}", f"{t['again_chunks']}", ""),
        ("one file edited, s", f"{f['changed_s']:.2f}", f"{t['again_s']:.1f}", ""),
        ("peak RSS, MB", f"{f['peak_rss_mb']:.0f}", f"{t['peak_rss_mb']:.0f}", f"{f['peak_rss_mb'] / t['peak_rss_mb']:.2f}x"),
    ]
    print(f"{'':36} {'Footnote':>10} {'textbook':>10}  ratio")
    for name, a, b, ratio in rows:
        print(f"{name:36} {a:>10} {b:>10}  {ratio}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
