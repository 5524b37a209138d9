"""The app's package: lists derived from the loaders and backends, tabs that go through pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

from rag.answer import backend_names
from rag.loaders import SUPPORTED_SUFFIXES

UI = Path(__file__).resolve().parent.parent / "rag" / "ui"


def test_upload_box_accepts_every_type_the_loaders_read() -> None:
    from rag.ui import UPLOAD_TYPES

    assert sorted(UPLOAD_TYPES) == sorted(SUPPORTED_SUFFIXES)
    assert {".markdown", ".png", ".jpg", ".pdf"} <= set(UPLOAD_TYPES)


def test_backend_choices_are_the_registered_backends() -> None:
    from rag.ui.chat import BACKENDS

    assert BACKENDS == ["auto", *backend_names()]


def test_no_ui_module_imports_the_indexer_store_or_embeddings() -> None:
    for path in sorted(UI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not imported & {"rag.indexer", "rag.store", "chromadb", "rag.embeddings"}, path.name
        assert "Indexer" not in path.read_text(encoding="utf-8"), f"{path.name} goes through rag.pipeline"
