"""Optional LLM judge: RAGAS-style faithfulness and answer correctness from an OpenAI-compatible server."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rag.config import Settings
from rag.errors import ConfigError
from rag.text import sentences, strip_markers

logger = logging.getLogger(__name__)

VERDICT = re.compile(r"\b(yes|no|true|false|correct|incorrect|supported|unsupported|not)\b")
POSITIVE = {"yes", "true", "correct", "supported"}
# The settings the judge's error messages point to.
JUDGE_SETTINGS = {"url_setting": "--judge-url", "model_setting": "--judge-model",
                  "key_setting": "FOOTNOTE_EVAL__JUDGE_API_KEY", "timeout_setting": "FOOTNOTE_EVAL__JUDGE_TIMEOUT"}
# The judge model's context is small (2048 tokens for the bundled SmolLM2); keep prompts well inside it.
MAX_CONTEXT_CHARS = 3500

FAITHFULNESS_SYSTEM = "You check whether a statement is supported by a context. Reply with one word: yes or no."
FAITHFULNESS_PROMPT = (
    "Context:\n{context}\n\nStatement: {claim}\n\n"
    "Is the statement supported by the context? Reply with one word: yes or no."
)
CORRECTNESS_SYSTEM = "You grade answers against a reference answer. Reply with one word: yes or no."
CORRECTNESS_PROMPT = (
    "Question: {question}\nReference answer: {reference}\nCandidate answer: {answer}\n\n"
    "Does the candidate answer give the same facts as the reference answer? Reply with one word: yes or no."
)


@dataclass(frozen=True)
class JudgeScore:
    """A judged score in [0, 1], the number of verdicts asked for, and how many were unparsable."""

    value: float
    verdicts: int
    unparsable: int


def parse_verdict(text: str) -> bool | None:
    """The yes/no verdict in a judge reply, from its first verdict word; None if there is none.

    "not" counts as no, so "not supported" and "Not correct" are read as no.
    """
    match = VERDICT.search(text.lower())
    if match is None:
        return None
    return match.group(1) in POSITIVE


def claims_of(answer: str) -> list[str]:
    """The claims of an answer: its sentences without citation markers.

    RAGAS asks the LLM to split the answer into claims first; small models cannot do that
    reliably, so the sentences stand in for claims.
    """
    return [s.text for s in sentences(strip_markers(answer)) if len(s.text.split()) >= 2]


class Judge:
    """Asks an OpenAI-compatible chat model for yes/no verdicts and turns them into scores.

    Unparsable replies (a tiny model often produces junk) count as "no" and are tallied in
    ``JudgeScore.unparsable``.
    """

    def __init__(self, *, base_url: str, model: str, api_key: str = "", max_tokens: int = 16,
                 timeout: float = 60.0) -> None:
        if not base_url or not model:
            raise ConfigError("The LLM judge needs both a URL and a model: pass --judge-url URL --judge-model M.")
        from langchain_openai import ChatOpenAI

        self.base_url, self.model = base_url, model
        # llama.cpp's server ignores max_completion_tokens (what max_tokens= sends): pass max_tokens raw.
        self._chat: Any = ChatOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", model=model, temperature=0.0,
            timeout=timeout, max_retries=1, extra_body={"max_tokens": max_tokens},
        )

    def faithfulness(self, answer: str, contexts: Sequence[str]) -> JudgeScore | None:
        """Share of the answer's claims the judge finds supported by ``contexts``; None without claims."""
        claims = claims_of(answer)
        if not claims:
            return None
        context = _clip("\n\n".join(contexts), MAX_CONTEXT_CHARS)
        verdicts = [self._verdict(FAITHFULNESS_SYSTEM, FAITHFULNESS_PROMPT.format(context=context, claim=c))
                    for c in claims]
        return _score(verdicts)

    def correctness(self, question: str, answer: str, reference: str) -> JudgeScore:
        """1.0 when the judge finds the answer states the reference answer's facts, else 0.0."""
        prompt = CORRECTNESS_PROMPT.format(
            question=question, reference=_clip(reference, 1000), answer=_clip(strip_markers(answer), 1500))
        return _score([self._verdict(CORRECTNESS_SYSTEM, prompt)])

    def _verdict(self, system: str, prompt: str) -> bool | None:
        from openai import APIError

        from rag.answer.llm import translate
        from rag.answer.openai_compat import OPENAI_ERRORS

        try:
            reply = self._chat.invoke([("system", system), ("human", prompt)])
        except APIError as exc:
            raise translate(exc, OPENAI_ERRORS, who="LLM judge", where=self.base_url, model=self.model,
                            setting_names=JUDGE_SETTINGS) from exc
        text = reply.content if isinstance(reply.content, str) else str(reply.content)
        verdict = parse_verdict(text)
        if verdict is None:
            logger.debug("unparsable judge reply: %r", text[:80])
        return verdict


def _score(verdicts: list[bool | None]) -> JudgeScore:
    yes = sum(1 for v in verdicts if v is True)
    return JudgeScore(yes / len(verdicts), len(verdicts), sum(1 for v in verdicts if v is None))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def make_judge(settings: Settings, *, url: str | None = None, model: str | None = None) -> Judge | None:
    """The LLM judge these settings (or the --judge-url and --judge-model flags) ask for, or None.

    Raises:
        ConfigError: only one of the URL and the model is given.
    """
    cfg = settings.eval
    url, model = url or cfg.judge_base_url, model or cfg.judge_model
    if not url and not model:
        return None
    if not url or not model:
        raise ConfigError("The LLM judge needs both --judge-url and --judge-model "
                          "(FOOTNOTE_EVAL__JUDGE_BASE_URL, FOOTNOTE_EVAL__JUDGE_MODEL).")
    return Judge(base_url=url, model=model, api_key=cfg.judge_api_key.get_secret_value(),
                 max_tokens=cfg.judge_max_tokens, timeout=cfg.judge_timeout)
