"""The assembled app: header, tabs and API endpoints, launch options, and ``serve``."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from rag import pipeline, render, ui_api
from rag.config import Settings
from rag.errors import ConfigError, FootnoteError
from rag.ui import chat, documents, evaluate, history

logger = logging.getLogger(__name__)

CSS_FILE = Path(__file__).with_name("style.css")


def build_app(settings: Settings) -> gr.Blocks:
    """The Gradio app over the index ``settings`` name (launch it with ``launch_options``)."""
    max_upload = int(min(settings.ui.max_upload_mb, settings.max_file_mb) * 1e6)
    try:
        has_seed = any(e.source == chat.SEED_SOURCE for e in pipeline.documents(settings))
    except FootnoteError:
        has_seed = False
    with gr.Blocks(title="Footnote", analytics_enabled=False) as app:
        gr.HTML('<div id="fn-header"><h1>Footnote</h1><span class="fn-tagline">Answers from your '
                "documents, every claim cited and checked against its source.</span></div>",
                padding=False, js_on_load=None)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat_tab = chat.build(settings, has_seed=has_seed)
            with gr.Tab("Documents", id="documents"):
                refresh, doc_outputs = documents.build(settings, max_upload=max_upload,
                                                       search_in=chat_tab.collections)
            with gr.Tab("Evaluate", id="evaluate"):
                evaluate.build(settings, chat_tab.answer_settings, search_in=chat_tab.collections)
        app.load(refresh, None, doc_outputs, show_progress="hidden", api_visibility="private")
        app.load(chat_tab.history.refresh, None, chat_tab.history.saved, show_progress="hidden",
                 api_visibility="private")
        ui_api.register(settings, max_upload_bytes=max_upload)
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
        # Evaluation reports and exports are offered for download from here, wherever the data folder is.
        "allowed_paths": [str(evaluate.reports_dir(settings)), str(history.exports_dir(settings))],
        "theme": theme(),
        "css": CSS_FILE.read_text(encoding="utf-8"),
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
    # Said on stderr whatever the log level: a first run prepares the embedding model and indexes
    # the corpus before the page answers, and a silent minute looks like a hang.
    print(f"Footnote: bringing the index up to date with {settings.corpus_dir} ...", file=sys.stderr, flush=True)
    report = pipeline.ingest(settings)
    for source, message in report.failed:
        logger.warning("not indexed: %s", message)
    print(f"Footnote: {report.chunks_total} passages indexed; documents {len(report.added)} added, "
          f"{len(report.updated)} updated, {len(report.failed)} failed ({report.seconds:.0f} s). "
          "Starting the app.", file=sys.stderr, flush=True)
    app = build_app(settings)
    app.queue(default_concurrency_limit=1)
    app.launch(**options, prevent_thread_lock=True)
    # The page answers now; the embedding model and the indexes load behind it, not before it.
    threading.Thread(target=_warm, args=(settings,), name="footnote-warm-up", daemon=True).start()
    app.block_thread()


def _warm(settings: Settings) -> None:
    """Best effort: whatever fails here, the first question meets again and reports."""
    try:
        pipeline.warm(settings)
    except FootnoteError as exc:  # an empty index, say
        logger.info("warm-up skipped: %s", exc)
    except Exception:  # noqa: BLE001 - a warm-up must never take the app down
        logger.warning("warm-up failed", exc_info=True)
