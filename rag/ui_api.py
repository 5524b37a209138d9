"""The app's named API endpoints: `/ask`, `/collections`, and the documents actions `/documents`,
`/add_file`, `/add_url` and `/remove`, each returning JSON and raising ``gr.Error`` with a user's message."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import FileData

from rag import pipeline
from rag.config import Settings
from rag.corpus import collection_of
from rag.errors import FootnoteError
from rag.indexer import IngestReport, Progress

logger = logging.getLogger(__name__)


def document_list(settings: Settings) -> dict[str, Any]:
    """What is indexed, and the files of the corpus that failed to load with their reasons.

    Raises:
        FootnoteError: the manifest cannot be read.
    """
    return {
        "documents": [
            {"source": e.source, "collection": collection_of(e.source), "title": e.title, "type": e.type,
             "chunks": e.chunks, "added": e.added}
            for e in pipeline.documents(settings)
        ],
        "failed": [{"source": source, "collection": collection_of(source), "reason": reason}
                   for source, reason in sorted(pipeline.failures(settings).items())],
    }


def report_dict(report: IngestReport) -> dict[str, Any]:
    """An ingest report with the sources it names (``IngestReport.to_dict`` has only counts)."""
    return {
        "added": report.added, "updated": report.updated, "unchanged": report.unchanged,
        "removed": report.removed,
        "failed": [{"source": source, "reason": reason} for source, reason in report.failed],
    }


def _single(report: IngestReport) -> dict[str, Any]:
    """The report of a one-item action, or the item's failure as a ``gr.Error``."""
    if report.failed and not (report.added or report.updated or report.unchanged or report.removed):
        raise gr.Error(report.failed[0][1])
    return report_dict(report)


def register(settings: Settings, *, max_upload_bytes: int) -> None:
    """Add the endpoints to the ``gr.Blocks`` being built (they share its auth, as every route does)."""
    # Index writes run one at a time, in the same queue as the Documents tab's own.
    index: dict[str, Any] = {"concurrency_id": "index", "concurrency_limit": 1}

    def ask(question: str, collections: list[str] | None = None) -> dict[str, Any]:
        """Answer a question from the documents (only those of ``collections`` when named); returns
        the JSON of `python -m rag ask --json`."""
        try:
            return pipeline.ask(pipeline.check_question(question, settings=settings), settings=settings,
                                collections=_names(collections)).to_dict()
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc

    def collections() -> dict[str, int]:
        """Every collection with indexed documents, and how many documents it holds."""
        try:
            return pipeline.collections(settings)
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc

    def documents() -> dict[str, Any]:
        """The indexed documents (source, title, type, chunks, added) and the files that failed."""
        try:
            return document_list(settings)
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc

    def add_file(file: FileData, collection: str = "") -> dict[str, Any]:
        """Add one uploaded file (`handle_file(path)`) to the corpus, in ``collection`` when named,
        and index it."""
        try:
            # Only a file Gradio itself received qualifies: its upload step checked the path.
            upload = FileData.model_validate(file, context={"validate_meta": True})
        except ValueError as exc:
            raise gr.Error("Send the file as an upload (gradio_client.handle_file).") from exc
        path = Path(upload.path)
        if not path.is_file():
            raise gr.Error("The upload did not arrive; send it again.")
        size = path.stat().st_size
        if size > max_upload_bytes:
            raise gr.Error(f"{path.name}: {size / 1e6:.3g} MB is over the {max_upload_bytes / 1e6:g} MB "
                           "upload limit.")
        try:
            return _single(pipeline.add([str(path)], settings=settings, collection=collection.strip() or None))
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc

    def add_url(url: str, collection: str = "") -> dict[str, Any]:
        """Fetch one http(s) page into the corpus (``collection`` when named) and index it; local
        paths are refused."""
        url = (url or "").strip()
        if not url:
            raise gr.Error("Enter an http(s) URL.")
        try:
            return _single(add_web_page(settings, url, collection=collection.strip() or None))
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc

    def remove(source: str) -> dict[str, Any]:
        """Remove a document (or a file that failed to load) from the index and the corpus folder."""
        if not (source or "").strip():
            raise gr.Error("Name the document to remove (its source, as /documents lists it).")
        try:
            return _single(pipeline.remove([source.strip()], settings=settings))
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc

    gr.api(ask, api_name="ask", concurrency_id="chat", concurrency_limit=4)
    gr.api(collections, api_name="collections", concurrency_limit=4)
    gr.api(documents, api_name="documents", concurrency_limit=4)
    gr.api(add_file, api_name="add_file", **index)
    gr.api(add_url, api_name="add_url", **index)
    gr.api(remove, api_name="remove", **index)


def add_web_page(settings: Settings, url: str, *, collection: str | None = None,
                 progress: Progress | None = None) -> IngestReport:
    """Fetch ``url`` into the corpus (``collection`` when named) and index it; anything but an
    http(s) URL fails, never read as a local path (the URL box and ``/add_url`` both come here)."""
    return pipeline.add([url], settings=settings, paths=False, collection=collection, progress=progress)


def _names(collections: list[str] | str | None) -> list[str] | None:
    """Collection names as the API may send them: a list, or one string with commas."""
    if isinstance(collections, str):
        collections = collections.split(",")
    return [name for name in (collections or []) if name.strip()] or None
