"""The embedding backends on the real bundled model: onnx-int8 against torch, its export cache, index identity."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rag.chunking import make_splitter, split
from rag.config import BUNDLED_MODEL, Settings
from rag.embeddings import ONNX_FILE, Embedder, read_spec, resolve_model_path
from rag.errors import ConfigError, StaleIndexError
from rag.indexer import Indexer
from rag.loaders import load
from rag.store import Store
from tests.helpers import REPO

# Short and long, several languages, numbers, code, punctuation only, and one text past the
# model's 256 word pieces (truncated by both backends alike).
SENTENCES = [
    "The first Five-Year Plan set steel targets that Gosplan raised twice before 1930.",
    "Henry Bessemer's converter blew air through molten pig iron to make cheap steel.",
    "The Tomioka Silk Mill opened in Gunma Prefecture in 1872 with French machinery.",
    "Dust storms stripped the topsoil from the southern plains in the 1930s.",
    "Backyard furnaces produced brittle pig iron of little use to industry.",
    "What caused the famine?",
    "steel",
    "Deng Xiaoping",
    "1978",
    "Zollverein: a customs union of German states, founded 1834 under Prussian leadership.",
    "The Third Front moved factories into the mountainous interior, far from the coasts and borders.",
    "Le plan quinquennal fixait des objectifs de production d'acier très ambitieux.",
    "Der Zollverein schuf einen gemeinsamen Binnenmarkt für die deutschen Staaten.",
    "大跃进期间，农村劳动力被大量调往工业。",
    "Prices: wheat fell from $1.03 a bushel in 1929 to $0.38 in 1932 (a 63% drop).",
    "def embed(texts): return model.encode(texts, normalize_embeddings=True)",
    "!!! ??? ... --- ### ***",
    "A household responsibility system let farmers sell surplus grain at market prices, "
    "and output rose quickly in the early 1980s as incentives returned to the countryside.",
    " ".join(["Collectivisation disrupted harvests across the Soviet Union, and grain requisitions "
              "continued even as rural famine spread through Ukraine and Kazakhstan."] * 12),
    "the the the the the the the the",
]
# Measured on these sentences in one call: min 0.9852, mean 0.9923; each text embedded alone
# against the same text embedded with the others: min 0.9820.
MIN_COSINE = 0.980
MEAN_COSINE = 0.990
ALONE_MIN_COSINE = 0.978

PASSAGES = {
    "bessemer": "Henry Bessemer's converter blew air through molten pig iron to burn out carbon, "
                "making steel cheaply from the 1850s.",
    "tomioka": "The Tomioka Silk Mill opened in Gunma Prefecture in 1872, staffed by young women "
               "trained on French reeling machines.",
    "gosplan": "Gosplan, the state planning committee, drew up the targets of the first Five-Year "
               "Plan for coal, steel and electricity.",
    "dustbowl": "Drought and over-ploughing turned the southern Great Plains into the Dust Bowl; "
                "storms carried topsoil as far as the Atlantic.",
    "zollverein": "The Zollverein, a customs union of German states led by Prussia from 1834, "
                  "removed tariffs between its members.",
    "deng": "Deng Xiaoping's reforms after 1978 let farmers sell surplus grain and opened special "
            "economic zones to foreign investment.",
    "thirdfront": "The Third Front moved arms factories and railways into China's mountainous "
                  "interior, away from the vulnerable coasts.",
    "stakhanov": "The miner Alexei Stakhanov cut 102 tonnes of coal in one shift in 1935, and a "
                 "movement to beat work norms took his name.",
}
QUERIES = {
    "How was steel made cheaply from pig iron?": "bessemer",
    "Which Japanese silk factory used French machines?": "tomioka",
    "Who drew up the targets of the Five-Year Plan?": "gosplan",
    "Why did dust storms hit the American plains?": "dustbowl",
    "When did German states abolish tariffs between themselves?": "zollverein",
    "What did China's reforms after Mao change for farmers?": "deng",
    "Why were Chinese factories relocated inland?": "thirdfront",
    "Which coal miner broke production records?": "stakhanov",
}


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache folder shared by this module's tests (one export)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def onnx_embedder(onnx_cache: Path) -> Embedder:
    """The bundled model on the onnx-int8 backend, exported into ``onnx_cache``."""
    return Embedder(BUNDLED_MODEL, backend="onnx-int8", cache_dir=onnx_cache)


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``folder``: (inode, size, mtime_ns), to tell whether anything was rewritten."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
            for p in [folder, *folder.rglob("*")]}


def top1(embedder: Embedder) -> dict[str, str]:
    ids = list(PASSAGES)
    corpus = embedder.embed([PASSAGES[i] for i in ids])
    return {q: ids[int(np.argmax(corpus @ embedder.embed([q])[0]))] for q in QUERIES}


# -- vectors ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_onnx_int8_vectors_agree_with_torch(onnx_embedder, embedder):
    cosines = (onnx_embedder.embed(SENTENCES) * embedder.embed(SENTENCES)).sum(axis=1)

    assert cosines.min() >= MIN_COSINE, dict(zip(SENTENCES, cosines.round(4)))
    assert cosines.mean() >= MEAN_COSINE


@pytest.mark.slow
def test_onnx_int8_vectors_are_unit_length_float32(onnx_embedder):
    vectors = onnx_embedder.embed(SENTENCES)

    assert vectors.shape == (len(SENTENCES), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert onnx_embedder.embed([]).shape == (0, 384)
    assert len(onnx_embedder.embed_query("steel")) == 384


@pytest.mark.slow
def test_onnx_int8_vectors_do_not_depend_on_input_order(onnx_embedder):
    forward = onnx_embedder.embed(SENTENCES)
    backward = onnx_embedder.embed(SENTENCES[::-1])[::-1]

    np.testing.assert_allclose(forward, backward, atol=1e-6)


@pytest.mark.slow
def test_onnx_int8_vector_depends_only_slightly_on_the_texts_embedded_with_it(onnx_embedder):
    # int8 activations are scaled per call, so the texts embedded with one change it a little.
    together = onnx_embedder.embed(SENTENCES)
    alone = np.vstack([onnx_embedder.embed([s]) for s in SENTENCES])

    assert (together * alone).sum(axis=1).min() >= ALONE_MIN_COSINE


@pytest.mark.slow
def test_onnx_int8_ranks_a_small_corpus_like_torch(onnx_embedder, embedder):
    expected = dict(QUERIES)

    assert top1(embedder) == expected
    assert top1(onnx_embedder) == expected


@pytest.mark.slow
def test_onnx_int8_tokenizes_and_chunks_exactly_as_torch(onnx_embedder, embedder):
    source = REPO / "tests" / "fixtures" / "corpus" / "zollverein.txt"
    docs = load(source, source=source.name, max_bytes=10**7)

    def chunks(e: Embedder) -> list[tuple[str, int, int]]:
        splitter = make_splitter(e.tokenizer, chunk_tokens=40, overlap_tokens=8, max_seq_length=e.max_seq_length)
        return [(c.page_content, c.metadata["start"], c.metadata["end"]) for c in split(docs, splitter)]

    assert (onnx_embedder.max_seq_length, onnx_embedder.dimension) == (embedder.max_seq_length, embedder.dimension) == (256, 384)
    assert [onnx_embedder.count_tokens(s) for s in SENTENCES] == [embedder.count_tokens(s) for s in SENTENCES]
    assert len(chunks(embedder)) > 1
    assert chunks(onnx_embedder) == chunks(embedder)


# -- the export cache ------------------------------------------------------------------------------
@pytest.mark.slow
def test_second_load_reuses_the_cached_export(onnx_embedder, onnx_cache):
    before = snapshot(onnx_cache)

    again = Embedder(BUNDLED_MODEL, backend="onnx-int8", cache_dir=onnx_cache)

    assert snapshot(onnx_cache) == before
    [folder] = [p for p in onnx_cache.iterdir()]
    assert sorted(p.name for p in folder.iterdir()) == ["key.json", ONNX_FILE]
    assert json.loads((folder / "key.json").read_text())["versions"]["onnxruntime"]
    np.testing.assert_allclose(again.embed(SENTENCES[:5]), onnx_embedder.embed(SENTENCES[:5]), atol=1e-6)


@pytest.mark.slow
def test_cached_onnx_model_loads_without_importing_torch(onnx_embedder, onnx_cache):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from rag.embeddings import Embedder
        e = Embedder({BUNDLED_MODEL!r}, backend="onnx-int8", cache_dir=Path({str(onnx_cache)!r}))
        e.embed(["steel"])
        print("torch" in sys.modules, "sentence_transformers" in sys.modules)
    """)

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)

    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]


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

    [partial] = list(cache.iterdir())
    assert partial.name.startswith(".") and partial.name.endswith(".partial")
    hour_ago = time.time() - 2 * 3600  # a crashed export's leftovers, once old enough, are removed
    os.utime(partial, (hour_ago, hour_ago))

    root = logging.getLogger()
    root_before = (list(root.handlers), list(root.filters), root.level)

    redone = Embedder(BUNDLED_MODEL, backend="onnx-int8", cache_dir=cache)

    assert (list(root.handlers), list(root.filters), root.level) == root_before
    [folder] = list(cache.iterdir())
    assert not folder.name.startswith(".") and (folder / ONNX_FILE).is_file()
    cosines = (redone.embed(SENTENCES) * embedder.embed(SENTENCES)).sum(axis=1)
    assert cosines.min() >= MIN_COSINE


def test_model_without_mean_pooling_is_refused_by_onnx_int8(tmp_path):
    model = Path(resolve_model_path(BUNDLED_MODEL))
    folder = tmp_path / "cls-model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "modules.json").write_text((model / "modules.json").read_text())
    pooling = json.loads((model / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))

    with pytest.raises(ConfigError, match=r"cannot use the onnx-int8 .*mean pooling.*FOOTNOTE_EMBEDDING_BACKEND=torch"):
        read_spec("cls-model", str(folder))


def test_unknown_backend_is_a_clean_error():
    with pytest.raises(ConfigError, match=r"Unknown embedding backend 'tensorrt'.*torch, onnx-int8"):
        Embedder(BUNDLED_MODEL, backend="tensorrt")


# -- index identity --------------------------------------------------------------------------------
def test_torch_backend_keeps_the_index_name_it_had_before_backends(settings):
    key = f"{BUNDLED_MODEL}|{settings.chunking.chunk_tokens}|{settings.chunking.overlap_tokens}"

    assert settings.embedding_backend == "torch"
    assert settings.index_fingerprint() == hashlib.sha256(key.encode()).hexdigest()[:10]
    assert settings.with_updates(embedding_backend="onnx-int8").index_fingerprint() != settings.index_fingerprint()


def test_embedding_backend_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("FOOTNOTE_EMBEDDING_BACKEND", "onnx-int8")

    assert Settings().embedding_backend == "onnx-int8"


@pytest.mark.slow
def test_changed_backend_makes_the_index_stale_until_rebuilt(settings, embedder, onnx_embedder, fixture_corpus):
    Indexer(settings, embedder=embedder).sync()
    onnx_settings = settings.with_updates(embedding_backend="onnx-int8")

    with pytest.raises(StaleIndexError, match=r"python ingest.py --rebuild"):
        Store(onnx_settings)
    report = Indexer(onnx_settings, embedder=onnx_embedder).sync(rebuild=True)

    assert report.chunks_embedded > 0
    assert Store(onnx_settings).count() == report.chunks_total
    with pytest.raises(StaleIndexError):
        Store(settings)


def test_importing_rag_leaves_the_environment_alone():
    code = ("import os; before = dict(os.environ)\n"
            "import rag, rag.embeddings, rag.indexer, rag.pipeline, rag.store\n"
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "TOKENIZERS_"))}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
