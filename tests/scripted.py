"""ScriptedBackend: a real ``Backend`` with queued answers, registered through the real registry.

It stands in for an LLM whose output we choose (invented markers and claims included), so the
citation check can be tested deterministically; everything around it is the real pipeline.
Each test gets its own instance, registered as "scripted" for that test only (the ``scripted``
fixture in tests/plugins/core.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

from rag.types import Passage


class ScriptedBackend:
    """Answers with the next queued text, split into word-sized pieces like a streaming LLM."""

    name = "scripted"
    reads_judged_sentences = False

    def __init__(self) -> None:
        self.queue: deque[str] = deque()
        self.seen: list[tuple[str, list[Passage]]] = []

    def script(self, *answers: str) -> None:
        """Queue answers for the next ``ask`` calls with backend="scripted"."""
        self.queue.extend(answers)

    def generate(self, question: str, passages: Sequence[Passage], *, lead: str = "") -> Iterator[str]:
        """Yield the next scripted answer, word by word."""
        self.seen.append((question, list(passages)))
        text = self.queue.popleft()
        for n, word in enumerate(text.split(" ")):
            yield word if n == 0 else " " + word

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """Scripted answers need no rewriting."""
        return question
