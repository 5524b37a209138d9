"""The index: a Chroma collection (local or server) plus a BM25 keyword index kept in step with it."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from rag.config import Settings
from rag.errors import IndexNotFoundError, StaleIndexError, StoreError

logger = logging.getLogger(__name__)

COLLECTION_PREFIX = "footnote_"
# Chroma rejects larger add/upsert calls; ask the client, but never exceed this.
MAX_BATCH = 5000
PAGE = 2000


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the store holds it; ``similarity`` is cosine similarity when it came from a search."""

    id: str
    text: str
    metadata: dict[str, Any]
    similarity: float = 0.0
    embedding: np.ndarray | None = None


def collection_name(settings: Settings) -> str:
    """The Chroma collection for these settings: named after the index fingerprint."""
    return COLLECTION_PREFIX + settings.index_fingerprint()


def connect(settings: Settings) -> Any:
    """A Chroma client: HTTP when ``chroma_url`` is set, else persistent under the data folder."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_url:
            url = urlparse(settings.chroma_url)
            if url.scheme not in {"http", "https"} or not url.hostname:
                raise StoreError(
                    f"FOOTNOTE_CHROMA_URL {settings.chroma_url!r} is not http(s)://HOST:PORT."
                )
            client = chromadb.HttpClient(
                host=url.hostname, port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https", settings=chroma_settings,
            )
            client.heartbeat()
            return client
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    except StoreError:
        raise
    except Exception as exc:
        where = settings.chroma_url or str(settings.chroma_dir)
        raise StoreError(
            f"Cannot open the Chroma store at {where} ({exc}). "
            "Check that `chroma run` is up or that the data folder is writable."
        ) from exc


class Store:
    """One Chroma collection named after the index fingerprint, and its keyword index."""

    def __init__(self, settings: Settings, *, create: bool = False, rebuild: bool = False) -> None:
        self.settings = settings
        self.name = collection_name(settings)
        self.client = connect(settings)
        self.expected = {
            "embedding_model": settings.embedding_model,
            "embedding_backend": settings.embedding_backend,
            "chunk_tokens": settings.chunking.chunk_tokens,
            "overlap_tokens": settings.chunking.overlap_tokens,
        }
        self.keywords = KeywordIndex(settings.data_dir / "keyword" / self.name)
        if rebuild:
            self._drop_all()
        self.collection = self._open(create or rebuild)

    # -- opening -------------------------------------------------------------
    def _open(self, create: bool) -> Any:
        from chromadb.errors import NotFoundError

        try:
            collection = self.client.get_collection(self.name, embedding_function=None)
        except NotFoundError:
            collection = None
        except Exception as exc:
            raise StoreError(f"Chroma failed to open collection {self.name} ({exc}).") from exc
        if collection is not None:
            return collection
        stale = self._other_indexes()
        if stale:
            meta = stale[0].metadata or {}
            raise StaleIndexError(
                f"The index was built with model {meta.get('embedding_model')!r} "
                f"({meta.get('embedding_backend', 'torch')}) and "
                f"{meta.get('chunk_tokens')}/{meta.get('overlap_tokens')}-token chunks, but the "
                f"settings now say {self.expected['embedding_model']!r} "
                f"({self.expected['embedding_backend']}) and "
                f"{self.expected['chunk_tokens']}/{self.expected['overlap_tokens']}. "
                "Run `python ingest.py --rebuild` to re-index with the new settings."
            )
        if not create:
            where = self.settings.chroma_url or str(self.settings.data_dir)
            raise IndexNotFoundError(
                f"No index at {where}. Run `python ingest.py` to build it from "
                f"{self.settings.corpus_dir}."
            )
        try:
            return self.client.create_collection(
                self.name, embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={**self.expected, "version": uuid.uuid4().hex},
            )
        except Exception as exc:
            raise StoreError(f"Chroma could not create collection {self.name} ({exc}).") from exc

    def _other_indexes(self) -> list[Any]:
        try:
            names = [c if isinstance(c, str) else c.name for c in self.client.list_collections()]
            return [
                self.client.get_collection(n, embedding_function=None)
                for n in names if n.startswith(COLLECTION_PREFIX) and n != self.name
            ]
        except Exception as exc:
            raise StoreError(f"Chroma could not list collections ({exc}).") from exc

    def _drop_all(self) -> None:
        """Delete every Footnote collection and keyword index, for ``--rebuild``."""
        try:
            names = [c if isinstance(c, str) else c.name for c in self.client.list_collections()]
            for name in names:
                if name.startswith(COLLECTION_PREFIX):
                    self.client.delete_collection(name)
        except Exception as exc:
            raise StoreError(f"Chroma could not delete the old index ({exc}).") from exc
        shutil.rmtree(self.keywords.folder.parent, ignore_errors=True)

    # -- writing -------------------------------------------------------------
    def upsert(self, ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[dict[str, Any]],
               vectors: np.ndarray) -> None:
        """Write chunks with their vectors, in batches Chroma accepts."""
        step = min(MAX_BATCH, self._max_batch())
        for i in range(0, len(ids), step):
            self._call(
                "write chunks", self.collection.upsert,
                ids=list(ids[i : i + step]), documents=list(texts[i : i + step]),
                metadatas=list(metadatas[i : i + step]), embeddings=vectors[i : i + step],
            )

    def delete(self, ids: Iterable[str]) -> None:
        """Delete chunks by id."""
        ids = list(ids)
        for i in range(0, len(ids), MAX_BATCH):
            self._call("delete chunks", self.collection.delete, ids=ids[i : i + MAX_BATCH])

    def mark_changed(self) -> None:
        """Record a new index version, so every process sharing the store refreshes its keyword index."""
        meta = dict(self.collection.metadata or {})
        meta["version"] = uuid.uuid4().hex
        self._call("record the index version", self.collection.modify, metadata=meta)

    # -- reading -------------------------------------------------------------
    def count(self) -> int:
        """Number of chunks in the collection."""
        return int(self._call("count chunks", self.collection.count))

    def chunks_of(self, source: str, *, with_vectors: bool = False) -> list[StoredChunk]:
        """Every stored chunk of ``source``."""
        include = ["documents", "metadatas"] + (["embeddings"] if with_vectors else [])
        got = self._call("read chunks", self.collection.get, where={"source": source}, include=include)
        return self._chunks(got, with_vectors)

    def get(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[StoredChunk]:
        """Chunks by id, in the order given (missing ids are skipped)."""
        if not ids:
            return []
        include = ["documents", "metadatas"] + (["embeddings"] if with_vectors else [])
        got = self._call("read chunks", self.collection.get, ids=list(ids), include=include)
        by_id = {c.id: c for c in self._chunks(got, with_vectors)}
        return [by_id[i] for i in ids if i in by_id]

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the collection already holds."""
        found: set[str] = set()
        for i in range(0, len(ids), PAGE):
            got = self._call("read chunk ids", self.collection.get, ids=list(ids[i : i + PAGE]), include=[])
            found.update(got["ids"])
        return found

    def dense_search(self, vector: np.ndarray, *, k: int, sources: Sequence[str] | None = None,
                     with_vectors: bool = False) -> list[StoredChunk]:
        """Nearest chunks by cosine similarity, optionally only from ``sources``."""
        total = self.count()
        if total == 0:
            return []
        include = ["documents", "metadatas", "distances"] + (["embeddings"] if with_vectors else [])
        where = {"source": {"$in": list(sources)}} if sources else None
        got = self._call(
            "search", self.collection.query, query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=min(k, total), where=where, include=include,
        )
        chunks = []
        for n, chunk_id in enumerate(got["ids"][0]):
            vec = got["embeddings"][0][n] if with_vectors and got.get("embeddings") is not None else None
            chunks.append(StoredChunk(
                id=chunk_id, text=got["documents"][0][n], metadata=dict(got["metadatas"][0][n] or {}),
                # Chroma's cosine space returns distance = 1 - cosine similarity.
                similarity=1.0 - float(got["distances"][0][n]),
                embedding=np.asarray(vec, dtype=np.float32) if vec is not None else None,
            ))
        return chunks

    def keyword_search(self, question: str, *, k: int, sources: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """BM25 hits as (chunk id, score), after bringing the keyword index up to date."""
        self.refresh_keywords()
        return self.keywords.search(question, k=k, sources=sources)

    def refresh_keywords(self) -> None:
        """Rebuild the keyword index from Chroma's stored text if another write happened since."""
        version = str((self._call("read the index version", lambda: self.client.get_collection(
            self.name, embedding_function=None).metadata) or {}).get("version", ""))
        if self.keywords.version(version):
            return
        ids: list[str] = []
        texts: list[str] = []
        sources: list[str] = []
        offset = 0
        while True:
            got = self._call("read chunks", self.collection.get, include=["documents", "metadatas"],
                             limit=PAGE, offset=offset)
            if not got["ids"]:
                break
            ids.extend(got["ids"])
            texts.extend(got["documents"])
            sources.extend(str((m or {}).get("source", "")) for m in got["metadatas"])
            offset += len(got["ids"])
        self.keywords.build(ids, texts, sources, version=version)

    # -- helpers ---------------------------------------------------------------
    def _max_batch(self) -> int:
        try:
            return int(self.client.get_max_batch_size())
        except Exception:
            return MAX_BATCH

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            from chromadb.errors import NotFoundError

            if isinstance(exc, NotFoundError):
                raise IndexNotFoundError(
                    f"The index {self.name} was deleted while in use. Run `python ingest.py`."
                ) from exc
            raise StoreError(f"Chroma failed to {what} ({exc}).") from exc

    @staticmethod
    def _chunks(got: dict[str, Any], with_vectors: bool) -> list[StoredChunk]:
        out = []
        embeddings = got.get("embeddings") if with_vectors else None
        for n, chunk_id in enumerate(got["ids"]):
            vec = embeddings[n] if embeddings is not None else None
            out.append(StoredChunk(
                id=chunk_id, text=(got.get("documents") or [""] * len(got["ids"]))[n] or "",
                metadata=dict((got.get("metadatas") or [{}] * len(got["ids"]))[n] or {}),
                embedding=np.asarray(vec, dtype=np.float32) if vec is not None else None,
            ))
        return out


class KeywordIndex:
    """BM25 (bm25s) over the collection's chunk text, saved beside the Chroma data."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._loaded_version: str | None = None
        self._model: Any = None
        self._ids: list[str] = []
        self._sources: list[str] = []

    def version(self, wanted: str) -> bool:
        """Whether the index (in memory or on disk) matches ``wanted``; loads it from disk if so."""
        with self._lock:
            if self._loaded_version == wanted:
                return True
            state_file = self.folder / "state.json"
            try:
                state = json.loads(state_file.read_text())
            except (OSError, ValueError):
                return False
            if state.get("version") != wanted:
                return False
            self._ids, self._sources = state["ids"], state["sources"]
            self._model = self._load_model() if self._ids else None
            self._loaded_version = wanted
            return True

    def build(self, ids: list[str], texts: list[str], sources: list[str], *, version: str) -> None:
        """Index ``texts`` and save atomically (a temp folder renamed into place)."""
        import bm25s

        with self._lock:
            model = None
            if ids:
                model = bm25s.BM25()
                model.index(tokenize(texts), show_progress=False)
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.folder.with_name(f".{self.folder.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}")
            tmp.mkdir()
            if model is not None:
                model.save(str(tmp), show_progress=False)
            (tmp / "state.json").write_text(json.dumps({"version": version, "ids": ids, "sources": sources}))
            old = self.folder.with_name(f".{self.folder.name}.old.{uuid.uuid4().hex[:6]}")
            if self.folder.exists():
                os.replace(self.folder, old)
            os.replace(tmp, self.folder)
            shutil.rmtree(old, ignore_errors=True)
            self._model, self._ids, self._sources = model, ids, sources
            self._loaded_version = version
            logger.info("keyword index rebuilt over %d chunks", len(ids))

    def search(self, question: str, *, k: int, sources: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """Top ``k`` (id, BM25 score) pairs with a positive score."""
        with self._lock:
            if self._model is None or not self._ids:
                return []
            tokens = tokenize([question], as_ids=False)
            if not tokens[0]:
                return []
            mask = None
            if sources:
                wanted = set(sources)
                mask = np.array([s in wanted for s in self._sources], dtype=np.float32)
                if not mask.any():
                    return []
            n = min(k, len(self._ids))
            docs, scores = self._model.retrieve(tokens, k=n, show_progress=False, weight_mask=mask)
            return [(self._ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

    def _load_model(self) -> Any:
        import bm25s

        return bm25s.BM25.load(str(self.folder), show_progress=False)


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str], *, as_ids: bool = True) -> Any:
    """bm25s tokens: lower case, English stop words removed, Snowball-stemmed."""
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer().stemWords,
                          return_ids=as_ids, show_progress=False)
