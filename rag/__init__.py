"""Footnote: answers about your documents, every claim cited and checked against its passage."""

from __future__ import annotations

import logging

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
