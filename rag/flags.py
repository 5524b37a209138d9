"""The command line's flags, each declared once, and the ``Settings`` they give."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from rag.config import Settings, build_settings

Flag = tuple[tuple[str, ...], str | None, str, dict[str, Any]]


def flag_table() -> dict[str, Flag]:
    """Every flag once: name -> (options, the settings key it overrides, help, argparse keywords).

    Built on use, so the backend choices include backends registered after import.
    """
    from rag.answer import backend_names

    on_off, backends = argparse.BooleanOptionalAction, ["auto", *backend_names()]
    rows: list[Flag] = [
        (("--corpus",), "corpus_dir", "corpus folder (FOOTNOTE_CORPUS_DIR)", {"metavar": "DIR"}),
        (("--data-dir",), "data_dir", "index folder (FOOTNOTE_DATA_DIR)", {"metavar": "DIR"}),
        (("--chroma-url",), "chroma_url", "Chroma server http://HOST:PORT", {"metavar": "URL"}),
        (("--embedding-model",), "embedding_model", "sentence-transformers model or path", {"metavar": "NAME"}),
        (("--max-file-mb",), "max_file_mb", "largest file ingested", {"type": float, "metavar": "MB"}),
        (("--k",), "retrieval.top_k", "passages retrieved per question (FOOTNOTE_RETRIEVAL__TOP_K)",
         {"type": int, "metavar": "N"}),
        (("--backend",), "answer.backend", f"answer backend: {', '.join(backends)} (FOOTNOTE_ANSWER__BACKEND)",
         {"choices": backends, "metavar": "NAME"}),
        (("--model",), "answer.model", "LLM model name (FOOTNOTE_ANSWER__MODEL)", {}),
        (("--base-url",), "answer.base_url", "LLM server URL (FOOTNOTE_ANSWER__BASE_URL)", {}),
        (("--hybrid",), "retrieval.hybrid", "fuse keyword and dense search (default on)", {"action": on_off}),
        (("--mmr",), "retrieval.mmr", "diversify passages with maximal marginal relevance", {"action": on_off}),
        (("--host",), "ui.host", "interface to listen on (FOOTNOTE_UI__HOST, default 127.0.0.1)", {}),
        (("--port",), "ui.port", "port (FOOTNOTE_UI__PORT, default 7860)", {"type": int}),
        (("--auth",), "ui.auth", "require this login (FOOTNOTE_UI__AUTH)", {"metavar": "USER:PASS"}),
        (("-v", "--verbose"), None, "more log output (-vv for debug)", {"action": "count"}),
        (("-q", "--quiet"), None, "no progress bars or tables", {"action": "store_true"}),
        (("--json",), None, "print one JSON object", {"action": "store_true"}),
        (("--collection",), None, "a collection (a folder under the corpus): `add` puts files in it; ask, chat "
         "and eval search only it (repeatable)", {"action": "append", "metavar": "NAME"}),
    ]
    return {row[0][-1].lstrip("-").replace("-", "_"): row for row in rows}


INDEX_FLAGS = ("corpus", "data_dir", "chroma_url", "embedding_model", "max_file_mb")
ANSWER_FLAGS = ("k", "backend", "model", "base_url", "hybrid", "mmr")
OUTPUT_FLAGS = ("verbose", "quiet", "json")


def add_flags(parser: argparse.ArgumentParser, names: Sequence[str], *, suppress: bool = False) -> None:
    """Add the named flags to ``parser``; ``suppress`` leaves unset flags out of the namespace
    (so a subcommand repeating a flag does not reset the value given before it)."""
    table = flag_table()
    for name in names:
        options, _, help_text, kwargs = table[name]
        extra: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
        parser.add_argument(*options, dest=name, help=help_text, **kwargs, **extra)


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings from the environment and .env, with the flags given on the command line applied."""
    changes = {key: getattr(args, name, None) for name, (_, key, _, _) in flag_table().items() if key}
    changes = {k: v for k, v in {**changes, **extra}.items() if v is not None}
    settings = build_settings()
    return settings.with_updates(**changes) if changes else settings
