"""The `openai` backend: any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, LM Studio)."""

from __future__ import annotations

import openai
from pydantic import SecretStr

from rag.answer.llm import ChatModelBackend, ErrorRule
from rag.config import AnswerSettings
from rag.errors import ConfigError

# The openai client's typed errors, most specific first (APITimeoutError is an APIConnectionError,
# every status error an APIStatusError). The eval's LLM judge uses the same table.
OPENAI_ERRORS = (
    ErrorRule(openai.APITimeoutError, "did not answer in time ({detail}). A slow model may need a larger "
              "{timeout_setting}.", retryable=True),
    ErrorRule(openai.APIConnectionError, "cannot be reached ({detail}). Check that the server is running "
              "and {url_setting}.", retryable=True),
    ErrorRule(openai.AuthenticationError, "refused the API key ({detail}). Set {key_setting}."),
    ErrorRule(openai.PermissionDeniedError, "refused access ({detail}). Check {key_setting}."),
    ErrorRule(openai.NotFoundError, "does not serve the model {model!r} ({detail}). Check {model_setting} "
              "and {url_setting}."),
    ErrorRule(openai.RateLimitError, "is limiting requests ({detail}). Wait a moment and ask again.",
              retryable=True),
    ErrorRule(openai.BadRequestError, "rejected the request ({detail}). The passages may not fit the model's "
              "context: lower FOOTNOTE_RETRIEVAL__TOP_K."),
    ErrorRule(openai.APIStatusError, "answered HTTP {status} ({detail}). Check the server's log.",
              retry_on_5xx=True),
    ErrorRule(openai.APIError, "failed ({detail}). Check the server's log."),
)


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
        super().__init__(model, where=options.base_url or "api.openai.com", errors=OPENAI_ERRORS,
                         model_name=options.model)
