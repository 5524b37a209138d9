"""Answer backends: the ``Backend`` protocol, a registry of factories, and lookup by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from rag.config import Settings
from rag.embeddings import Embedder
from rag.errors import ConfigError
from rag.types import Passage


class Backend(Protocol):
    """Writes an answer from numbered passages, citing them as [n]; streams text pieces."""

    name: str

    def generate(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        """Yield the answer text in pieces (tokens for LLMs)."""
        ...

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """Turn a follow-up into a standalone question using the conversation so far."""
        ...


Factory = Callable[[Settings, Embedder], Backend]
_REGISTRY: dict[str, Factory] = {}


def register_backend(name: str, factory: Factory) -> None:
    """Make a backend available by ``name`` (to settings, the CLI and the app)."""
    _REGISTRY[name] = factory


def backend_names() -> list[str]:
    """Names of the registered backends."""
    return list(_REGISTRY)


def get_backend(settings: Settings, *, embedder: Embedder, name: str | None = None) -> Backend:
    """The backend called ``name`` (default: settings.answer.backend), configured from settings."""
    name = name or settings.answer.backend
    if name not in _REGISTRY:
        raise ConfigError(f"Unknown answer backend {name!r}; choose one of {', '.join(_REGISTRY)}.")
    return _REGISTRY[name](settings, embedder)


def _extractive(settings: Settings, embedder: Embedder) -> Backend:
    from rag.answer.extractive import ExtractiveBackend

    return ExtractiveBackend(embedder, max_sentences=settings.answer.max_sentences)


def _openai(settings: Settings, embedder: Embedder) -> Backend:
    from rag.answer.openai_compat import OpenAIBackend

    return OpenAIBackend(settings.answer)


def _ollama(settings: Settings, embedder: Embedder) -> Backend:
    from rag.answer.ollama import OllamaBackend

    return OllamaBackend(settings.answer)


register_backend("extractive", _extractive)
register_backend("openai", _openai)
register_backend("ollama", _ollama)
