"""The Evaluate tab: run a bundled or uploaded question set and show the scores, chart and report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr

from rag import render
from rag.config import Settings
from rag.errors import FootnoteError
from rag.ui.common import PRIVATE, GradioProgress, session_settings

REPO = Path(__file__).resolve().parent.parent.parent
EVALS_DIR = REPO / "evals"
DATASET_TYPES = [".jsonl", ".json", ".csv"]
UPLOADED_DATASET = "Upload a dataset\u2026"


def bundled_datasets() -> dict[str, Path]:
    """Datasets shipped in evals/, by display name."""
    if not EVALS_DIR.is_dir():
        return {}
    return {f"{p.name} (bundled)": p for p in sorted(EVALS_DIR.glob("*.jsonl"))}


def reports_dir(settings: Settings) -> Path:
    """Where the Evaluate tab writes its reports."""
    return settings.data_dir / "eval-reports"


def build(base: Settings, answer_settings: Sequence[Any], *, search_in: Any) -> None:
    """Lay out the tab inside the current ``gr.Blocks`` and wire its events.

    ``answer_settings`` are the Chat tab's backend, model, base URL, k and hybrid inputs;
    ``search_in`` its collection filter, which limits a dataset run against the app's documents.
    """
    gr.HTML('<p class="fn-hint">Run a question set and score retrieval, answers and citations. A '
            "bundled dataset runs against its own corpus (indexed separately); an uploaded one runs "
            "against this app's documents. The answer settings and collections of the Chat tab apply.</p>",
            js_on_load=None)
    datasets = bundled_datasets()
    with gr.Row(equal_height=False):
        dataset_choice = gr.Dropdown(
            [*datasets, UPLOADED_DATASET], value=next(iter(datasets), UPLOADED_DATASET),
            label="Dataset", elem_id="fn-eval-dataset", scale=2)
        dataset_file = gr.File(label="Your dataset (.jsonl, .json or .csv)", file_types=DATASET_TYPES,
                               height=110, elem_id="fn-eval-upload", scale=2)
        run_button = gr.Button("Run evaluation", variant="primary", elem_id="fn-eval-run", scale=1)
    eval_note = gr.HTML(elem_id="fn-eval-note", js_on_load=None)
    with gr.Row(equal_height=False):
        eval_table = gr.Dataframe(headers=["Metric", "Value", "Meaning"], interactive=False, wrap=True,
                                  elem_id="fn-eval-table", label="Summary", scale=2,
                                  column_widths=["28%", "14%", "58%"])
        with gr.Column(scale=3):
            eval_chart = gr.Image(label="Chart", type="filepath", interactive=False, height=380,
                                  elem_id="fn-eval-chart", buttons=["download", "fullscreen"])
            eval_files = gr.File(label="Report (Markdown, JSON, chart)", file_count="multiple",
                                 interactive=False, height=130, elem_id="fn-eval-report")

    def run_eval(choice: str, upload: str | None, scope: list[str] | None, backend: str, model: str,
                 base_url: str, k: float, hybrid: bool, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
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
            prepared = prepare_index(request, corpus=eval_corpus, documents=dataset.documents,
                                     progress=GradioProgress(progress))

            def step(done: int, total: int) -> None:
                progress((done, max(total, 1)), desc=f"Question {done} of {total}", unit="questions")

            own_documents = eval_corpus is None and not dataset.documents
            scope = (scope or None) if own_documents else None
            report = evaluate(dataset.items, settings=prepared, progress=step, collections=scope)
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        paths = write_report([report], reports_dir(base) / stamp, dataset=dataset_path.name)
        rows = [[name, format_value(value, name), describe_metric(name)]
                for name, value in report.summary.items()]
        where = "the bundled evaluation corpus" if eval_corpus else (
            "the dataset's own documents" if dataset.documents else
            f"the collections {', '.join(scope)}" if scope else "this app's documents")
        note = (f'<p class="fn-hint">{len(dataset.items)} questions from <code>{render.esc(dataset_path.name)}'
                f"</code> against {where}; {report.label}; {report.seconds:.1f} s"
                + (f"; {report.errors} failed" if report.errors else "") + ".</p>")
        return (gr.Dataframe(value=rows, headers=["Metric", "Value", "Meaning"]), str(paths["chart"]),
                [str(paths["markdown"]), str(paths["json"]), str(paths["chart"])], note)

    dataset_file.upload(lambda: UPLOADED_DATASET, None, dataset_choice, queue=False, **PRIVATE)
    run_button.click(run_eval, [dataset_choice, dataset_file, search_in, *answer_settings],
                     [eval_table, eval_chart, eval_files, eval_note], concurrency_id="eval",
                     concurrency_limit=1, show_progress_on=[eval_table], **PRIVATE)
