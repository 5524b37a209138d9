"""Run a Footnote command with a bench-only cache of passage vectors (for the 100,000-chunk rows).

    python bench/cached_embed.py CACHE_DIR SCRIPT [ARGS...]      e.g. ... bench/out/vectors ingest.py --json

Embedding 100,000 passages takes most of an hour on two cores; the rest of an ingest (reading,
chunking, writing to Chroma and BM25) does not. This wrapper lets the bench pay for the vectors
once: it wraps ``rag.embeddings.Embedder.embed`` so that a passage embedded before (same model,
same backend, same text) comes from CACHE_DIR, and new vectors are added to it, then runs SCRIPT
as ``__main__``. With BENCH_STANDIN_VECTORS=1, passages not in the cache get stand-in vectors
(see ``VectorCache.standin``) instead of being embedded. Rows measured this way are marked
``embeddings_cached`` in the report, with the counts. If the
class or method is gone (internals were restructured), the command runs uncached and says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import runpy
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent


class VectorCache:
    """Vectors by hash of (model, backend, text), kept as .npy shards with their keys beside them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.vectors: dict[str, np.ndarray] = {}
        self.hits = self.misses = self.standins = 0
        for keys_file in sorted(folder.glob("*.json")):
            shard = keys_file.with_suffix(".npy")
            if shard.exists():
                matrix = np.load(shard)
                self.vectors.update(zip(json.loads(keys_file.read_text()), matrix))

    def standin(self, keys: list[str]) -> np.ndarray:
        """Stand-in vectors for ``keys``: a cached real vector (picked by the key's hash) plus a little
        noise, normalised. Same distribution as real ones, so Chroma's index does the same work;
        meaningless for relevance. Not stored."""
        pool = list(self.vectors.values())
        rows = []
        for key in keys:
            rng = np.random.default_rng(int(key[:16], 16))
            v = pool[int(key[16:32], 16) % len(pool)] + rng.normal(0, 0.02, len(pool[0]))
            rows.append(v / np.linalg.norm(v))
        self.standins += len(keys)
        return np.asarray(rows, dtype=np.float32)

    def add(self, keys: list[str], matrix: np.ndarray) -> None:
        """Remember ``matrix``'s rows under ``keys``, on disk at once (a killed run keeps them)."""
        name = uuid.uuid4().hex
        np.save(self.folder / f"{name}.npy", matrix)
        (self.folder / f"{name}.json").write_text(json.dumps(keys))
        self.vectors.update(zip(keys, matrix))


def wrap(cache: VectorCache) -> bool:
    """Route ``Embedder.embed`` through ``cache``; False if there is no such method to wrap."""
    try:
        from rag.embeddings import Embedder
    except ImportError:
        return False
    original: Callable[..., np.ndarray] | None = getattr(Embedder, "embed", None)
    if original is None:
        return False

    def embed(self: Any, texts: Sequence[str], *args: Any, **kwargs: Any) -> np.ndarray:
        tag = f"{getattr(self, 'name', '?')}|{getattr(self, 'backend', '?')}|"
        keys = [hashlib.sha256((tag + t).encode()).hexdigest() for t in texts]
        todo = [i for i, k in enumerate(keys) if k not in cache.vectors]
        cache.hits += len(keys) - len(todo)
        cache.misses += len(todo)
        if todo and os.environ.get("BENCH_STANDIN_VECTORS") == "1" and cache.vectors:
            standins = dict(zip((keys[i] for i in todo), cache.standin([keys[i] for i in todo])))
            return np.vstack([cache.vectors[k] if k in cache.vectors else standins[k] for k in keys]
                             ).astype(np.float32)
        if todo:
            assert original is not None
            fresh = original(self, [texts[i] for i in todo], *args, **kwargs)
            cache.add([keys[i] for i in todo], np.asarray(fresh, dtype=np.float32))
        progress = kwargs.get("progress")
        if progress is not None and len(keys) > len(todo):
            progress(len(keys) - len(todo))
        if not keys:
            return original(self, texts, *args, **kwargs)
        return np.vstack([cache.vectors[k] for k in keys]).astype(np.float32)

    Embedder.embed = embed  # type: ignore[method-assign]
    return True


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cache = VectorCache(Path(argv[0]))
    sys.path.insert(0, str(REPO))
    if not wrap(cache):
        print("bench: rag.embeddings.Embedder.embed not found; running without the vector cache",
              file=sys.stderr)
    script = str(REPO / argv[1]) if not Path(argv[1]).is_absolute() else argv[1]
    sys.argv = [script, *argv[2:]]
    code: object = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    print(f"bench: vector cache {cache.hits} hits, {cache.misses} misses, {cache.standins} stand-ins",
          file=sys.stderr)
    return code if isinstance(code, int) else (0 if code is None else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
