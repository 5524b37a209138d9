"""Keeping the index in step with the corpus: add new files, re-index changed ones, drop removed ones."""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag import corpus, journal
from rag.chunking import make_splitter, split
from rag.config import Settings
from rag.embeddings import Embedder, embedder_for
from rag.errors import EmptyDocumentError, IngestError
from rag.ingest_report import IngestReport, NoProgress, Progress
from rag.limits import LoadLimits
from rag.loaders import brief, check_type, load
from rag.manifest import Entry, Manifest, ingest_lock
from rag.reconcile import reconcile
from rag.store import Store, collection_name

logger = logging.getLogger(__name__)

# Files are committed (embedded, written, recorded) in groups of about this many chunks, so
# embedding batches stay full across small files and a crash loses at most one group's work.
COMMIT_CHUNKS = 256


@dataclass
class _Pending:
    source: str
    file_hash: str
    size: int
    chunks: list[Document]
    previous: Entry | None
    stored: bool  # the store may hold chunks of this source (an earlier version, or a crashed run's)


class Indexer:
    """Ingestion over one corpus folder and one index, as settings describe them."""

    def __init__(self, settings: Settings, *, progress: Progress | None = None,
                 embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.progress = progress or NoProgress()
        self._embedder = embedder
        self.max_bytes = int(settings.max_file_mb * 1e6)
        self.limits = LoadLimits.from_settings(settings.limits)

    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use: an unchanged corpus never loads it."""
        if self._embedder is None:
            self._embedder = embedder_for(self.settings)
        return self._embedder

    @functools.cached_property
    def splitter(self) -> RecursiveCharacterTextSplitter:
        """The chunker, measuring in the embedding model's tokens."""
        return make_splitter(
            # Its own tokenizer: the embedder's is reconfigured by every call (padding, truncation),
            # and sharing it made concurrent uploads fail ("Unable to create tensor").
            self.embedder.private_tokenizer(), chunk_tokens=self.settings.chunking.chunk_tokens,
            overlap_tokens=self.settings.chunking.overlap_tokens,
            max_seq_length=self.embedder.max_seq_length,
        )

    @property
    def manifest_path(self) -> Path:
        """Where the manifest lives."""
        return self.settings.data_dir / "manifest.json"

    def sync(self, *, only: list[Path] | None = None, rebuild: bool = False) -> IngestReport:
        """Bring the index in line with the corpus (or with just the files in ``only``).

        New files are added, changed files re-indexed (reusing vectors of unchanged passages),
        unchanged files skipped, and, on a full sync, files gone from the corpus removed. Whatever
        an interrupted run left half-done is repaired first (``rag.reconcile``).
        """
        started = time.perf_counter()
        with ingest_lock(self.settings.data_dir, timeout=self.settings.lock_timeout):
            report = self._sync(only=only, rebuild=rebuild)
        report.seconds = time.perf_counter() - started
        logger.info("ingest: %s", report.to_dict())
        return report

    def _open(self, *, rebuild: bool = False) -> tuple[Store, Manifest, set[str]]:
        """Open the store and manifest under the lock, clean leftovers, repair interrupted writes."""
        store = Store(self.settings, create=True, rebuild=rebuild)
        journal.remove_leftovers(self.settings.data_dir, self.settings.corpus_dir)
        store.keywords.remove_leftovers()
        if rebuild:
            journal.finish(self.settings.data_dir)
            # The old manifest is not even read: it may be the unreadable one that said to rebuild.
            return store, Manifest(self.manifest_path, store.name), set()
        manifest = Manifest.load(self.manifest_path, collection=store.name)
        return store, manifest, reconcile(store, manifest, self.settings.corpus_dir)

    def _sync(self, *, only: list[Path] | None, rebuild: bool) -> IngestReport:
        report = IngestReport()
        store, manifest, suspect = self._open(rebuild=rebuild)
        corpus_dir = self.settings.corpus_dir
        files = corpus.scan(corpus_dir) if only is None else list(only)
        if only is not None:  # documents repaired by reconcile are re-indexed even in a partial sync
            files += [corpus_dir / s for s in sorted(suspect) if (corpus_dir / s).is_file()
                      and corpus_dir / s not in files]
        self.progress.files(len(files))
        seen: set[str] = set()
        pending: list[_Pending] = []
        places = corpus.Places(corpus_dir)
        failed_before = dict(manifest.failed)
        for path in files:
            try:
                source = corpus.source_of(path, corpus_dir, places=places)
            except ValueError:
                report.failed.append((str(path), f"{path}: is not inside the corpus folder {corpus_dir}."))
                continue
            seen.add(source)
            try:
                item = self._prepare(path, source, manifest, places, suspect)
                if item is None:
                    report.unchanged.append(source)
                    manifest.failed.pop(source, None)
                else:
                    pending.append(item)
                    self.progress.chunks(len(item.chunks))
            except IngestError as exc:
                # Reported through report.failed (the CLI prints it once); a WARNING here
                # would show every failure twice.
                logger.info("not indexed: %s", exc)
                report.failed.append((source, str(exc)))
                if corpus.storable(source):
                    manifest.failed[source] = str(exc)
            self.progress.file_done(source)
            if sum(len(p.chunks) for p in pending) >= COMMIT_CHUNKS:
                self._commit(pending, store, manifest, report)
                pending = []
        self._commit(pending, store, manifest, report)
        if only is None:
            gone = sorted(set(manifest.entries) - seen)
            self._drop(gone, store, manifest)
            report.removed.extend(gone)
            for source in set(manifest.failed) - seen:
                del manifest.failed[source]
        if rebuild or report.removed or manifest.failed != failed_before:
            manifest.save()  # otherwise every change was saved by its commit (or there was none)
        journal.finish(self.settings.data_dir)
        store.refresh_keywords()
        report.chunks_total = store.count()
        return report

    def add(self, items: list[str], *, paths: bool = True, collection: str | None = None) -> IngestReport:
        """Copy files (or fetch URLs) into the corpus (``collection``'s folder when named), then
        index just those.

        With ``paths=False`` (the app's URL box) only http(s) URLs are accepted and no local path
        is ever read. A file that cannot be indexed is taken out of the corpus again (unless
        identical bytes were already there), so it does not fail again on every sync.
        """
        started = time.perf_counter()
        report = IngestReport()
        corpus_dir = self.settings.corpus_dir
        folder = corpus.collection_folder(collection, corpus_dir) if collection else corpus_dir
        # Copies happen under the lock too, so a half-copied file is always a dead writer's leftover.
        with ingest_lock(self.settings.data_dir, timeout=self.settings.lock_timeout):
            before = set(corpus.scan(corpus_dir)) if corpus_dir.is_dir() else set()
            landed: list[Path] = []
            for item in items:
                try:
                    landed.append(self._land(item, folder, paths=paths))
                except IngestError as exc:
                    logger.info("not added: %s", exc)
                    report.failed.append((item, str(exc)))
                except OSError as exc:  # a name too long, a copy that failed half-way, a full disk
                    name = item if len(item) <= 100 else item[:99] + "…"
                    reason = "the disk is full" if journal.is_disk_full(exc) else (exc.strerror or brief(exc))
                    report.failed.append((item, f"{name}: cannot copy the file into the corpus ({reason})."))
            report.merge(self._sync(only=landed, rebuild=False))
            fresh = {corpus.source_of(p, corpus_dir): p for p in landed if p not in before}
            taken_out = [source for source, _ in report.failed if source in fresh]
            for source in taken_out:
                fresh[source].unlink(missing_ok=True)
            if taken_out:
                manifest = Manifest.load(self.manifest_path, collection=collection_name(self.settings))
                if any(manifest.failed.pop(source, None) is not None for source in taken_out):
                    manifest.save()
        report.seconds = time.perf_counter() - started
        return report

    def _land(self, item: str, folder: Path, *, paths: bool) -> Path:
        if item.lower().startswith(("http://", "https://")):
            return corpus.fetch_url(
                item, folder, timeout=self.settings.fetch_timeout, max_bytes=self.max_bytes,
                allow_private=self.settings.allow_private_urls,
                allowed_networks=self.settings.allowed_url_networks)
        if not paths:
            raise IngestError(f"{item}: only http(s) web addresses can be added here; "
                              "upload files with the file box.")
        path = Path(item)
        if not path.is_file():
            raise IngestError(f"{item}: no such file.")
        return corpus.copy_in(path, folder, max_bytes=self.max_bytes)

    def remove(self, sources: list[str]) -> IngestReport:
        """Delete documents from the index and their files from the corpus.

        A source is named by its corpus-relative path or, for a fetched page, its URL.
        """
        started = time.perf_counter()
        report = IngestReport()
        with ingest_lock(self.settings.data_dir, timeout=self.settings.lock_timeout):
            store, manifest, _ = self._open()
            chosen: list[str] = []
            for name in sources:
                source = self._resolve(name, manifest)
                if source is None:
                    report.failed.append((name, f"{name}: not in the index; `python ingest.py list` shows what is."))
                elif source not in chosen:
                    chosen.append(source)
            journal.begin(self.settings.data_dir, "remove", chosen)
            for source in chosen:
                try:
                    corpus.delete(source, self.settings.corpus_dir)
                except IngestError as exc:
                    report.failed.append((source, str(exc)))
                    continue
                self._drop([source], store, manifest)
                manifest.failed.pop(source, None)
                report.removed.append(source)
            manifest.save()
            journal.finish(self.settings.data_dir)
            report.chunks_total = store.count()
        report.seconds = time.perf_counter() - started
        return report

    def documents(self) -> list[Entry]:
        """What the manifest says is indexed, by source."""
        name = collection_name(self.settings)
        return sorted(Manifest.load(self.manifest_path, collection=name).entries.values(),
                      key=lambda e: e.source)

    def failures(self) -> dict[str, str]:
        """Corpus files that could not be indexed, by source, with the reason (listed until the
        file is fixed, deleted, or removed with ``remove([source])``)."""
        name = collection_name(self.settings)
        return dict(sorted(Manifest.load(self.manifest_path, collection=name).failed.items()))

    # -- steps -------------------------------------------------------------------
    def _prepare(self, path: Path, source: str, manifest: Manifest, places: corpus.Places,
                 suspect: set[str]) -> _Pending | None:
        corpus.check_inside(path, self.settings.corpus_dir, source=source, places=places)
        check_type(path, source)
        try:
            digest, size = corpus.file_hash(path), path.stat().st_size
        except FileNotFoundError as exc:
            raise IngestError(f"{source}: file disappeared before it could be read.") from exc
        except OSError as exc:
            raise IngestError(f"{source}: cannot read file ({exc.strerror or exc}).") from exc
        previous = manifest.entries.get(source)
        if previous is not None and previous.file_hash == digest:
            return None
        docs = load(path, source=source, max_bytes=self.max_bytes, limits=self.limits)
        splitter = self.splitter
        try:
            chunks = split(docs, splitter)
        except Exception as exc:  # one odd text must not stop the other files
            logger.debug("%s: splitting failed", source, exc_info=True)
            raise IngestError(f"{source}: could not be split into passages ({brief(exc)}). "
                              "Save it again as plain text, or remove it.") from exc
        if not chunks:
            raise EmptyDocumentError(f"{source}: no text could be extracted.")
        return _Pending(source, digest, size, chunks, previous, previous is not None or source in suspect)

    def _commit(self, pending: list[_Pending], store: Store, manifest: Manifest,
                report: IngestReport) -> None:
        """Embed what is new, write new chunks, then delete stale ones, then record in the manifest."""
        if not pending:
            return
        journal.begin(self.settings.data_dir, "write", [p.source for p in pending])
        # Chunks already stored for these sources (a previous version, or a crashed run's):
        # their vectors are reused for unchanged text, and whatever is not rewritten is stale.
        # A new source has none (reconcile ran first), so the store is not asked.
        old_chunks = {p.source: store.chunks_of(p.source, with_vectors=True) for p in pending if p.stored}
        reusable: dict[str, np.ndarray] = {}
        for stored in old_chunks.values():
            for chunk in stored:
                if chunk.embedding is not None:
                    reusable[_text_key(chunk.text)] = chunk.embedding
        todo = [c for p in pending for c in p.chunks if _text_key(c.page_content) not in reusable]
        vectors = self.embedder.embed([c.page_content for c in todo], progress=self.progress.embedded)
        fresh = {_text_key(c.page_content): v for c, v in zip(todo, vectors)}
        report.chunks_embedded += len(todo)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        chunks = [c for p in pending for c in p.chunks]
        keys = [_text_key(c.page_content) for c in chunks]
        report.chunks_reused += sum(1 for k in keys if k not in fresh)
        ids = [str(c.id) for c in chunks]
        # One write for the whole group: Chroma's cost is mostly per call (about 50 ms each at
        # 20,000 chunks), so writing document by document made a first ingest Chroma-bound.
        store.upsert(ids, [c.page_content for c in chunks], [c.metadata for c in chunks],
                     np.vstack([fresh[k] if k in fresh else reusable[k] for k in keys]))
        store.delete({c.id for old in old_chunks.values() for c in old} - set(ids))
        for item in pending:
            meta = item.chunks[0].metadata
            manifest.entries[item.source] = Entry(
                source=item.source, file_hash=item.file_hash, content_hash=str(meta["content_hash"]),
                title=str(meta.get("title", "")), type=str(meta.get("type", "")),
                chunks=len(item.chunks), added=item.previous.added if item.previous else now, updated=now,
                authors=str(meta.get("authors", "")), url=str(meta.get("url", "")),
                size=item.size, chunk_ids=[str(c.id) for c in item.chunks],
            )
            manifest.failed.pop(item.source, None)
            (report.updated if item.previous else report.added).append(item.source)
        manifest.save()
        journal.finish(self.settings.data_dir)

    def _drop(self, sources: list[str], store: Store, manifest: Manifest) -> None:
        """Journal, then delete the chunks of ``sources``, then forget them (the caller saves)."""
        if not sources:
            return
        journal.begin(self.settings.data_dir, "remove", sources)
        held = store.ids_of(sources)
        store.delete([i for s in sources for i in held.get(s, ())])
        for source in sources:
            manifest.entries.pop(source, None)

    def _resolve(self, name: str, manifest: Manifest) -> str | None:
        if name in manifest.entries or name in manifest.failed:
            return name
        for entry in manifest.entries.values():
            if entry.url and entry.url == name:
                return entry.source
        path = Path(name)
        try:
            source = corpus.source_of(path, self.settings.corpus_dir)
        except ValueError:
            return None
        return source if source in manifest.entries or source in manifest.failed else None


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
