"""The Gradio web app, one module per tab (``chat``, ``documents``, ``evaluate``), assembled by ``app``."""

from __future__ import annotations

from rag.config import offline_environment

# Before gradio is imported: it reads these once, and the app must not phone home.
offline_environment()

from rag.ui.app import build_app, launch_options, serve, theme  # noqa: E402
from rag.ui.chat import save_feedback  # noqa: E402
from rag.ui.common import GradioProgress, Turn, session_settings  # noqa: E402
from rag.ui.documents import UPLOAD_TYPES, add_uploads  # noqa: E402
from rag.ui.evaluate import bundled_datasets, reports_dir  # noqa: E402

__all__ = ["UPLOAD_TYPES", "GradioProgress", "Turn", "add_uploads", "build_app", "bundled_datasets",
           "launch_options", "reports_dir", "save_feedback", "serve", "session_settings", "theme"]
