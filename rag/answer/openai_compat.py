"""The `openai` backend: any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, LM Studio)."""

from __future__ import annotations

from pydantic import SecretStr

from rag.answer.llm import ChatModelBackend
from rag.config import AnswerSettings
from rag.errors import ConfigError


class OpenAIBackend(ChatModelBackend):
    """Answers with a chat model behind an OpenAI-compatible API (langchain-openai)."""

    name = "openai"

    def __init__(self, options: AnswerSettings) -> None:
        from langchain_openai import ChatOpenAI

        if not options.model:
            raise ConfigError("The openai backend needs a model: set FOOTNOTE_ANSWER__MODEL.")
        model = ChatOpenAI(
            model=options.model,
            base_url=options.base_url or None,
            # Local servers ignore the key but the client insists on one.
            api_key=options.api_key if options.api_key.get_secret_value() else SecretStr("not-needed"),
            temperature=options.temperature,
            timeout=options.timeout,
            max_retries=1,
            streaming=True,
            # llama.cpp's server ignores max_completion_tokens, which langchain-openai sends.
            extra_body={"max_tokens": options.max_tokens},
        )
        super().__init__(model, where=options.base_url or "api.openai.com")
