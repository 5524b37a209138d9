"""The BM25 keyword index (bm25s) over the collection's chunk text, saved beside the Chroma data."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import threading
import uuid
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.journal import pid_alive, translate_os_error

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
# One page of chunks to index: their ids, texts and sources.
Page = tuple[Sequence[str], Sequence[str], Sequence[str]]


class KeywordIndex:
    """BM25 over chunk texts, tagged with the index version (stamp) it was built for.

    Removing chunks does not rebuild it: their ids are masked out of every search until the
    next rebuild (a 10,000-chunk document is forgotten in well under a second).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._loaded_version: str | None = None
        self._model: Any = None
        self._ids: list[str] = []
        self._sources: list[str] = []
        self._deleted: set[str] = set()
        # Derived once per loaded version, so a search costs no Python loop over the corpus.
        self._alive: np.ndarray | None = None  # 1.0 per live chunk, None when nothing is masked
        self._positions: dict[str, np.ndarray] | None = None  # chunk positions by source, on first use

    @property
    def loaded_version(self) -> str | None:
        """The version held in memory, if any."""
        return self._loaded_version

    def load(self, wanted: str) -> bool:
        """Whether the index (in memory or on disk) is at version ``wanted``; loads it from disk if so."""
        with self._lock:
            if self._loaded_version == wanted:
                return True
            state = self._read_state()
            if state is None or state.get("version") != wanted:
                return False
            return self._take(state)

    def load_any(self) -> None:
        """Load whatever version is on disk (a writer is busy; it rebuilds the index when done)."""
        with self._lock:
            state = self._read_state()
            if state is not None and state.get("version") != self._loaded_version:
                self._take(state)

    def is_at(self, wanted: str) -> bool:
        """Whether the index in memory or on disk is at version ``wanted``, without loading it."""
        with self._lock:
            if self._loaded_version == wanted:
                return True
            state = self._read_state()
            return state is not None and state.get("version") == wanted

    def build(self, pages: Iterable[Page], *, version: str) -> None:
        """Index the chunks of ``pages`` and save atomically (a temp folder renamed into place).

        Each page (ids, texts, sources) is tokenized as it arrives and only its token ids are
        kept, four bytes a token: the corpus's texts are never held at once, so memory grows
        with the index itself, not with the text it was read from.
        """
        import bm25s

        tokenizer = _tokenizer()
        ids: list[str] = []
        sources: list[str] = []
        token_ids: list[array[int]] = []
        for page_ids, page_texts, page_sources in pages:
            ids.extend(page_ids)
            sources.extend(page_sources)
            token_ids.extend(array("i", doc) for doc in tokenizer.streaming_tokenize(page_texts))
        with self._lock:
            model = None
            if ids:
                model = bm25s.BM25()
                model.index(bm25s.tokenization.Tokenized(ids=token_ids, vocab=tokenizer.get_vocab_dict()),
                            show_progress=False)
            del token_ids
            tag = f"{os.getpid()}.{uuid.uuid4().hex[:6]}"
            try:
                self.folder.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.folder.with_name(f".{self.folder.name}.{tag}")
                tmp.mkdir()
                if model is not None:
                    model.save(str(tmp), show_progress=False)
                _write_state(tmp, {"version": version, "ids": ids, "sources": sources, "deleted": []})
                old = self.folder.with_name(f".{self.folder.name}.old.{tag}")
                if self.folder.exists():
                    os.replace(self.folder, old)
                os.replace(tmp, self.folder)
                shutil.rmtree(old, ignore_errors=True)
            except OSError as exc:
                shutil.rmtree(self.folder.with_name(f".{self.folder.name}.{tag}"), ignore_errors=True)
                raise translate_os_error(exc, "save the keyword index", self.folder) from exc
            self._hold(model, ids, sources, set(), version)
            logger.info("keyword index rebuilt over %d chunks", len(ids))

    def forget(self, ids: Iterable[str], *, version: str) -> bool:
        """Mask ``ids`` out of the saved index and move it to ``version``; False if there is none."""
        with self._lock:
            state = self._read_state()
            if state is None:
                return False
            previous = state.get("version")
            state["deleted"] = sorted(set(state.get("deleted", [])) | set(ids))
            state["version"] = version
            try:
                _write_state(self.folder, state)
            except OSError as exc:
                raise translate_os_error(exc, "save the keyword index", self.folder) from exc
            if previous is not None and self._loaded_version == previous:
                # The saved model is the one in memory: only its mask changed, nothing is reloaded
                # (an index not in memory is loaded by the next search that needs it).
                self._hold(self._model, self._ids, self._sources, set(state["deleted"]), version)
            return True

    def search(self, question: str, *, k: int, sources: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """Top ``k`` (id, BM25 score) pairs with a positive score."""
        with self._lock:
            if self._model is None or not self._ids:
                return []
            tokens = query_tokens(question)
            if not tokens:
                return []
            mask = self._mask(sources)
            if mask is not None and not mask.any():
                return []
            n = min(k, len(self._ids))
            docs, scores = self._model.retrieve([tokens], k=n, show_progress=False, weight_mask=mask)
            return [(self._ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

    def ids_of(self, sources: Sequence[str]) -> list[str]:
        """The live chunk ids of ``sources`` in the index held in memory."""
        with self._lock:
            mask = self._mask(sources)
            return [] if mask is None else [self._ids[n] for n in np.flatnonzero(mask)]

    def remove_leftovers(self) -> None:
        """Delete temporary and old folders left by processes that died while saving."""
        for path in self.folder.parent.glob(f".{COLLECTION_GLOB}"):
            pid = _pid_of(path.name)
            if pid is not None and pid != os.getpid() and not pid_alive(pid):
                shutil.rmtree(path, ignore_errors=True)

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads((self.folder / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    def _take(self, state: dict[str, Any]) -> bool:
        """Hold the saved index; False if its BM25 files cannot be read (replaced under us, or damaged)."""
        ids, sources = list(state.get("ids", [])), list(state.get("sources", []))
        model = None
        if ids:
            import bm25s

            try:
                model = bm25s.BM25.load(str(self.folder), show_progress=False)
            except (OSError, ValueError) as exc:
                logger.warning("the keyword index in %s could not be read (%s); it will be rebuilt", self.folder, exc)
                return False
        self._hold(model, ids, sources, set(state.get("deleted", [])), str(state.get("version", "")))
        return True

    def _hold(self, model: Any, ids: list[str], sources: list[str], deleted: set[str], version: str) -> None:
        if ids is not self._ids:
            self._positions = None
        self._model, self._ids, self._sources, self._deleted = model, ids, sources, deleted
        self._alive = None
        if deleted:
            self._alive = np.fromiter((i not in deleted for i in ids), dtype=np.float32, count=len(ids))
        self._loaded_version = version

    def _mask(self, sources: Sequence[str] | None) -> np.ndarray | None:
        """bm25s weights: 1 for chunks that are live and (with ``sources``) of those sources."""
        if not sources:
            return self._alive
        if self._positions is None:
            grouped: dict[str, list[int]] = {}
            for n, source in enumerate(self._sources):
                grouped.setdefault(source, []).append(n)
            self._positions = {s: np.asarray(p, dtype=np.int64) for s, p in grouped.items()}
        mask = np.zeros(len(self._ids), dtype=np.float32)
        for source in set(sources):
            if source in self._positions:
                mask[self._positions[source]] = 1.0
        return mask if self._alive is None else mask * self._alive


COLLECTION_GLOB = "footnote_*"


def _pid_of(name: str) -> int | None:
    """The writer's process id in ``.NAME.PID.xxxxxx`` or ``.NAME.old.PID.xxxxxx``."""
    parts = name.split(".")
    for part in parts[2:]:
        if part.isdigit():
            return int(part)
    return None


def _write_state(folder: Path, state: dict[str, Any]) -> None:
    tmp = folder / f".{STATE_FILE}.{os.getpid()}.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, folder / STATE_FILE)


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def _tokenizer() -> Any:
    """A bm25s tokenizer with a fresh vocabulary, splitting as ``tokenize`` does."""
    import bm25s

    return bm25s.tokenization.Tokenizer(stopwords="en", stemmer=_stemmer())


def query_tokens(question: str) -> list[str]:
    """The question's bm25s tokens, split, stopped and stemmed as ``_tokenizer`` does the chunks."""
    import bm25s

    return list(bm25s.tokenize([question], stopwords="en", stemmer=_stemmer().stemWords,
                               return_ids=False, show_progress=False)[0])
