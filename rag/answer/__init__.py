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
    # True for a writer that answers from the sentences the answerability judge read instead of the
    # whole passages (the local model, whose cache already holds that prompt).
    reads_judged_sentences: bool

    def generate(self, question: str, passages: Sequence[Passage], *, lead: str = "") -> Iterator[str]:
        """Yield the answer text in pieces (tokens for LLMs).

        ``lead`` is what the answerability judge quoted from the passages as the answer ("" when
        it quoted nothing they hold): a writer may open with the sentence that holds it.
        """
        ...

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """Turn a follow-up into a standalone question using the conversation so far."""
        ...


Factory = Callable[[Settings, Embedder], Backend]
_REGISTRY: dict[str, Factory] = {}


def register_backend(name: str, factory: Factory) -> None:
    """Make a backend available by ``name`` (to settings, the CLI and the app)."""
    _REGISTRY[name] = factory


def unregister_backend(name: str) -> None:
    """Forget the backend called ``name`` (a plugin or test that registered one for a while)."""
    _REGISTRY.pop(name, None)


def backend_names() -> list[str]:
    """Names of the registered backends."""
    return list(_REGISTRY)


def resolve_name(settings: Settings, name: str | None = None) -> str:
    """The backend ``name`` (default: settings) stands for; ``auto`` is local when its model is installed."""
    name = name or settings.answer.backend
    if name == "auto":
        from rag.local_model import is_available

        return "local" if is_available(settings) else "extractive"
    return name


def get_backend(settings: Settings, *, embedder: Embedder, name: str | None = None) -> Backend:
    """The backend called ``name`` (default: settings.answer.backend), configured from settings."""
    name = resolve_name(settings, name)
    if name not in _REGISTRY:
        raise ConfigError(f"Unknown answer backend {name!r}; choose one of {', '.join(_REGISTRY)}.")
    return _REGISTRY[name](settings, embedder)


def _extractive(settings: Settings, embedder: Embedder) -> Backend:
    from rag.answer.extractive import ExtractiveBackend
    from rag.judge import sentence_ranker

    return ExtractiveBackend(embedder, max_sentences=settings.answer.max_sentences,
                             ranker=sentence_ranker(settings))


def _openai(settings: Settings, embedder: Embedder) -> Backend:
    from rag.answer.openai_compat import OpenAIBackend

    return OpenAIBackend(settings.answer)


def _ollama(settings: Settings, embedder: Embedder) -> Backend:
    from rag.answer.ollama import OllamaBackend

    return OllamaBackend(settings.answer)


def _local(settings: Settings, embedder: Embedder) -> Backend:
    from rag.answer.local import LocalBackend
    from rag.local_model import get_local_model

    return LocalBackend(get_local_model(settings), max_tokens=settings.answer.max_tokens,
                        temperature=settings.answer.temperature,
                        reads_judged_sentences=settings.local.writer_reads == "sentences")


register_backend("local", _local)
register_backend("extractive", _extractive)
register_backend("openai", _openai)
register_backend("ollama", _ollama)
