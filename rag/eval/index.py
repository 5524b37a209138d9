"""Evaluation indexes: the evaluation corpus (or a dataset's own documents) indexed apart from the user's."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import ConfigError, StaleIndexError

logger = logging.getLogger(__name__)


def prepare_index(settings: Settings, *, corpus: Path | None = None, documents: dict[str, str] | None = None,
                  progress: Any = None) -> Settings:
    """Settings pointing at an index of the evaluation corpus, ingested (or reused) for the run.

    With ``corpus``, that folder is indexed into ``<data_dir>/eval/<hash>``, named after the
    folder and the index fingerprint, so the user's own index is never touched and an unchanged
    corpus is reused. Without it, ``documents`` (the paragraphs a SQuAD file brings) are written
    as .txt files into such a folder and indexed there. With neither, ``settings`` are returned
    as they are: the run uses the configured index.

    Raises:
        ConfigError: the corpus folder does not exist or nothing in it could be indexed.
    """
    if corpus is None and not documents:
        return settings
    from rag.indexer import Indexer

    fingerprint = settings.index_fingerprint()
    if corpus is not None:
        if not corpus.is_dir():
            raise ConfigError(f"Evaluation corpus {corpus} is not a folder. Pass --corpus DIR.")
        key = f"corpus|{corpus.resolve()}|{fingerprint}"
        folder = settings.data_dir / "eval" / _short_hash(key)
        corpus_dir = corpus.resolve()
    else:
        assert documents is not None
        content = hashlib.sha256()
        for name in sorted(documents):
            content.update(f"{name}\x00{documents[name]}\x00".encode())
        folder = settings.data_dir / "eval" / _short_hash(f"documents|{content.hexdigest()}|{fingerprint}")
        corpus_dir = folder / "corpus"
        _write_documents(corpus_dir, documents)
    # A Chroma server names collections by fingerprint alone: evaluating there would mix the
    # evaluation corpus into the user's collection, so evaluation indexes are always local.
    prepared = settings.with_updates(data_dir=str(folder), corpus_dir=str(corpus_dir), chroma_url="")
    try:
        report = Indexer(prepared, progress=progress).sync()
    except StaleIndexError:
        # Evaluation indexes are derived and private: rebuild one made by older settings or code.
        report = Indexer(prepared, progress=progress).sync(rebuild=True)
    for source, message in report.failed:
        logger.warning("evaluation corpus: %s not indexed: %s", source, message)
    if report.chunks_total == 0:
        raise ConfigError(f"Nothing in the evaluation corpus {corpus_dir} could be indexed.")
    logger.info("evaluation index %s: %s", folder, report.to_dict())
    return prepared


def _write_documents(corpus_dir: Path, documents: dict[str, str]) -> None:
    """Write documents, leaving unchanged files untouched and removing files no longer wanted."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        path = corpus_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for path in corpus_dir.iterdir():
        if path.is_file() and path.name not in documents:
            path.unlink()


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
