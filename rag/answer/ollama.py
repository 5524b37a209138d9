"""The `ollama` backend: a model served by Ollama (langchain-ollama)."""

from __future__ import annotations

from rag.answer.llm import ChatModelBackend
from rag.config import AnswerSettings
from rag.errors import ConfigError


class OllamaBackend(ChatModelBackend):
    """Answers with a chat model served by Ollama."""

    name = "ollama"

    def __init__(self, options: AnswerSettings) -> None:
        from langchain_ollama import ChatOllama

        if not options.model:
            raise ConfigError("The ollama backend needs a model: set FOOTNOTE_ANSWER__MODEL (e.g. llama3.2).")
        base_url = options.base_url or "http://127.0.0.1:11434"
        model = ChatOllama(
            model=options.model, base_url=base_url, temperature=options.temperature,
            num_predict=options.max_tokens, client_kwargs={"timeout": options.timeout},
        )
        super().__init__(model, where=base_url)
