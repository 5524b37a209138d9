"""What the app's tabs share: a session's turns and settings, the progress bar, status lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag.config import Settings
from rag.pipeline import IngestReport
from rag.types import Answer

# Event options of every handler: none of them is part of the public API (see rag.ui_api).
PRIVATE: dict[str, Any] = {"api_visibility": "private"}


@dataclass(frozen=True)
class Turn:
    """One exchange of a browser session: the question and its answer, or the error it hit."""

    question: str
    answer: Answer | None
    error: str = ""


def session_settings(base: Settings, backend: str, model: str, base_url: str, k: float | None,
                     hybrid: bool) -> Settings:
    """``base`` with one browser session's choices from the settings panel.

    Raises:
        ConfigError: a value is invalid.
    """
    return base.with_updates(**{
        "answer.backend": backend or base.answer.backend,
        "answer.model": (model or "").strip(),
        "answer.base_url": (base_url or "").strip(),
        "retrieval.top_k": int(k) if k else base.retrieval.top_k,
        "retrieval.hybrid": bool(hybrid),
    })


class GradioProgress:
    """Drives a ``gr.Progress`` bar from the indexer's ``Progress`` callbacks."""

    def __init__(self, progress: gr.Progress) -> None:
        self.bar = progress
        self.total_files = 0
        self.done_files = 0
        self.total_chunks = 0
        self.done_chunks = 0

    def files(self, total: int) -> None:
        self.total_files = total
        self.bar((0, max(total, 1)), desc="Reading files", unit="files")

    def file_done(self, source: str) -> None:
        self.done_files += 1
        self.bar((self.done_files, max(self.total_files, 1)),
                 desc=f"Read file {self.done_files} of {self.total_files}", unit="files")

    def chunks(self, total: int) -> None:
        self.total_chunks += total

    def embedded(self, n: int) -> None:
        self.done_chunks += n
        self.bar((self.done_chunks, max(self.total_chunks, 1)), desc="Embedding passages", unit="passages")


def report_lines(report: IngestReport, *, verb: str) -> list[tuple[str, str]]:
    """Status lines (kind, text) for an ingest report: what was done, unchanged, removed, failed."""
    lines: list[tuple[str, str]] = []
    done = report.added + report.updated
    if done:
        lines.append(("ok", f"{verb}: {', '.join(done)}"))
    if report.unchanged:
        lines.append(("info", f"Already indexed, unchanged: {', '.join(report.unchanged)}"))
    if report.removed:
        lines.append(("ok", f"Removed: {', '.join(report.removed)}"))
    lines.extend(("error", message) for _, message in report.failed)
    return lines
