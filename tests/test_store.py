"""The store on real Chroma (local and `chroma run`) with real vectors and real BM25."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag import exact
from rag.errors import IndexNotFoundError, StaleIndexError, StoreError
from rag.indexer import Indexer
from rag.store import Store, collection_name
from tests.helpers import free_port

TEXTS = {
    "bessemer": "Henry Bessemer's converter blew air through molten pig iron to make steel.",
    "meiji": "The Tomioka Silk Mill opened in Gunma Prefecture in 1872.",
    "gosplan": "Gosplan drew up the targets of the first Five-Year Plan from 1928.",
}


def put(store: Store, embedder, items: dict[str, str], *, source: str = "notes.txt") -> list[str]:
    ids = list(items)
    texts = [items[i] for i in ids]
    metas = [{"source": source, "start": 0, "end": len(t), "title": i} for i, t in zip(ids, texts)]
    store.upsert(ids, texts, metas, embedder.embed(texts))
    store.mark_changed()
    return ids


# -- opening ---------------------------------------------------------------------------------
def test_missing_index_is_a_clean_error_naming_the_ingest_command(settings):
    with pytest.raises(IndexNotFoundError, match=r"No index at .*Run `python ingest.py`"):
        Store(settings)


def test_index_of_other_chunk_size_is_stale_and_says_to_rebuild(settings):
    Store(settings, create=True)
    other = settings.with_updates(**{"chunking.chunk_tokens": 150})

    with pytest.raises(StaleIndexError, match=r"200/40-token chunks.*150/40.*python ingest.py --rebuild"):
        Store(other)
    with pytest.raises(StaleIndexError):
        Store(other, create=True)


def test_index_of_other_embedding_model_is_stale(settings):
    Store(settings, create=True)
    other = settings.with_updates(embedding_model="sentence-transformers/all-mpnet-base-v2")

    with pytest.raises(StaleIndexError, match=r"all-MiniLM-L6-v2.*all-mpnet-base-v2.*--rebuild"):
        Store(other)


def test_rebuild_replaces_an_index_built_with_other_settings(settings, embedder):
    put(Store(settings, create=True), embedder, TEXTS)
    other = settings.with_updates(**{"chunking.overlap_tokens": 10})

    rebuilt = Store(other, rebuild=True)

    assert rebuilt.count() == 0
    assert collection_name(other) != collection_name(settings)
    with pytest.raises(StaleIndexError):
        Store(settings)


def test_collection_name_follows_the_fingerprint(settings):
    same = settings.with_updates(**{"retrieval.top_k": 3})

    assert collection_name(same) == collection_name(settings)
    assert collection_name(settings.with_updates(**{"chunking.chunk_tokens": 100})) != collection_name(settings)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:8000", "127.0.0.1:8000", "http://"])
def test_malformed_chroma_url_is_a_clean_error(settings, url):
    with pytest.raises(StoreError, match=r"is not http\(s\)://HOST:PORT"):
        Store(settings.with_updates(chroma_url=url))


def test_unreachable_chroma_server_is_a_clean_error(settings):
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(StoreError, match=rf"Cannot open the Chroma store at {url}.*chroma run"):
        Store(settings.with_updates(chroma_url=url), create=True)


# -- writing and reading ---------------------------------------------------------------------
def test_upserting_the_same_ids_twice_adds_nothing(settings, embedder):
    store = Store(settings, create=True)
    put(store, embedder, TEXTS)

    put(store, embedder, TEXTS)

    assert store.count() == 3


def test_dense_search_uses_cosine_similarity(settings, embedder):
    store = Store(settings, create=True)
    put(store, embedder, TEXTS)

    hits = store.dense_search(embedder.embed_query("When did the Tomioka silk mill open?"), k=3)

    assert hits[0].id == "meiji"
    assert 0.5 < hits[0].similarity <= 1.0
    assert hits[0].similarity > hits[1].similarity >= hits[2].similarity
    # The stored vector itself: onnx-int8 embeds a text alone a little differently (cosine 0.99)
    # from the same text in a batch, since int8 activations are scaled per call.
    [stored] = store.get(["gosplan"], with_vectors=True)
    assert stored.embedding is not None
    exact = store.dense_search(stored.embedding, k=1)[0]
    assert exact.id == "gosplan" and exact.similarity == pytest.approx(1.0, abs=1e-4)


def test_dense_search_can_be_limited_to_sources(settings, embedder):
    store = Store(settings, create=True)
    put(store, embedder, {"bessemer": TEXTS["bessemer"]}, source="steel.txt")
    put(store, embedder, {"meiji": TEXTS["meiji"], "gosplan": TEXTS["gosplan"]}, source="other.txt")

    query = embedder.embed_query("silk mill")
    by_chroma = store.dense_search(query, k=3, sources=["steel.txt", "other.txt"])  # keyword index behind
    store.refresh_keywords()  # now current: its ids of the sources are ranked exactly
    by_id = store.dense_search(query, k=3, sources=["steel.txt", "other.txt"])

    assert [h.id for h in store.dense_search(query, k=3, sources=["steel.txt"])] == ["bessemer"]
    assert [h.id for h in by_id] == [h.id for h in by_chroma]
    assert by_id[0].id == "meiji" and {h.id for h in by_id} == set(TEXTS)
    assert [h.similarity for h in by_id] == pytest.approx([h.similarity for h in by_chroma], abs=1e-4)
    assert [h.text for h in by_id] == [h.text for h in by_chroma]
    assert store.dense_search(query, k=3, sources=["nowhere.txt"]) == []


def test_exact_search_among_ids_returns_what_chromas_filtered_query_does(settings, embedder):
    store = Store(settings, create=True)
    put(store, embedder, TEXTS)
    vector = np.asarray(embedder.embed_query("When did the Tomioka silk mill open?"), dtype=np.float32)
    include = ["distances", "documents", "metadatas", "embeddings"]

    chroma = store.collection.query(query_embeddings=[vector], n_results=2, ids=["meiji", "gosplan", "bessemer"],
                                    include=include)
    mine = exact.query(store.collection, ["gosplan", "meiji", "gone", "bessemer"], vector, k=2, include=include)

    assert mine["ids"] == chroma["ids"] and len(mine["ids"][0]) == 2
    assert mine["distances"][0] == pytest.approx(chroma["distances"][0], abs=1e-4)
    assert mine["documents"] == chroma["documents"] and mine["metadatas"] == chroma["metadatas"]
    assert np.allclose(np.asarray(mine["embeddings"][0]), np.asarray(chroma["embeddings"][0]), atol=1e-6)
    assert exact.query(store.collection, ["gone"], vector, k=2, include=include)["ids"] == [[]]


def test_chunks_are_read_back_by_source_and_by_id(settings, embedder):
    store = Store(settings, create=True)
    put(store, embedder, {"bessemer": TEXTS["bessemer"]}, source="steel.txt")
    put(store, embedder, {"meiji": TEXTS["meiji"]}, source="japan.md")

    by_source = store.chunks_of("japan.md", with_vectors=True)
    by_id = store.get(["meiji", "nope", "bessemer"])

    assert [c.id for c in by_source] == ["meiji"]
    assert by_source[0].text == TEXTS["meiji"]
    assert by_source[0].embedding is not None and by_source[0].embedding.shape == (embedder.dimension,)
    assert np.linalg.norm(by_source[0].embedding) == pytest.approx(1.0, abs=1e-3)
    assert [c.id for c in by_id] == ["meiji", "bessemer"]
    assert store.existing_ids(["meiji", "nope"]) == {"meiji"}


def test_deleted_chunks_are_gone_from_both_searches(settings, embedder):
    store = Store(settings, create=True)
    put(store, embedder, TEXTS)
    assert [i for i, _ in store.keyword_search("Tomioka silk", k=3)] == ["meiji"]

    store.delete(["meiji"])
    store.mark_changed()

    assert store.count() == 2
    assert store.keyword_search("Tomioka silk", k=3) == []
    assert "meiji" not in [h.id for h in store.dense_search(embedder.embed_query("silk"), k=3)]


def test_keyword_search_finds_stemmed_words_and_filters_sources(settings, embedder):
    store = Store(settings, create=True)
    put(store, embedder, {"bessemer": TEXTS["bessemer"]}, source="steel.txt")
    put(store, embedder, {"gosplan": TEXTS["gosplan"]}, source="plan.txt")

    assert [i for i, _ in store.keyword_search("converters blowing", k=5)] == ["bessemer"]
    assert store.keyword_search("converter", k=5, sources=["plan.txt"]) == []
    assert store.keyword_search("the of and", k=5) == []


def test_removed_chunks_are_masked_without_a_rebuild_with_and_without_sources(settings, embedder):
    store = Store(settings, create=True)
    put(store, embedder, {"bessemer": TEXTS["bessemer"]}, source="steel.txt")
    put(store, embedder, {"meiji": TEXTS["meiji"], "gosplan": TEXTS["gosplan"]}, source="plan.txt")
    assert {i for i, _ in store.keyword_search("Tomioka silk Gosplan", k=5)} == {"meiji", "gosplan"}

    store.delete(["meiji"])  # masked in the saved keyword index: no rebuild

    state = json.loads((store.keywords.folder / "state.json").read_text(encoding="utf-8"))
    assert state["deleted"] == ["meiji"] and "meiji" in state["ids"]
    for reader in (store, Store(settings)):  # in memory, and loaded from disk
        assert [i for i, _ in reader.keyword_search("Tomioka silk Gosplan", k=5)] == ["gosplan"]
        assert [i for i, _ in reader.keyword_search("Tomioka Gosplan", k=5, sources=["plan.txt"])] == ["gosplan"]
        assert reader.keyword_search("Tomioka silk", k=5, sources=["plan.txt"]) == []
        assert reader.keyword_search("Bessemer converter", k=5, sources=["plan.txt"]) == []
        assert [i for i, _ in reader.keyword_search("Bessemer converter", k=5,
                                                     sources=["steel.txt", "nowhere.txt"])] == ["bessemer"]


def test_damaged_keyword_index_files_are_rebuilt_not_trusted(settings, embedder):
    put(Store(settings, create=True), embedder, TEXTS)
    Store(settings).refresh_keywords()
    folder = Store(settings).keywords.folder
    (folder / "vocab.index.json").write_text("{not json", encoding="utf-8")  # state.json still says current

    fresh = Store(settings)
    assert [i for i, _ in fresh.keyword_search("Five-Year Plan targets", k=1)] == ["gosplan"]
    assert json.loads((folder / "vocab.index.json").read_text(encoding="utf-8")), "rebuilt on disk too"


def test_keyword_index_is_reloaded_from_disk_by_a_new_store(settings, embedder):
    put(Store(settings, create=True), embedder, TEXTS)
    Store(settings).refresh_keywords()

    fresh = Store(settings)
    fresh.refresh_keywords()  # current already: checked, not loaded (the first search loads it)

    assert fresh.keywords.loaded_version is None
    assert [i for i, _ in fresh.keyword_search("Five-Year Plan targets", k=1)] == ["gosplan"]


# -- server mode -------------------------------------------------------------------------------
@pytest.mark.slow
def test_server_store_sees_what_the_indexer_wrote(empty_chroma_server, settings, embedder, fixture_corpus):
    served = settings.with_updates(chroma_url=empty_chroma_server)

    report = Indexer(served, embedder=embedder).sync()

    store = Store(served)
    assert store.count() == report.chunks_total > 0
    assert any("Yawata Steel Works" in c.text for c in store.chunks_of("meiji-industrialisation.md"))
    assert [i for i, _ in store.keyword_search("Zollverein customs union", k=1)][0] in {
        c.id for c in store.chunks_of("zollverein.txt")}
    with pytest.raises(IndexNotFoundError):
        Store(settings)  # the local store under data_dir was never written
