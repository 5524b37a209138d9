"""The onnx-int8 export cache: one folder for every data folder and process, exported once
(under a lock when processes start together), crash-safe, and a data-folder fallback."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rag.config import BUNDLED_MODEL, build_settings
from rag.embeddings import ONNX_FILE, Embedder, embedder_for, read_spec, resolve_model_path
from rag.errors import ConfigError
from rag.onnx_export import cache_folder_name
from tests.helpers import REPO, SEED, clean_env
from tests.plugins.core import SUITE_MODELS_DIR

TEXTS = ["The first Five-Year Plan set steel targets.", "steel", "Deng Xiaoping's reforms after 1978."]
EXPORTING = "exporting embedding model"


def export_folder(cache: Path) -> Path:
    """Where ``cache`` holds (or would hold) the bundled model's export."""
    return cache / cache_folder_name(BUNDLED_MODEL, read_spec(BUNDLED_MODEL, resolve_model_path(BUNDLED_MODEL)))


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``folder``: (inode, size, mtime_ns), to tell whether anything was rewritten."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
            for p in [folder, *folder.rglob("*")]}


def start_ingest(corpus: Path, data: Path, models: Path) -> subprocess.Popen[str]:
    """`python ingest.py -v` over ``corpus`` into ``data``, exporting models into ``models``."""
    env = clean_env()
    env.update(FOOTNOTE_CORPUS_DIR=str(corpus), FOOTNOTE_DATA_DIR=str(data), FOOTNOTE_MODELS_DIR=str(models),
               PYTHONIOENCODING="utf-8")
    return subprocess.Popen([sys.executable, "ingest.py", "-v"], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[str]) -> str:
    """Wait for ``process`` to succeed; its stderr."""
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return err


# -- one export for every data folder -----------------------------------------------------------
def test_every_data_folder_gets_the_one_loaded_model(settings, embedder, tmp_path):
    other = settings.with_updates(data_dir=str(tmp_path / "other-data"))

    assert settings.models_dir == other.models_dir == SUITE_MODELS_DIR
    assert embedder_for(settings) is embedder_for(other) is embedder
    assert not (settings.data_dir / "models").exists() and not (other.data_dir / "models").exists()


@pytest.mark.slow
def test_processes_exporting_at_once_export_once_and_later_data_folders_reuse_it(tmp_path):
    models, corpus = tmp_path / "models", tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)

    first, second = (start_ingest(corpus, tmp_path / name, models) for name in ("data1", "data2"))
    logs = [finish(first), finish(second)]

    assert sum(log.count(EXPORTING) for log in logs) == 1, logs  # the other waited for the lock
    folder = export_folder(models)
    assert sorted(p.name for p in models.iterdir()) == sorted([folder.name, f".{folder.name}.lock"])  # no partial
    before = snapshot(folder)
    third = finish(start_ingest(corpus, tmp_path / "data3", models))

    assert EXPORTING not in third
    assert snapshot(folder) == before
    assert not any((tmp_path / name / "models").exists() for name in ("data1", "data2", "data3"))


@pytest.mark.slow
def test_second_load_reuses_the_cached_export(embedder):
    folder = export_folder(SUITE_MODELS_DIR)
    before = snapshot(folder)

    again = Embedder(BUNDLED_MODEL, backend="onnx-int8", cache_dir=SUITE_MODELS_DIR)

    assert snapshot(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == ["key.json", ONNX_FILE]
    assert json.loads((folder / "key.json").read_text())["versions"]["onnxruntime"]
    np.testing.assert_allclose(again.embed(TEXTS), embedder.embed(TEXTS), atol=1e-6)


@pytest.mark.slow
def test_cached_onnx_model_loads_without_importing_torch(embedder):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from rag.embeddings import Embedder
        e = Embedder({BUNDLED_MODEL!r}, backend="onnx-int8", cache_dir=Path({str(SUITE_MODELS_DIR)!r}))
        e.embed(["steel"])
        print("torch" in sys.modules, "sentence_transformers" in sys.modules)
    """)

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)

    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]


# -- folders that cannot be written ---------------------------------------------------------------
def test_unwritable_models_folder_falls_back_to_the_data_folder(tmp_path, embedder, caplog):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the models folder should be", encoding="utf-8")
    settings = build_settings(data_dir=tmp_path / "data", models_dir=blocker / "models")
    copied = shutil.copytree(export_folder(SUITE_MODELS_DIR), export_folder(settings.data_dir / "models"))
    before = snapshot(copied)

    with caplog.at_level(logging.INFO, logger="rag"):
        fallback = embedder_for(settings)

    assert fallback is not embedder and EXPORTING not in caplog.text
    assert snapshot(copied) == before and blocker.is_file()
    np.testing.assert_allclose(fallback.embed(TEXTS), embedder.embed(TEXTS), atol=1e-6)


def test_no_writable_models_folder_is_a_clean_error(tmp_path, caplog):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the folders should be", encoding="utf-8")

    with pytest.raises(ConfigError) as error:
        Embedder(BUNDLED_MODEL, backend="onnx-int8", cache_dir=blocker / "models",
                 fallback_dir=blocker / "data" / "models")

    assert str(error.value) == (
        f"Cannot write the ONNX export of embedding model 'all-MiniLM-L6-v2' to {blocker / 'models'} "
        f"(Not a directory) or {blocker / 'data' / 'models'} (Not a directory). Set FOOTNOTE_MODELS_DIR "
        "to a writable folder, or FOOTNOTE_EMBEDDING_BACKEND=torch.")
    assert caplog.text.count("cannot write the exported embedding model") == 2


# -- crashes --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_export_killed_midway_leaves_nothing_loadable_and_is_redone_cleanly(tmp_path, embedder):
    cache = tmp_path / "models"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from rag.embeddings import Embedder
        Embedder({BUNDLED_MODEL!r}, backend="onnx-int8", cache_dir=Path({str(cache)!r}))
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        # Kill as soon as the export has written its first file into its temporary folder.
        while not any(p.is_file() for p in cache.glob(".*.partial/*")):
            assert child.poll() is None, "the export ended before it could be interrupted"
            assert time.monotonic() < deadline, "the export never started"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()

    [partial] = list(cache.glob(".*.partial"))
    assert not any(p.name.endswith(ONNX_FILE) for p in cache.rglob("*") if ".partial" not in str(p))
    hour_ago = time.time() - 2 * 3600  # a crashed export's leftovers, once old enough, are removed
    os.utime(partial, (hour_ago, hour_ago))

    root = logging.getLogger()
    root_before = (list(root.handlers), list(root.filters), root.level)

    redone = Embedder(BUNDLED_MODEL, backend="onnx-int8", cache_dir=cache)

    assert (list(root.handlers), list(root.filters), root.level) == root_before
    # The dead process's lock did not hold the export up, and its partial folder is gone.
    folder = export_folder(cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted([folder.name, f".{folder.name}.lock"])
    assert (folder / ONNX_FILE).is_file()
    np.testing.assert_allclose(redone.embed(TEXTS), embedder.embed(TEXTS), atol=1e-5)
