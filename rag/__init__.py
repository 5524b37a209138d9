"""Footnote: answers about your documents, every claim cited and checked against its passage.

The public API is imported on first use, so ``import rag`` (and ``import rag.cli``) loads no model
library and leaves the process environment alone: entry points set that up first.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.config import Settings, build_settings
    from rag.errors import FootnoteError
    from rag.pipeline import ask, ingest, stream
    from rag.types import Answer, Citation, Passage

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Answer",
    "Citation",
    "FootnoteError",
    "Passage",
    "Settings",
    "ask",
    "build_settings",
    "ingest",
    "stream",
]

_HOMES = {"Answer": "rag.types", "Citation": "rag.types", "Passage": "rag.types", "FootnoteError": "rag.errors",
          "Settings": "rag.config", "build_settings": "rag.config", "ask": "rag.pipeline",
          "ingest": "rag.pipeline", "stream": "rag.pipeline"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
