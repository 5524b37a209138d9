"""ScriptedBackend: a real ``Backend`` with queued answers, registered through the real registry.

It stands in for an LLM whose output we choose (invented markers and claims included), so the
citation check can be tested deterministically; everything around it is the real pipeline.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

from rag.answer import register_backend
from rag.config import Settings
from rag.embeddings import Embedder
from rag.types import Passage


class ScriptedBackend:
    """Answers with the next queued text, split into word-sized pieces like a streaming LLM."""

    name = "scripted"
    queue: deque[str] = deque()
    seen: list[tuple[str, list[Passage]]] = []

    def generate(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        """Yield the next scripted answer, word by word."""
        self.seen.append((question, list(passages)))
        text = self.queue.popleft()
        for n, word in enumerate(text.split(" ")):
            yield word if n == 0 else " " + word

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """Scripted answers need no rewriting."""
        return question


def _factory(settings: Settings, embedder: Embedder) -> ScriptedBackend:
    return ScriptedBackend()


register_backend("scripted", _factory)


def script(*answers: str) -> None:
    """Queue answers for the next ``ask`` calls with backend="scripted"."""
    ScriptedBackend.queue.clear()
    ScriptedBackend.seen.clear()
    ScriptedBackend.queue.extend(answers)
