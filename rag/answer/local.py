"""The `local` backend: the bundled LLM, in-process, writing a short cited answer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rag.answer.prompt import TASK_ANSWER, task_messages, without_prompt_tags
from rag.local_model import LocalModel
from rag.types import Passage

REWRITE_TASK = (
    "Rewrite the last question as one standalone question that can be understood without the "
    "conversation. Reply with the question only."
)


class LocalBackend:
    """Streams an answer of 2-5 cited sentences from the shared local model."""

    name = "local"

    def __init__(self, model: LocalModel, *, max_tokens: int, temperature: float,
                 reads_judged_sentences: bool = False) -> None:
        self.model = model
        self.reads_judged_sentences = reads_judged_sentences
        self.max_tokens = max_tokens
        self.temperature = temperature

    def generate(self, question: str, passages: Sequence[Passage], *, lead: str = "") -> Iterator[str]:
        """Yield the answer as the model writes it (prompt tags it echoes are removed)."""
        yield from without_prompt_tags(self.model.stream(
            task_messages(question, passages, TASK_ANSWER), max_tokens=self.max_tokens,
            temperature=self.temperature, stop=["<|im_end|>", "\n\nQuestion:"]))

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """A standalone version of a follow-up; the question itself when there is no history."""
        if not history:
            return question
        turns = "\n".join(f"User: {u}\nAssistant: {a[:400]}" for u, a in history[-3:])
        reply = self.model.complete(
            [{"role": "system", "content": REWRITE_TASK},
             {"role": "user", "content": f"{turns}\n\nLast question: {question}\nStandalone question:"}],
            max_tokens=60, stop=["\n"]).strip().strip('"')
        if not reply or len(reply) > 4 * len(question) + 200:
            return question
        return reply
