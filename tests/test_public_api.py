"""The public API of ``rag``, pinned, and what importing it does (nothing to the host process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import rag

REPO = Path(__file__).resolve().parent.parent
EXPECTED = ["Answer", "Citation", "FootnoteError", "Passage", "Settings", "ask", "build_settings", "ingest",
            "stream"]


def test_all_lists_exactly_the_public_api() -> None:
    assert sorted(rag.__all__) == EXPECTED


def test_every_public_name_resolves_to_its_home() -> None:
    from rag.config import Settings
    from rag.errors import FootnoteError
    from rag.pipeline import ask
    from rag.types import Answer

    assert (rag.Settings, rag.FootnoteError, rag.ask, rag.Answer) == (Settings, FootnoteError, ask, Answer)
    assert all(getattr(rag, name) is not None for name in rag.__all__)


def test_importing_rag_changes_no_environment_and_loads_no_model_library() -> None:
    probe = ("import json, os, sys; before = dict(os.environ); import rag, rag.cli; "
             "print(json.dumps({'env_changed': dict(os.environ) != before, 'loaded': sorted(m for m in "
             "('torch', 'chromadb', 'sentence_transformers', 'gradio', 'langchain_core') if m in sys.modules)}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"env_changed": False, "loaded": []}
