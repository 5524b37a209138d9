"""The Documents tab: upload files, add a web page, list, delete and re-index, all through ``pipeline``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from rag import pipeline, render, ui_api
from rag.config import Settings
from rag.corpus import MAIN_COLLECTION
from rag.errors import FootnoteError
from rag.loaders import SUPPORTED_SUFFIXES
from rag.pipeline import IngestReport, Progress
from rag.ui.common import PRIVATE, GradioProgress, report_lines

# What the upload box accepts is what the loaders read, nothing copied by hand.
UPLOAD_TYPES = list(SUPPORTED_SUFFIXES)
DOCUMENT_HEADERS = ["Title", "File", "Type", "Passages", "Added (UTC)", "Collection"]


def documents_view(settings: Settings, status: list[tuple[str, str]] | None = None) -> tuple[Any, ...]:
    """Table, delete dropdown, status, index summary and the two collection boxes (where files go,
    and the chat's "Search in"), read fresh from the manifest.

    Files that failed to load are listed too, with their reason, so they can be deleted here.
    """
    listing = ui_api.document_list(settings)
    entries, failed = listing["documents"], listing["failed"]
    rows = [[e["title"] or e["source"], e["source"], e["type"], e["chunks"], e["added"][:16].replace("T", " "),
             e["collection"]] for e in entries]
    rows += [[f"Not indexed: {f['reason']}", f["source"], Path(f["source"]).suffix.lstrip("."), 0, "",
              f["collection"]] for f in failed]
    names = sorted({e["collection"] for e in entries})
    sources = [e["source"] for e in entries] + [f["source"] for f in failed]
    passages = sum(e["chunks"] for e in entries)
    summary = (f"{len(entries)} document{'s' * (len(entries) != 1)} \u00b7 {passages} passages indexed "
               + (f"\u00b7 {len(failed)} not indexed " if failed else "")
               + f"\u00b7 folder <code>{render.esc(settings.corpus_dir)}</code>")
    table = gr.Dataframe(value=rows, headers=DOCUMENT_HEADERS)
    choice = gr.Dropdown(choices=sources, value=None)
    return (table, choice, render.render_status(status or []), f'<p class="fn-hint">{summary}</p>',
            gr.Dropdown(choices=sorted({MAIN_COLLECTION, *names})), gr.Dropdown(choices=names))


def add_uploads(settings: Settings, paths: Sequence[Path], *, collection: str | None = None,
                progress: Progress | None = None) -> IngestReport:
    """Copy uploaded files into the corpus (``collection``'s folder when named) under their own
    (sanitised) names and index them."""
    return pipeline.add([str(p) for p in paths], settings=settings, collection=collection, progress=progress)


def suffix_list() -> str:
    """The accepted file types as the upload box's label shows them (``.txt .md …``)."""
    return " ".join(s for s in SUPPORTED_SUFFIXES)


def build(base: Settings, *, max_upload: int, search_in: Any) -> tuple[Callable[[], tuple[Any, ...]], list[Any]]:
    """Lay out the tab inside the current ``gr.Blocks`` and wire its events.

    ``search_in`` is the chat's collection filter, whose choices follow the documents.
    Returns the handler that reads the list afresh and the components it fills (for ``app.load``).
    """
    doc_summary = gr.HTML(elem_id="fn-doc-summary", js_on_load=None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            uploads = gr.File(
                label=f"Add files ({suffix_list()}, up to {max_upload / 1e6:g} MB each; scans and "
                "images are read with OCR)", file_count="multiple",
                file_types=UPLOAD_TYPES, height=150, elem_id="fn-upload")
        with gr.Column(scale=2):
            target = gr.Dropdown(
                choices=[MAIN_COLLECTION], value=MAIN_COLLECTION, allow_custom_value=True, label="Collection",
                info="Files and pages go into this collection (a folder of the corpus); type a new name "
                "to start one.", elem_id="fn-target-collection")
            url = gr.Textbox(label="Add a web page", placeholder="https://\u2026", elem_id="fn-url")
            fetch_button = gr.Button("Fetch and add", size="md", elem_id="fn-fetch")
    doc_status = gr.HTML(elem_id="fn-doc-status", js_on_load=None)
    documents = gr.Dataframe(headers=DOCUMENT_HEADERS, interactive=False, wrap=True,
                             elem_id="fn-documents", label="Indexed documents",
                             column_widths=["38%", "30%", "8%", "10%", "14%"])
    with gr.Row():
        doomed = gr.Dropdown(label="Document to delete", choices=[], scale=3, elem_id="fn-delete-choice")
        delete_button = gr.Button("Delete document", variant="stop", scale=1, size="md", elem_id="fn-delete")
        reindex_button = gr.Button("Re-index folder", scale=1, size="md", elem_id="fn-reindex")
    gr.HTML('<p class="fn-hint">Delete removes the document from the index and its file from the '
            "corpus folder. Re-index picks up files added, changed or removed in the folder by hand. "
            "A type marked OCR means the text was read from page images.</p>", js_on_load=None)

    def refresh() -> tuple[Any, ...]:
        try:
            return documents_view(base)
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc

    def add_files(paths: list[str] | None, collection: str | None,
                  progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        status: list[tuple[str, str]] = []
        accepted: list[Path] = []
        for raw in paths or []:
            path = Path(raw)
            size = path.stat().st_size
            if size > max_upload:
                status.append(("error", f"{path.name}: file is {size / 1e6:.3g} MB, over the "
                                        f"{max_upload / 1e6:g} MB upload limit."))
            else:
                accepted.append(path)
        if accepted:
            try:
                report = add_uploads(base, accepted, collection=collection or None,
                                     progress=GradioProgress(progress))
            except FootnoteError as exc:
                raise gr.Error(str(exc)) from exc
            status = report_lines(report, verb="Added") + status
        return (None, *documents_view(base, status))

    def fetch_page(url: str, collection: str | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        url = (url or "").strip()
        if not url:
            return (gr.skip(), *documents_view(base, [("error", "Enter an http(s) URL first.")]))
        try:
            report = ui_api.add_web_page(base, url, collection=collection or None,
                                         progress=GradioProgress(progress))
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        return ("" if not report.failed else gr.skip(),
                *documents_view(base, report_lines(report, verb="Fetched and added")))

    def delete(source: str | None) -> tuple[Any, ...]:
        if not source:
            return documents_view(base, [("info", "Choose a document to delete.")])
        try:
            report = pipeline.remove([source], settings=base)
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        return documents_view(base, report_lines(report, verb="Removed"))

    def reindex(progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        try:
            report = pipeline.ingest(base, progress=GradioProgress(progress))
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        lines = report_lines(report, verb="Indexed")
        if not (report.added or report.updated or report.removed or report.failed):
            lines.append(("ok", f"The index is up to date with the folder ({len(report.unchanged)} files)."))
        return documents_view(base, lines)

    # Index writes run one at a time, in the same queue as the /add_file API's.
    index = {"concurrency_id": "index", "concurrency_limit": 1, "show_progress_on": [documents], **PRIVATE}
    doc_outputs = [documents, doomed, doc_status, doc_summary, target, search_in]
    uploads.upload(add_files, [uploads, target], [uploads, *doc_outputs], **index)
    fetch_button.click(fetch_page, [url, target], [url, *doc_outputs], **index)
    url.submit(fetch_page, [url, target], [url, *doc_outputs], **index)
    delete_button.click(
        delete, [doomed], doc_outputs, **index,
        js="(source) => (source && !confirm(`Delete ${source} from the index and the corpus "
           "folder?`)) ? null : source")
    reindex_button.click(reindex, None, doc_outputs, **index)
    return refresh, doc_outputs
