"""Answer backends: the ``Backend`` protocol and a factory by name."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from rag.config import Settings
from rag.embeddings import Embedder
from rag.errors import ConfigError
from rag.types import Passage

BACKENDS = ("extractive", "openai", "ollama")


class Backend(Protocol):
    """Writes an answer from numbered passages, citing them as [n]; streams text pieces."""

    name: str

    def generate(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        """Yield the answer text in pieces (tokens for LLMs)."""
        ...

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """Turn a follow-up into a standalone question using the conversation so far."""
        ...


def get_backend(settings: Settings, *, embedder: Embedder, name: str | None = None) -> Backend:
    """The backend called ``name`` (default: settings.answer.backend), configured from settings."""
    name = name or settings.answer.backend
    if name == "extractive":
        from rag.answer.extractive import ExtractiveBackend

        return ExtractiveBackend(embedder, max_sentences=settings.answer.max_sentences)
    if name == "openai":
        from rag.answer.openai_compat import OpenAIBackend

        return OpenAIBackend(settings.answer)
    if name == "ollama":
        from rag.answer.ollama import OllamaBackend

        return OllamaBackend(settings.answer)
    raise ConfigError(f"Unknown answer backend {name!r}; choose one of {', '.join(BACKENDS)}.")
