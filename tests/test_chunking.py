"""Chunking with the real tokenizer: offsets reproduce the source, chunks fit the model, ids are stable."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings as hyp_settings, strategies as st
from langchain_core.documents import Document

from rag.chunking import chunk_id, make_splitter, split
from rag.loaders import document_text, load
from tests.helpers import FIXTURE_CORPUS, SEED, make_docx, make_pdf

MB = 1_000_000
BESSEMER = (FIXTURE_CORPUS / "bessemer-process.txt").read_text()


def splitter_for(embedder, *, chunk_tokens: int = 200, overlap_tokens: int = 40):
    return make_splitter(embedder.tokenizer, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens,
                         max_seq_length=embedder.max_seq_length)


def fixture_documents(tmp_path: Path) -> dict[str, list[Document]]:
    """Every fixture file, the seed, a three-page PDF and a Word file, loaded."""
    paths = sorted(FIXTURE_CORPUS.iterdir()) + [SEED]
    paths.append(make_pdf(tmp_path / "plans.pdf", [
        BESSEMER,
        "The second page. " + (FIXTURE_CORPUS / "zollverein.txt").read_text(),
        "A third page about the Donbas coal basin and its mines.",
    ]))
    paths.append(make_docx(tmp_path / "notes.docx", BESSEMER.split("\n\n"), title="Notes"))
    return {p.name: load(p, source=p.name, max_bytes=20 * MB) for p in paths}


def assert_offsets_reproduce(docs: list[Document], chunks: list[Document]) -> None:
    text = document_text(docs)
    assert chunks
    for chunk in chunks:
        start, end = chunk.metadata["start"], chunk.metadata["end"]
        assert text[start:end] == chunk.page_content


@pytest.mark.parametrize("chunk_tokens,overlap_tokens", [(200, 40), (32, 8), (1000, 500)])
def test_chunk_offsets_reproduce_every_fixture_document(embedder, tmp_path, chunk_tokens, overlap_tokens):
    splitter = splitter_for(embedder, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)

    for name, docs in fixture_documents(tmp_path).items():
        chunks = split(docs, splitter)
        assert_offsets_reproduce(docs, chunks)
        assert all(c.metadata["source"] == name for c in chunks)


@pytest.mark.parametrize("chunk_tokens", [200, 1000])
def test_no_chunk_exceeds_the_model_sequence_length(embedder, tmp_path, chunk_tokens):
    splitter = splitter_for(embedder, chunk_tokens=chunk_tokens)

    for docs in fixture_documents(tmp_path).values():
        for chunk in split(docs, splitter):
            assert embedder.count_tokens(chunk.page_content) <= embedder.max_seq_length
            assert embedder.count_tokens(chunk.page_content) <= min(chunk_tokens, embedder.max_seq_length - 2) + 2


def test_pdf_chunks_keep_their_page_number(embedder, tmp_path):
    pdf = make_pdf(tmp_path / "pages.pdf", [
        "Page one is about the Bessemer converter.",
        "Page two is about the Zollverein.",
        "Page three is about Gosplan.",
    ])
    docs = load(pdf, source="pages.pdf", max_bytes=MB)

    chunks = split(docs, splitter_for(embedder))

    by_page = {c.metadata["page"]: c.page_content for c in chunks}
    assert set(by_page) == {1, 2, 3}
    assert "Zollverein" in by_page[2]
    assert "Gosplan" in by_page[3]
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
    assert_offsets_reproduce(docs, chunks)


def test_long_document_is_split_into_overlapping_chunks_in_order(embedder):
    seed = load(SEED, source=SEED.name, max_bytes=MB)

    chunks = split(seed, splitter_for(embedder, chunk_tokens=64, overlap_tokens=16))

    assert len(chunks) > 5
    starts = [c.metadata["start"] for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    # neighbours share text (overlap) without either containing the other
    overlapping = sum(1 for a, b in zip(chunks, chunks[1:]) if b.metadata["start"] < a.metadata["end"])
    assert overlapping > 0


def test_chunk_ids_are_stable_and_depend_on_source(embedder):
    splitter = splitter_for(embedder, chunk_tokens=48, overlap_tokens=8)
    doc = Document(page_content=BESSEMER, metadata={"source": "a.txt"})
    same_text_elsewhere = Document(page_content=BESSEMER, metadata={"source": "b.txt"})

    first, second = split([doc], splitter), split([doc], splitter)
    other = split([same_text_elsewhere], splitter)

    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)
    assert not {c.id for c in first} & {c.id for c in other}
    assert first[0].id == chunk_id("a.txt", first[0].metadata["start"], first[0].page_content)


def test_chunks_cover_all_the_text(embedder):
    docs = load(SEED, source=SEED.name, max_bytes=MB)
    text = document_text(docs)

    chunks = split(docs, splitter_for(embedder, chunk_tokens=40, overlap_tokens=0))

    covered = [False] * len(text)
    for c in chunks:
        for i in range(c.metadata["start"], c.metadata["end"]):
            covered[i] = True
    missing = "".join(ch for ch, ok in zip(text, covered) if not ok)
    assert missing.strip() == ""


def test_repeated_text_is_located_at_its_own_copy(embedder):
    text = "plan U.S.S.R. U.S.S.R. "
    doc = Document(page_content=text, metadata={"source": "ussr.txt"})

    chunks = split([doc], splitter_for(embedder, chunk_tokens=16, overlap_tokens=0))

    assert [(c.page_content, c.metadata["start"]) for c in chunks] == [
        ("plan U.S.S.R.", 0), ("U.S.S.R.", 14)]


WORDS = st.sampled_from([
    "plan", "steel", "the", "Gosplan", "kolkhoz", "Magnitogorsk", "1928", "café", "naïve", "über",
    "统计", "—", "don't", "e.g.", "U.S.S.R.", "pig-iron", "x", "tractors", "Ω", "🙂",
])
SEPARATORS = st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n", ". ", "? ", "; ", ", ", "\t", ""])
TEXT = st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=300).map(
    lambda parts: "".join(w + s for w, s in parts))


@hyp_settings(max_examples=25, deadline=None, database=None)
@given(text=TEXT, chunk_tokens=st.integers(16, 300), overlap=st.integers(0, 60))
def test_offsets_and_token_limit_hold_on_random_text(embedder, text, chunk_tokens, overlap):
    splitter = splitter_for(embedder, chunk_tokens=chunk_tokens, overlap_tokens=overlap)
    doc = Document(page_content=text, metadata={"source": "random.txt"})

    chunks = split([doc], splitter)

    if text.strip():
        assert chunks
    starts = [c.metadata["start"] for c in chunks]
    assert starts == sorted(starts)
    for c in chunks:
        assert text[c.metadata["start"]:c.metadata["end"]] == c.page_content
        assert c.page_content.strip() == c.page_content != ""
        assert embedder.count_tokens(c.page_content) <= embedder.max_seq_length
