"""What the LangChain chat-model backends share: streaming, follow-up rewriting, error translation."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rag.answer.prompt import answer_messages, rewrite_messages, strip_prompt_tags, without_prompt_tags
from rag.errors import BackendError
from rag.types import Passage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorRule:
    """How one exception type of a client library reads to the user.

    ``says`` completes "The <backend> at <where> ..." and may use ``{model}``, ``{status}``,
    ``{detail}`` (the client's own message) and the names of the settings a user changes
    (``{url_setting}``, ``{model_setting}``, ``{key_setting}``, ``{timeout_setting}``). A retry
    may help when ``retryable`` is set, or, with ``retry_on_5xx``, after a 5xx status.
    """

    kind: type[BaseException]
    says: str
    retryable: bool = False
    retry_on_5xx: bool = False


# The settings the answer backends' messages point to; the eval's LLM judge names its own flags.
ANSWER_SETTINGS = {"url_setting": "FOOTNOTE_ANSWER__BASE_URL", "model_setting": "FOOTNOTE_ANSWER__MODEL",
                   "key_setting": "FOOTNOTE_ANSWER__API_KEY", "timeout_setting": "FOOTNOTE_ANSWER__TIMEOUT"}


def translate(exc: BaseException, rules: Sequence[ErrorRule], *, who: str, where: str, model: str = "",
              setting_names: dict[str, str] | None = None) -> BackendError:
    """The BackendError the first rule matching ``exc`` describes (rules go from specific to general)."""
    rule = next(r for r in rules if isinstance(exc, r.kind))
    status = getattr(exc, "status_code", None)
    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    retryable = rule.retryable or (rule.retry_on_5xx and isinstance(status, int) and status >= 500)
    message = rule.says.format(model=model, status=status, detail=detail, **(setting_names or ANSWER_SETTINGS))
    return BackendError(f"The {who} at {where} {message}", retryable=retryable)


class ChatModelBackend:
    """A backend around a LangChain chat model; subclasses build the model and give their error table."""

    name = "llm"
    reads_judged_sentences = False

    def __init__(self, model: Any, *, where: str, errors: Sequence[ErrorRule] = (), model_name: str = "") -> None:
        self.model = model
        self.where = where
        self.errors = tuple(errors)
        self.model_name = model_name
        self._kinds = tuple(rule.kind for rule in self.errors)

    def generate(self, question: str, passages: Sequence[Passage], *, lead: str = "") -> Iterator[str]:
        """Stream the model's answer token by token, without any of our prompt tags it echoes."""
        yield from without_prompt_tags(self._tokens(question, passages))

    def _tokens(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        try:
            for chunk in self.model.stream(answer_messages(question, passages)):
                if chunk.content:
                    yield str(chunk.content)
        except self._kinds as exc:
            raise self.translate(exc) from exc

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """Ask the model for a standalone question; keep the original if the reply is unusable."""
        if not history:
            return question
        try:
            reply = str(self.model.invoke(rewrite_messages(question, history)).content).strip()
        except self._kinds as exc:
            raise self.translate(exc) from exc
        reply = strip_prompt_tags(reply).strip()
        reply = reply.splitlines()[0].strip().strip('"') if reply else ""
        # Small models sometimes answer instead of rewriting: accept only a plausible question.
        if not reply or len(reply) > 4 * len(question) + 200:
            return question
        return reply

    def translate(self, exc: BaseException) -> BackendError:
        """A user-facing BackendError for one of the client exceptions in this backend's table."""
        return translate(exc, self.errors, who=f"{self.name} backend", where=self.where, model=self.model_name)
