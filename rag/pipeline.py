"""The two things Footnote does, as functions: ``ingest`` a corpus and ``ask`` a question."""

from __future__ import annotations

from collections.abc import Iterator

from rag.config import Settings
from rag.indexer import IngestReport, Indexer, Progress
from rag.types import Answer


def ingest(settings: Settings, *, rebuild: bool = False, progress: Progress | None = None) -> IngestReport:
    """Sync the index with ``settings.corpus_dir``."""
    return Indexer(settings, progress=progress).sync(rebuild=rebuild)


def ask(question: str, history: list[tuple[str, str]] | None = None, *, settings: Settings) -> Answer:
    """Answer ``question`` from the corpus with checked citations."""
    raise NotImplementedError


def stream(question: str, history: list[tuple[str, str]] | None = None, *,
           settings: Settings) -> Iterator[str | Answer]:
    """Yield the answer text as it grows, then the final ``Answer``."""
    raise NotImplementedError
