"""What the LangChain chat-model backends share: streaming, follow-up rewriting, error translation."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from rag.answer.prompt import answer_messages, rewrite_messages, strip_prompt_tags, without_prompt_tags
from rag.errors import BackendError
from rag.types import Passage

logger = logging.getLogger(__name__)


class ChatModelBackend:
    """A backend around a LangChain chat model; subclasses build the model and name errors."""

    name = "llm"

    def __init__(self, model: Any, *, where: str) -> None:
        self.model = model
        self.where = where

    def generate(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        """Stream the model's answer token by token, without any of our prompt tags it echoes."""
        yield from without_prompt_tags(self._tokens(question, passages))

    def _tokens(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        try:
            for chunk in self.model.stream(answer_messages(question, passages)):
                if chunk.content:
                    yield str(chunk.content)
        except BackendError:
            raise
        except Exception as exc:
            raise self.translate(exc) from exc

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """Ask the model for a standalone question; keep the original if the reply is unusable."""
        if not history:
            return question
        try:
            reply = str(self.model.invoke(rewrite_messages(question, history)).content).strip()
        except Exception as exc:
            raise self.translate(exc) from exc
        reply = strip_prompt_tags(reply).strip()
        reply = reply.splitlines()[0].strip().strip('"') if reply else ""
        # Small models sometimes answer instead of rewriting: accept only a plausible question.
        if not reply or len(reply) > 4 * len(question) + 200:
            return question
        return reply

    def translate(self, exc: Exception) -> BackendError:
        """A user-facing BackendError for a client exception."""
        kind = type(exc).__name__
        retryable = any(word in kind for word in ("Connect", "Timeout", "RateLimit", "InternalServer", "Unavailable"))
        return BackendError(
            f"The {self.name} backend at {self.where} failed ({kind}: {exc}). "
            "Check that the server is running and the model name is right, or switch to the extractive backend.",
            retryable=retryable,
        )
