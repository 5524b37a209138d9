"""The Gradio web app: chat with cited sources, document management, settings, evaluation, an `ask` API."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Before gradio is imported: it reads this once, and the app must not phone home.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr  # noqa: E402

from rag import pipeline, render, ui_api  # noqa: E402
from rag.answer import backend_names  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.local_model import queued  # noqa: E402
from rag.errors import ConfigError, FootnoteError  # noqa: E402
from rag.indexer import Indexer, IngestReport, Progress  # noqa: E402
from rag.types import Answer  # noqa: E402

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
EVALS_DIR = REPO / "evals"
UPLOAD_TYPES = [".txt", ".md", ".pdf", ".html", ".htm", ".docx"]
DATASET_TYPES = [".jsonl", ".json", ".csv"]
SEED_SOURCE = "stalin-industrialisation-vs-great-leap-forward.txt"
SEED_EXAMPLES = [
    "Which book argues that moving labour out of agriculture caused the collapse?",
    "Why did Mao oppose the Soviet model?",
    "What role did overreporting by local cadres play?",
]
# The app's backend choices: every registered backend, with `auto` first.
BACKENDS = ["auto", *backend_names()]
DOCUMENT_HEADERS = ["Title", "File", "Type", "Passages", "Added (UTC)"]
UPLOADED_DATASET = "Upload a dataset\u2026"
_feedback_lock = threading.Lock()

CSS = """
.gradio-container { max-width: 1320px !important; width: 100% !important; margin: 0 auto !important; }
#fn-documents, #fn-documents *, #fn-eval-table, #fn-eval-table * { font-family: var(--font) !important; }
#fn-header { display: flex; align-items: baseline; gap: 14px; flex-wrap: wrap; padding: 6px 2px 2px; }
#fn-header h1 { font-size: 1.6rem; font-weight: 700; margin: 0; letter-spacing: -0.01em; }
#fn-header .fn-tagline { color: var(--body-text-color-subdued); font-size: 0.95rem; }
#fn-index-stats { margin-left: auto; color: var(--body-text-color-subdued); font-size: 0.85rem; }

/* answers in the chat */
.fn-answer { line-height: 1.6; }
.fn-cites { white-space: nowrap; font-size: 0.8em; vertical-align: 0.1em; }
.fn-bracket { font-size: 0; }
a.fn-cite { display: inline-block; min-width: 1.4em; padding: 0 4px; margin: 0 1px; border-radius: 5px;
  text-align: center; font-weight: 600; text-decoration: none !important;
  background: var(--color-accent-soft); color: var(--color-accent) !important; cursor: pointer; }
a.fn-cite:hover { background: var(--color-accent); color: white !important; }
.fn-marker-pending { color: var(--body-text-color-subdued); }
.fn-pending { color: var(--body-text-color-subdued); font-style: italic; }
.fn-unsupported { text-decoration: underline wavy #d97706; text-decoration-thickness: 1px;
  text-underline-offset: 3px; background: rgba(217, 119, 6, 0.08); border-radius: 3px; }
.fn-badge { display: inline-block; font-size: 0.7rem; font-weight: 600; text-transform: uppercase;
  letter-spacing: 0.04em; padding: 1px 6px; border-radius: 999px; vertical-align: middle; margin-left: 4px; }
.fn-badge-ok { background: rgba(22, 163, 74, 0.12); color: #15803d; }
.fn-badge-warn { background: rgba(217, 119, 6, 0.15); color: #b45309; }
.fn-badge-muted { background: rgba(100, 116, 139, 0.12); color: #475569; }
.fn-badge-refusal { background: rgba(100, 116, 139, 0.15); color: #475569; margin: 0 0 6px 0; }
.fn-refusal p { margin: 4px 0; }
.fn-note { font-size: 0.85rem; color: var(--body-text-color-subdued); margin: 6px 0 2px; }
.fn-note-warn { color: #b45309; }
ul.fn-closest { margin: 2px 0 0 1.1em; padding: 0; font-size: 0.9rem; }
.fn-score { color: var(--body-text-color-subdued); font-size: 0.8rem; }

/* sources panel */
.fn-sources { max-height: 640px; overflow-y: auto; padding-right: 6px; }
.fn-empty { border: 1px dashed var(--border-color-primary); border-radius: 10px; padding: 18px;
  color: var(--body-text-color-subdued); font-size: 0.92rem; }
.fn-empty-title { font-weight: 600; color: var(--body-text-color); margin: 0 0 6px; }
.fn-cite-sample { font-weight: 600; color: var(--color-accent); }
.fn-turn { display: none; }
.fn-turn.fn-current { display: block; }
.fn-turn-head { font-size: 0.85rem; margin: 0 0 10px; color: var(--body-text-color-subdued); }
.fn-turn-question { color: var(--body-text-color); font-weight: 600; }
.fn-source { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px;
  margin: 0 0 10px; background: var(--block-background-fill); transition: box-shadow .2s, border-color .2s; }
.fn-source.fn-active { border-color: var(--color-accent); box-shadow: 0 0 0 3px var(--color-accent-soft); }
.fn-card-head { display: flex; align-items: center; gap: 8px; }
.fn-label { font-weight: 700; color: var(--color-accent); font-size: 0.9rem; }
.fn-card-head .fn-title { font-family: var(--font); font-weight: 600; font-size: 0.9rem; line-height: 1.35;
  flex: 1; overflow-wrap: anywhere; }
.fn-meta { font-size: 0.78rem; color: var(--body-text-color-subdued); margin: 3px 0 6px; overflow-wrap: anywhere; }
.fn-file { font-family: var(--font-mono); }
.fn-passage { margin: 0; padding: 6px 10px; border-left: 3px solid var(--border-color-primary);
  font-size: 0.86rem; line-height: 1.5; color: var(--body-text-color); overflow-wrap: anywhere; }
.fn-passage mark { background: #fde68a; color: inherit; padding: 0 1px; border-radius: 2px; }
.fn-source-unsupported .fn-passage mark { background: #fed7aa; }

/* documents tab */
ul.fn-status { list-style: none; margin: 4px 0; padding: 0; font-size: 0.9rem; }
ul.fn-status li { padding: 6px 10px; border-radius: 8px; margin: 0 0 4px; overflow-wrap: anywhere; }
.fn-status-ok { background: rgba(22, 163, 74, 0.10); color: #166534; }
.fn-status-error { background: rgba(220, 38, 38, 0.10); color: #991b1b; }
.fn-status-info { background: rgba(100, 116, 139, 0.10); }
.fn-hint { font-size: 0.85rem; color: var(--body-text-color-subdued); }
"""


# --------------------------------------------------------------------------- session state
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


def _messages(turns: Sequence[Turn], pending: tuple[str, str] | None = None) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for n, turn in enumerate(turns):
        messages.append({"role": "user", "content": render.render_question(turn.question)})
        body = render.render_answer(turn.answer, n) if turn.answer else render.render_error(turn.error)
        messages.append({"role": "assistant", "content": body})
    if pending is not None:
        messages.append({"role": "user", "content": render.render_question(pending[0])})
        messages.append({"role": "assistant", "content": pending[1]})
    return messages


def _sources(turns: Sequence[Turn]) -> str:
    return render.render_sources([t.answer for t in turns])


# --------------------------------------------------------------------------- progress
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


# --------------------------------------------------------------------------- documents
def _documents_view(settings: Settings, status: list[tuple[str, str]] | None = None) -> tuple[Any, Any, str, str]:
    """Table, delete dropdown, status and index summary, read fresh from the manifest.

    Files that failed to load are listed too, with their reason, so they can be deleted here.
    """
    listing = ui_api.document_list(settings)
    entries, failed = listing["documents"], listing["failed"]
    rows = [[e["title"] or e["source"], e["source"], e["type"], e["chunks"], e["added"][:16].replace("T", " ")]
            for e in entries]
    rows += [[f"Not indexed: {f['reason']}", f["source"], Path(f["source"]).suffix.lstrip("."), 0, ""]
             for f in failed]
    sources = [e["source"] for e in entries] + [f["source"] for f in failed]
    passages = sum(e["chunks"] for e in entries)
    summary = (f"{len(entries)} document{'s' * (len(entries) != 1)} \u00b7 {passages} passages indexed "
               + (f"\u00b7 {len(failed)} not indexed " if failed else "")
               + f"\u00b7 folder <code>{render.esc(settings.corpus_dir)}</code>")
    table = gr.Dataframe(value=rows, headers=DOCUMENT_HEADERS)
    choice = gr.Dropdown(choices=sources, value=None)
    return table, choice, render.render_status(status or []), f'<p class="fn-hint">{summary}</p>'


def _report_lines(report: IngestReport, *, verb: str) -> list[tuple[str, str]]:
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


def add_uploads(settings: Settings, paths: Sequence[Path], *, progress: Progress | None = None) -> IngestReport:
    """Copy uploaded files into the corpus under their own (sanitised) names and index them."""
    return Indexer(settings, progress=progress).add([str(p) for p in paths])


# --------------------------------------------------------------------------- feedback
def save_feedback(path: Path, turn: Turn, rating: str) -> None:
    """Append one rating, with the question, answer and sources, to a JSON Lines file."""
    answer = turn.answer
    assert answer is not None
    record = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rating": rating,
        "question": turn.question,
        "answer": answer.text,
        "refused": answer.refused,
        "backend": answer.backend,
        "sources": [
            {"marker": c.marker, "source": c.passage.source, "title": c.passage.title,
             "page": c.passage.page, "start": c.passage.start, "end": c.passage.end,
             "quote": c.quote, "supported": c.supported}
            for c in answer.citations
        ],
        # What the user saw beside a refusal (or an answer no passage supported).
        "closest": [
            {"source": p.source, "title": p.title, "page": p.page, "start": p.start, "end": p.end,
             "score": round(p.score, 4)}
            for p in ([] if answer.citations else answer.closest)
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with _feedback_lock, path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _rating(liked: Any) -> str | None:
    if liked is True or liked == "Like":
        return "up"
    if liked is False or liked == "Dislike":
        return "down"
    return None  # a rating taken back


# --------------------------------------------------------------------------- evaluation
def bundled_datasets() -> dict[str, Path]:
    """Datasets shipped in evals/, by display name."""
    if not EVALS_DIR.is_dir():
        return {}
    return {f"{p.name} (bundled)": p for p in sorted(EVALS_DIR.glob("*.jsonl"))}


def reports_dir(settings: Settings) -> Path:
    """Where the Evaluate tab writes its reports."""
    return settings.data_dir / "eval-reports"


# --------------------------------------------------------------------------- the app
def build_app(settings: Settings) -> gr.Blocks:
    """The Gradio app over the index ``settings`` name (launch it with ``launch_options``)."""
    base = settings
    feedback_path = settings.data_dir / "feedback.jsonl"
    max_upload = int(min(settings.ui.max_upload_mb, settings.max_file_mb) * 1e6)
    try:
        has_seed = any(e.source == SEED_SOURCE for e in Indexer(settings).documents())
    except FootnoteError:
        has_seed = False

    # ---------------------------------------------------------------- chat handlers
    def respond(question: str, turns: list[Turn], backend: str, model: str, base_url: str, k: float,
                hybrid: bool) -> Iterator[tuple[Any, ...]]:
        if not (question or "").strip():
            yield _messages(turns), _sources(turns), turns, ""
            return
        try:
            question = pipeline.check_question(question, settings=base)
            request = session_settings(base, backend, model, base_url, k, hybrid)
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        history = [(t.question, t.answer.text) for t in turns if t.answer is not None]
        waiting = render.render_streaming("", queued=queued())
        yield _messages(turns, (question, waiting)), _sources(turns), turns, ""
        final: Answer | None = None
        try:
            for piece in pipeline.stream(question, history, settings=request):
                if isinstance(piece, Answer):
                    final = piece
                else:
                    yield (_messages(turns, (question, render.render_streaming(piece))), gr.skip(),
                           turns, gr.skip())
        except FootnoteError as exc:
            turns = [*turns, Turn(question, None, str(exc))]
            yield _messages(turns), _sources(turns), turns, gr.skip()
            raise gr.Error(str(exc)) from exc
        assert final is not None
        turns = [*turns, Turn(question, final)]
        yield _messages(turns), _sources(turns), turns, gr.skip()

    def clear() -> tuple[Any, ...]:
        return [], render.SOURCES_PLACEHOLDER, [], ""

    def pick_example(data: gr.SelectData) -> str:
        value = data.value
        return str(value.get("text", "") if isinstance(value, dict) else value)

    def feedback(turns: list[Turn], data: gr.LikeData) -> None:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn_no = int(index) // 2
        rating = _rating(data.liked)
        if rating is None or not 0 <= turn_no < len(turns) or turns[turn_no].answer is None:
            return
        save_feedback(feedback_path, turns[turn_no], rating)
        gr.Info("Thanks: your feedback was saved.")

    # ---------------------------------------------------------------- document handlers
    def refresh() -> tuple[Any, ...]:
        try:
            return _documents_view(base)
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc

    def add_files(paths: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        status: list[tuple[str, str]] = []
        accepted: list[str] = []
        for raw in paths or []:
            path = Path(raw)
            size = path.stat().st_size
            if size > max_upload:
                status.append(("error", f"{path.name}: file is {size / 1e6:.3g} MB, over the "
                                        f"{max_upload / 1e6:g} MB upload limit."))
            else:
                accepted.append(str(path))
        if accepted:
            try:
                report = add_uploads(base, [Path(p) for p in accepted], progress=GradioProgress(progress))
            except FootnoteError as exc:
                raise gr.Error(str(exc)) from exc
            status = _report_lines(report, verb="Added") + status
        return (None, *_documents_view(base, status))

    def fetch_page(url: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        url = (url or "").strip()
        if not url:
            return (gr.skip(), *_documents_view(base, [("error", "Enter an http(s) URL first.")]))
        try:
            report = ui_api.add_web_page(base, url, indexer=Indexer(base, progress=GradioProgress(progress)))
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        return ("" if not report.failed else gr.skip(),
                *_documents_view(base, _report_lines(report, verb="Fetched and added")))

    def delete(source: str | None) -> tuple[Any, ...]:
        if not source:
            return _documents_view(base, [("info", "Choose a document to delete.")])
        try:
            report = Indexer(base).remove([source])
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        return _documents_view(base, _report_lines(report, verb="Removed"))

    def reindex(progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        try:
            report = Indexer(base, progress=GradioProgress(progress)).sync()
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        lines = _report_lines(report, verb="Indexed")
        if not (report.added or report.updated or report.removed or report.failed):
            lines.append(("ok", f"The index is up to date with the folder ({len(report.unchanged)} files)."))
        return _documents_view(base, lines)

    # ---------------------------------------------------------------- evaluation handler
    def run_eval(choice: str, upload: str | None, backend: str, model: str, base_url: str, k: float,
                 hybrid: bool, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        # Imported here: the answer path must never load the evaluation package.
        from rag.eval import evaluate, load_dataset, prepare_index
        from rag.eval.report import describe_metric, format_value, write_report

        bundled = bundled_datasets()
        if choice in bundled:
            dataset_path, eval_corpus = bundled[choice], EVALS_DIR / "corpus"
        elif upload:
            dataset_path, eval_corpus = Path(upload), None
        else:
            raise gr.Error("Choose a bundled dataset or upload one (.jsonl, .json or .csv).")
        try:
            request = session_settings(base, backend, model, base_url, k, hybrid)
            dataset = load_dataset(dataset_path)
            index_progress = GradioProgress(progress)
            prepared = prepare_index(request, corpus=eval_corpus, documents=dataset.documents,
                                     progress=index_progress)

            def step(done: int, total: int) -> None:
                progress((done, max(total, 1)), desc=f"Question {done} of {total}", unit="questions")

            report = evaluate(dataset.items, settings=prepared, progress=step)
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        paths = write_report([report], reports_dir(base) / stamp, dataset=dataset_path.name)
        rows = [[name, format_value(value, name), describe_metric(name)]
                for name, value in report.summary.items()]
        where = "the bundled evaluation corpus" if eval_corpus else (
            "the dataset's own documents" if dataset.documents else "this app's documents")
        note = (f'<p class="fn-hint">{len(dataset.items)} questions from <code>{render.esc(dataset_path.name)}'
                f"</code> against {where}; {report.label}; {report.seconds:.1f} s"
                + (f"; {report.errors} failed" if report.errors else "") + ".</p>")
        return (gr.Dataframe(value=rows, headers=["Metric", "Value", "Meaning"]), str(paths["chart"]),
                [str(paths["markdown"]), str(paths["json"]), str(paths["chart"])], note)

    # ---------------------------------------------------------------- layout
    private: dict[str, Any] = {"api_visibility": "private"}
    with gr.Blocks(title="Footnote", analytics_enabled=False) as app:
        turns = gr.State([])
        gr.HTML('<div id="fn-header"><h1>Footnote</h1><span class="fn-tagline">Answers from your '
                "documents, every claim cited and checked against its source.</span></div>",
                padding=False, js_on_load=None)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chatbot = gr.Chatbot(
                            elem_id="fn-chat", label="Conversation", show_label=False, height=540,
                            render_markdown=False, sanitize_html=True, layout="bubble",
                            # Gradio's copy buttons would copy the rendered HTML; selecting text works.
                            buttons=[],
                            placeholder="**Ask a question about your documents.**<br>Every sentence "
                            "of the answer cites the passage it comes from; click a marker to see it.",
                            examples=[{"text": q} for q in SEED_EXAMPLES] if has_seed else None,
                        )
                        with gr.Row(equal_height=True):
                            question = gr.Textbox(
                                elem_id="fn-question", show_label=False, scale=6, lines=2, max_lines=6,
                                placeholder="Ask about your documents\u2026 (Enter to send, "
                                "Shift+Enter for a new line)", autofocus=True)
                            with gr.Column(scale=1, min_width=130):
                                ask_button = gr.Button("Ask", variant="primary", elem_id="fn-ask")
                                clear_button = gr.Button("New conversation", size="sm",
                                                         variant="secondary", elem_id="fn-clear")
                        with gr.Accordion("Answer settings", open=False, elem_id="fn-settings"):
                            with gr.Row():
                                backend = gr.Radio(BACKENDS, value=base.answer.backend, label="Backend",
                                                   info="extractive works offline; openai and ollama "
                                                   "need a running server.", elem_id="fn-backend")
                                top_k = gr.Slider(1, 20, value=base.retrieval.top_k, step=1,
                                                  label="Passages retrieved (k)", elem_id="fn-k")
                            with gr.Row():
                                model = gr.Textbox(value=base.answer.model, label="Model",
                                                   placeholder="e.g. llama3.2", elem_id="fn-model")
                                base_url = gr.Textbox(value=base.answer.base_url, label="Base URL",
                                                      placeholder="http://127.0.0.1:8080/v1",
                                                      elem_id="fn-base-url")
                            hybrid = gr.Checkbox(value=base.retrieval.hybrid,
                                                 label="Hybrid search (keywords + meaning)",
                                                 elem_id="fn-hybrid")
                    with gr.Column(scale=2, min_width=320):
                        sources = gr.HTML(render.SOURCES_PLACEHOLDER, elem_id="fn-sources-panel",
                                          js_on_load=None, padding=False)

            with gr.Tab("Documents", id="documents"):
                doc_summary = gr.HTML(elem_id="fn-doc-summary", js_on_load=None)
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        uploads = gr.File(
                            label=f"Add files (.txt .md .pdf .html .docx, up to "
                            f"{max_upload / 1e6:g} MB each)", file_count="multiple",
                            file_types=UPLOAD_TYPES, height=150, elem_id="fn-upload")
                    with gr.Column(scale=2):
                        url = gr.Textbox(label="Add a web page", placeholder="https://\u2026",
                                         elem_id="fn-url")
                        fetch_button = gr.Button("Fetch and add", size="md", elem_id="fn-fetch")
                doc_status = gr.HTML(elem_id="fn-doc-status", js_on_load=None)
                documents = gr.Dataframe(headers=DOCUMENT_HEADERS, interactive=False, wrap=True,
                                         elem_id="fn-documents", label="Indexed documents",
                                         column_widths=["38%", "30%", "8%", "10%", "14%"])
                with gr.Row():
                    doomed = gr.Dropdown(label="Document to delete", choices=[], scale=3, elem_id="fn-delete-choice")
                    delete_button = gr.Button("Delete document", variant="stop", scale=1, size="md",
                                              elem_id="fn-delete")
                    reindex_button = gr.Button("Re-index folder", scale=1, size="md", elem_id="fn-reindex")
                gr.HTML('<p class="fn-hint">Delete removes the document from the index and its file '
                        "from the corpus folder. Re-index picks up files added, changed or removed in "
                        "the folder by hand.</p>", js_on_load=None)

            with gr.Tab("Evaluate", id="evaluate"):
                gr.HTML('<p class="fn-hint">Run a question set and score retrieval, answers and '
                        "citations. A bundled dataset runs against its own corpus (indexed "
                        "separately); an uploaded one runs against this app's documents. The answer "
                        "settings of the Chat tab apply.</p>", js_on_load=None)
                datasets = bundled_datasets()
                with gr.Row(equal_height=False):
                    dataset_choice = gr.Dropdown(
                        [*datasets, UPLOADED_DATASET],
                        value=next(iter(datasets), UPLOADED_DATASET), label="Dataset",
                        elem_id="fn-eval-dataset", scale=2)
                    dataset_file = gr.File(label="Your dataset (.jsonl, .json or .csv)",
                                           file_types=DATASET_TYPES, height=110,
                                           elem_id="fn-eval-upload", scale=2)
                    run_button = gr.Button("Run evaluation", variant="primary", elem_id="fn-eval-run",
                                           scale=1)
                eval_note = gr.HTML(elem_id="fn-eval-note", js_on_load=None)
                with gr.Row(equal_height=False):
                    eval_table = gr.Dataframe(headers=["Metric", "Value", "Meaning"], interactive=False,
                                              wrap=True, elem_id="fn-eval-table", label="Summary",
                                              scale=2, column_widths=["28%", "14%", "58%"])
                    with gr.Column(scale=3):
                        eval_chart = gr.Image(label="Chart", type="filepath", interactive=False, height=380,
                                              elem_id="fn-eval-chart", buttons=["download", "fullscreen"])
                        eval_files = gr.File(label="Report (Markdown, JSON, chart)", file_count="multiple",
                                             interactive=False, height=130,
                                             elem_id="fn-eval-report")

        # ---------------------------------------------------------------- events
        # One queue per kind of work: answers run side by side, index writes one at a time.
        chat = {"concurrency_id": "chat", "concurrency_limit": 4, **private}
        index = {"concurrency_id": "index", "concurrency_limit": 1, "show_progress_on": [documents], **private}
        chat_inputs = [question, turns, backend, model, base_url, top_k, hybrid]
        chat_outputs = [chatbot, sources, turns, question]
        question.submit(respond, chat_inputs, chat_outputs, show_progress="hidden", **chat)
        ask_button.click(respond, chat_inputs, chat_outputs, show_progress="hidden", **chat)
        chatbot.example_select(pick_example, None, question, queue=False, **private).then(
            respond, chat_inputs, chat_outputs, show_progress="hidden", **chat)
        clear_button.click(clear, None, chat_outputs, queue=False, **private)
        chatbot.clear(clear, None, chat_outputs, queue=False, **private)
        chatbot.like(feedback, [turns], None, queue=False, **private)

        doc_outputs = [documents, doomed, doc_status, doc_summary]
        app.load(refresh, None, doc_outputs, show_progress="hidden", **private)
        uploads.upload(add_files, [uploads], [uploads, *doc_outputs], **index)
        fetch_button.click(fetch_page, [url], [url, *doc_outputs], **index)
        url.submit(fetch_page, [url], [url, *doc_outputs], **index)
        delete_button.click(
            delete, [doomed], doc_outputs, **index,
            js="(source) => (source && !confirm(`Delete ${source} from the index and the corpus "
               "folder?`)) ? null : source")
        reindex_button.click(reindex, None, doc_outputs, **index)

        dataset_file.upload(lambda: UPLOADED_DATASET, None, dataset_choice, queue=False, **private)
        run_button.click(run_eval, [dataset_choice, dataset_file, backend, model, base_url, top_k, hybrid],
                         [eval_table, eval_chart, eval_files, eval_note], concurrency_id="eval",
                         concurrency_limit=1, show_progress_on=[eval_table], **private)

        ui_api.register(base, max_upload_bytes=max_upload)
    return app


def launch_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``Blocks.launch`` for these settings: local only, no share link.

    Raises:
        ConfigError: ``ui.auth`` is set but not ``user:password``.
    """
    auth = settings.ui.auth.get_secret_value()
    credentials = None
    if auth:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise ConfigError("FOOTNOTE_UI__AUTH must be user:password (both non-empty).")
        credentials = (user, password)
    return {
        "server_name": settings.ui.host,
        "server_port": settings.ui.port,
        "share": False,
        "auth": credentials,
        "max_file_size": int(settings.ui.max_upload_mb * 1e6),
        # Evaluation reports are offered for download from here, wherever the data folder is.
        "allowed_paths": [str(reports_dir(settings))],
        "theme": theme(),
        "css": CSS,
        "head": render.CLICK_JS,
        "ssr_mode": False,
        "pwa": False,
        "mcp_server": False,
        "enable_monitoring": False,
        "footer_links": ["api"],
    }


def theme() -> gr.themes.Base:
    """A quiet theme with the fonts Gradio bundles (nothing is fetched from the internet)."""
    return gr.themes.Default(primary_hue="indigo", secondary_hue="slate", neutral_hue="slate",
                             radius_size="md")


def serve(settings: Settings) -> None:
    """Bring the index up to date with the corpus folder, then serve the app until interrupted.

    Raises:
        FootnoteError: the index cannot be opened or synced, or a setting is invalid.
    """
    options = launch_options(settings)
    settings.corpus_dir.mkdir(parents=True, exist_ok=True)
    report = pipeline.ingest(settings)
    for source, message in report.failed:
        logger.warning("not indexed: %s", message)
    app = build_app(settings)
    app.queue(default_concurrency_limit=1)
    app.launch(**options)
