"""The embedding backends on the real bundled model: onnx-int8 against torch, its export cache, index identity."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.chunking import make_splitter, split
from rag.config import BUNDLED_MODEL, Settings
from rag.embeddings import Embedder, read_spec, resolve_model_path
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
def onnx_embedder(embedder: Embedder) -> Embedder:
    """The bundled model on onnx-int8: the session's embedder, since that is the default backend."""
    assert embedder.backend == "onnx-int8"
    return embedder


def top1(embedder: Embedder) -> dict[str, str]:
    ids = list(PASSAGES)
    corpus = embedder.embed([PASSAGES[i] for i in ids])
    return {q: ids[int(np.argmax(corpus @ embedder.embed([q])[0]))] for q in QUERIES}


# -- vectors ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_onnx_int8_vectors_agree_with_torch(onnx_embedder, torch_embedder):
    cosines = (onnx_embedder.embed(SENTENCES) * torch_embedder.embed(SENTENCES)).sum(axis=1)

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
def test_onnx_int8_ranks_a_small_corpus_like_torch(onnx_embedder, torch_embedder):
    expected = dict(QUERIES)

    assert top1(torch_embedder) == expected
    assert top1(onnx_embedder) == expected


@pytest.mark.slow
def test_onnx_int8_tokenizes_and_chunks_exactly_as_torch(onnx_embedder, torch_embedder):
    source = REPO / "tests" / "fixtures" / "corpus" / "zollverein.txt"
    docs = load(source, source=source.name, max_bytes=10**7)

    def chunks(e: Embedder) -> list[tuple[str, int, int]]:
        splitter = make_splitter(e.tokenizer, chunk_tokens=40, overlap_tokens=8, max_seq_length=e.max_seq_length)
        return [(c.page_content, c.metadata["start"], c.metadata["end"]) for c in split(docs, splitter)]

    torch = torch_embedder
    assert (onnx_embedder.max_seq_length, onnx_embedder.dimension) == (torch.max_seq_length, torch.dimension) == (256, 384)
    assert [onnx_embedder.count_tokens(s) for s in SENTENCES] == [torch.count_tokens(s) for s in SENTENCES]
    assert len(chunks(torch)) > 1
    assert chunks(onnx_embedder) == chunks(torch)


# -- refusals ------------------------------------------------------------------------------------
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
def test_onnx_int8_is_the_default_and_torch_keeps_the_index_name_it_had_before_backends(settings):
    key = f"{BUNDLED_MODEL}|{settings.chunking.chunk_tokens}|{settings.chunking.overlap_tokens}"
    torch = settings.with_updates(embedding_backend="torch")

    assert settings.embedding_backend == "onnx-int8"
    assert torch.index_fingerprint() == hashlib.sha256(key.encode()).hexdigest()[:10]
    assert settings.index_fingerprint() != torch.index_fingerprint()


def test_embedding_backend_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("FOOTNOTE_EMBEDDING_BACKEND", "torch")

    assert Settings().embedding_backend == "torch"


@pytest.mark.slow
def test_index_built_with_torch_is_stale_under_the_onnx_default_and_says_how_to_keep_it(
        settings, torch_embedder, embedder, fixture_corpus):
    torch_settings = settings.with_updates(embedding_backend="torch")  # FOOTNOTE_EMBEDDING_BACKEND=torch
    built = Indexer(torch_settings, embedder=torch_embedder).sync()

    with pytest.raises(StaleIndexError) as stale:
        Store(settings)
    assert str(stale.value) == (
        "The index was built with the torch embedding backend, but the settings now say onnx-int8 "
        "(the default). Run `python ingest.py --rebuild` to re-index with the new settings, or set "
        "FOOTNOTE_EMBEDDING_BACKEND=torch to use the index as it is.")
    assert Store(torch_settings).count() == built.chunks_total  # setting it back is enough
    report = Indexer(settings, embedder=embedder).sync(rebuild=True)

    assert report.chunks_embedded == built.chunks_total
    assert Store(settings).count() == report.chunks_total
    with pytest.raises(StaleIndexError, match=r"built with the onnx-int8 embedding backend, but the settings now "
                                              r"say torch\. .*or set FOOTNOTE_EMBEDDING_BACKEND=onnx-int8"):
        Store(torch_settings)


def test_importing_rag_leaves_the_environment_alone():
    code = ("import os; before = dict(os.environ)\n"
            "import rag, rag.embeddings, rag.indexer, rag.pipeline, rag.store\n"
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "TOKENIZERS_"))}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
