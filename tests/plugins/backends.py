"""Fixtures: answer backends registered through the real registry for one test, then removed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.answer import register_backend, unregister_backend
from tests.scripted import ScriptedBackend


@pytest.fixture
def scripted() -> Iterator[ScriptedBackend]:
    """A fresh ``ScriptedBackend`` registered as "scripted" for this test only; queue with ``.script``."""
    backend = ScriptedBackend()
    register_backend("scripted", lambda settings, embedder: backend)
    yield backend
    unregister_backend("scripted")


@pytest.fixture(scope="session")
def local_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder per session, so the 1.1 GB local model is assembled (and checked) once."""
    return tmp_path_factory.mktemp("local-model")
