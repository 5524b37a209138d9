"""The index's dense half: one Chroma collection (local or server) per data folder and settings,
safe to read while another process writes, with its keyword index (``rag.keyword_index``) kept in step."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag import exact, journal
from rag.chroma_client import connection, get_collection, translated
from rag.chunking import CHUNK_RECIPE
from rag.config import Settings
from rag.errors import IndexNotFoundError, StaleIndexError
from rag.keyword_index import KeywordIndex
from rag.manifest import ingest_lock_held
from rag.stale import stale_message

logger = logging.getLogger(__name__)

COLLECTION_PREFIX = "footnote_"
ID_FILE = "index.id"
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


def data_id(data_dir: Path, *, create: bool = False) -> str:
    """The data folder's identity: random, made with its first index, kept when the folder is
    copied or moved ("" before that). Two data folders on one Chroma server never share a collection."""
    path = data_dir / ID_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        if not create:
            return ""
    journal.write_atomically(path, uuid.uuid4().hex[:12], "record the index identity")
    return path.read_text(encoding="utf-8").strip()


def data_prefix(settings: Settings, *, create: bool = False) -> str:
    """The start of every collection name of this data folder."""
    found = data_id(settings.data_dir, create=create)
    return f"{COLLECTION_PREFIX}{found}_" if found else COLLECTION_PREFIX


def corpus_place(settings: Settings) -> str:
    """The corpus folder as seen from the data folder: moving one without the other changes it."""
    return os.path.relpath(settings.corpus_dir.resolve(), settings.data_dir.resolve())


def collection_name(settings: Settings, *, create: bool = False) -> str:
    """The Chroma collection for these settings: the data folder's identity, then a hash of what
    shapes the chunks and vectors (model, backend, chunk sizes, chunking recipe, corpus folder)."""
    key = f"{settings.index_fingerprint()}|recipe {CHUNK_RECIPE}|{corpus_place(settings)}"
    return data_prefix(settings, create=create) + hashlib.sha256(key.encode()).hexdigest()[:10]


class Store:
    """One Chroma collection named after the data folder and index fingerprint, and its keyword index.

    Every write holds the data folder's exclusive lock and records a new index version; every read
    holds the shared lock and first reopens the client if another process wrote since.
    """

    def __init__(self, settings: Settings, *, create: bool = False, rebuild: bool = False) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        if create or rebuild:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.name = collection_name(settings, create=create or rebuild)
        self.where = settings.chroma_url or str(settings.chroma_dir)
        self.expected = {
            "embedding_model": settings.embedding_model,
            "embedding_backend": settings.embedding_backend,
            "chunk_tokens": settings.chunking.chunk_tokens,
            "overlap_tokens": settings.chunking.overlap_tokens,
            "chunk_recipe": CHUNK_RECIPE,
            "corpus_dir": str(settings.corpus_dir.resolve()),
            "corpus_place": corpus_place(settings),
        }
        self.keywords = KeywordIndex(settings.data_dir / "keyword" / self.name)
        self.conn = connection(settings)
        if rebuild:
            with journal.exclusive(self.data_dir), self.conn.lock.reading():
                self._drop_all()
        create = create or rebuild
        with (journal.exclusive if create else journal.shared)(self.data_dir):
            self.conn.refresh()
            with self.conn.lock.reading():
                self._collection: Any = self._open(create=create)
                self._generation = self.conn.generation

    # -- opening -------------------------------------------------------------
    @property
    def collection(self) -> Any:
        """The Chroma collection, fetched again after the client was reopened."""
        if self._generation != self.conn.generation:
            self._collection = self._open(create=False)
            self._generation = self.conn.generation
        return self._collection

    def _open(self, *, create: bool) -> Any:
        found = get_collection(self.conn, self.name, self.where)
        if found is not None:
            return found
        stale = self._other_indexes()
        if stale:
            raise StaleIndexError(stale_message(stale[0].metadata or {}, self.expected))
        if not create:
            raise IndexNotFoundError(
                f"No index at {self.settings.chroma_url or self.data_dir}. Run `python ingest.py` to "
                f"build it from {self.settings.corpus_dir}.")
        with translated(f"create collection {self.name}", self.where):
            return self.conn.client.create_collection(
                self.name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
                metadata=self.expected)

    def _ours(self, name: str) -> bool:
        # A local Chroma folder belongs to this data folder alone; on a server, other data
        # folders' collections are other corpora, not stale versions of this one.
        if not self.settings.chroma_url:
            return name.startswith(COLLECTION_PREFIX)
        return self.name.count("_") > 1 and name.startswith(data_prefix(self.settings))

    def _names(self) -> list[str]:
        with translated("list collections", self.where):
            return [c if isinstance(c, str) else c.name for c in self.conn.client.list_collections()]

    def _other_indexes(self) -> list[Any]:
        with translated("list collections", self.where):
            return [self.conn.client.get_collection(n, embedding_function=None)
                    for n in self._names() if self._ours(n) and n != self.name]

    def _drop_all(self) -> None:
        """Delete this data folder's collections and keyword indexes, for ``--rebuild``."""
        for name in self._names():
            if self._ours(name):
                with translated("delete the old index", self.where):
                    self.conn.client.delete_collection(name)
        shutil.rmtree(self.keywords.folder.parent, ignore_errors=True)
        self.conn.stamp = journal.bump_stamp(self.data_dir)

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        with journal.shared(self.data_dir):
            self.conn.refresh()
            with self.conn.lock.reading():
                yield self.collection

    @contextmanager
    def _writing(self) -> Iterator[Any]:
        with journal.exclusive(self.data_dir):
            self.conn.refresh()
            with self.conn.lock.reading():
                try:
                    yield self.collection
                finally:
                    self.conn.stamp = journal.bump_stamp(self.data_dir)

    # -- writing -------------------------------------------------------------
    def upsert(self, ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[dict[str, Any]],
               vectors: np.ndarray) -> None:
        """Write chunks with their vectors, in batches Chroma accepts."""
        with self._writing() as collection, translated("write chunks", self.where):
            step = min(MAX_BATCH, int(self.conn.client.get_max_batch_size()))
            for i in range(0, len(ids), step):
                collection.upsert(ids=list(ids[i : i + step]), documents=list(texts[i : i + step]),
                                  metadatas=list(metadatas[i : i + step]), embeddings=vectors[i : i + step])

    def delete(self, ids: Iterable[str]) -> None:
        """Delete chunks by id, from Chroma and (without a rebuild) from the keyword index."""
        ids = list(ids)
        if not ids:
            return
        with self._writing() as collection, translated("delete chunks", self.where):
            before = self.conn.stamp
            for i in range(0, len(ids), MAX_BATCH):
                collection.delete(ids=ids[i : i + MAX_BATCH])
        if self.keywords.is_at(before):
            self.keywords.forget(ids, version=self.conn.stamp)

    def mark_changed(self) -> None:
        """Record a new index version, so every process sharing the store refreshes what it holds."""
        with self._writing():
            pass

    # -- reading -------------------------------------------------------------
    def count(self) -> int:
        """Number of chunks in the collection."""
        with self._reading() as collection, translated("count chunks", self.where):
            return int(collection.count())

    def chunks_of(self, source: str, *, with_vectors: bool = False) -> list[StoredChunk]:
        """Every stored chunk of ``source``."""
        include = ["documents", "metadatas"] + (["embeddings"] if with_vectors else [])
        with self._reading() as collection, translated("read chunks", self.where):
            return _chunks(collection.get(where={"source": source}, include=include), with_vectors)

    def get(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[StoredChunk]:
        """Chunks by id, in the order given (missing ids are skipped)."""
        if not ids:
            return []
        include = ["documents", "metadatas"] + (["embeddings"] if with_vectors else [])
        with self._reading() as collection, translated("read chunks", self.where):
            by_id = {c.id: c for c in _chunks(collection.get(ids=list(ids), include=include), with_vectors)}
        return [by_id[i] for i in ids if i in by_id]

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the collection already holds."""
        found: set[str] = set()
        with self._reading() as collection, translated("read chunk ids", self.where):
            for i in range(0, len(ids), PAGE):
                found.update(collection.get(ids=list(ids[i : i + PAGE]), include=[])["ids"])
        return found

    def ids_of(self, sources: Sequence[str]) -> dict[str, list[str]]:
        """The stored chunk ids of each of ``sources`` (ids only: fast even for huge documents)."""
        out: dict[str, list[str]] = {}
        with self._reading() as collection, translated("read chunk ids", self.where):
            for source in sources:
                out[source] = list(collection.get(where={"source": source}, include=[])["ids"])
        return out

    def sources(self) -> dict[str, set[str]]:
        """Every stored chunk id by its source: what the store actually holds."""
        out: dict[str, set[str]] = {}
        for ids, _, metas in self._pages(include=["metadatas"]):
            for chunk_id, meta in zip(ids, metas):
                out.setdefault(str((meta or {}).get("source", "")), set()).add(chunk_id)
        return out

    def dense_search(self, vector: np.ndarray, *, k: int, sources: Sequence[str] | None = None,
                     with_vectors: bool = False, with_text: bool = True) -> list[StoredChunk]:
        """Nearest chunks by cosine, optionally only of ``sources``; ``with_text=False``: no text or metadata."""
        include = ["distances"] + (["documents", "metadatas"] if with_text else []) + (
            ["embeddings"] if with_vectors else [])
        with self._reading() as collection, translated("search", self.where):
            # The chunks of few sources are ranked exactly, by id: Chroma's filter reads every chunk.
            chosen = self.keywords.ids_of(sources) if sources and self.keywords.load(
                journal.read_stamp(self.data_dir)) else None
            if chosen is not None and len(chosen) <= exact.MAX_IDS:
                got = exact.query(collection, chosen, vector, k=k, include=include)
            else:  # no count() first: a pass over the collection; Chroma returns fewer by itself
                got = collection.query(query_embeddings=[np.asarray(vector, dtype=np.float32)], n_results=k,
                                       where={"source": {"$in": list(sources)}} if sources else None, include=include)
        chunks = []
        for n, chunk_id in enumerate(got["ids"][0]):
            vec = got["embeddings"][0][n] if with_vectors and got.get("embeddings") is not None else None
            chunks.append(StoredChunk(
                id=chunk_id, text=got["documents"][0][n] if with_text else "",
                metadata=dict(got["metadatas"][0][n] or {}) if with_text else {},
                # Chroma's cosine space returns distance = 1 - cosine similarity.
                similarity=1.0 - float(got["distances"][0][n]),
                embedding=np.asarray(vec, dtype=np.float32) if vec is not None else None,
            ))
        return chunks

    def keyword_search(self, question: str, *, k: int, sources: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """BM25 hits as (chunk id, score), from the keyword index of the current index version.

        While another ingest is running, the last saved keyword index serves (it rebuilds the
        index when done); otherwise a missing or outdated one is rebuilt from Chroma's text.
        """
        if not self.keywords.load(journal.read_stamp(self.data_dir)):
            if ingest_lock_held(self.data_dir):
                self.keywords.load_any()
            else:  # stale, or its files are damaged: rebuilt from Chroma's text
                self.refresh_keywords(force=True)
        return self.keywords.search(question, k=k, sources=sources)

    def refresh_keywords(self, *, force: bool = False) -> None:
        """Rebuild the keyword index from Chroma's stored text unless it is at the current version
        (an index that is current is not loaded here: the first keyword search loads it).

        ``force`` rebuilds unless the current version loads (a saved index that says it is current
        but whose files cannot be read is rebuilt, not trusted).
        """
        with journal.shared(self.data_dir):
            stamp = journal.read_stamp(self.data_dir)
            if self.keywords.load(stamp) if force else self.keywords.is_at(stamp):
                return
            pages = ((page_ids, [t or "" for t in texts], [str((m or {}).get("source", "")) for m in metas])
                     for page_ids, texts, metas in self._pages(include=["documents", "metadatas"], locked=False))
            self.keywords.build(pages, version=stamp)

    def _pages(self, *, include: list[str], locked: bool = True) -> Iterator[tuple[list[str], list[Any], list[Any]]]:
        offset = 0
        while True:
            with (self._reading() if locked else self._unlocked()) as collection, \
                    translated("read chunks", self.where):
                got = collection.get(include=include, limit=PAGE, offset=offset)
            if not got["ids"]:
                return
            yield got["ids"], got.get("documents") or [None] * len(got["ids"]), got.get("metadatas") or []
            offset += len(got["ids"])

    @contextmanager
    def _unlocked(self) -> Iterator[Any]:
        self.conn.refresh()
        with self.conn.lock.reading():
            yield self.collection


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
