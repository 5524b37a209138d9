"""The `ollama` backend: a model served by Ollama (langchain-ollama)."""

from __future__ import annotations

import httpx
import ollama

from rag.answer.llm import ChatModelBackend, ErrorRule
from rag.config import AnswerSettings
from rag.errors import ConfigError

# The ollama client turns a refused connection into the built-in ConnectionError and HTTP errors
# into ResponseError; timeouts and other transport failures reach us as httpx's own.
OLLAMA_ERRORS = (
    ErrorRule(ConnectionError, "cannot be reached. Start Ollama (`ollama serve`) or fix "
              "{url_setting}, or switch to the extractive backend.", retryable=True),
    ErrorRule(httpx.TimeoutException, "did not answer in time ({detail}). A slow model may need a larger "
              "{timeout_setting}.", retryable=True),
    ErrorRule(httpx.TransportError, "cannot be reached ({detail}). Check that Ollama is running.", retryable=True),
    ErrorRule(ollama.ResponseError, "answered HTTP {status} ({detail}). If the model is missing, run "
              "`ollama pull {model}`.", retry_on_5xx=True),
    ErrorRule(ollama.RequestError, "rejected the request ({detail})."),
)


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
        super().__init__(model, where=base_url, errors=OLLAMA_ERRORS, model_name=options.model)
