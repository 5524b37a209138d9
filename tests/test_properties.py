"""Property-based tests: loaders, the chunker and the citation parser end only in results or the
clear error, whatever bytes or text they are given (hypothesis, 1,000 inputs each)."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from langchain_core.documents import Document

from rag.chunking import make_splitter, split
from rag.citations import SupportChecker, check
from rag.errors import IngestError
from rag.limits import LoadLimits
from rag.loaders import document_text, load_bytes
from rag.text import MARKER, markers_in, strip_markers
from rag.types import Passage
from tests.helpers import make_docx, make_pdf

# The autouse environment fixture is function-scoped but only isolates FOOTNOTE_* variables:
# nothing it sets changes between examples.
PROPERTY = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SUFFIXES = [".txt", ".md", ".html", ".docx", ".pdf"]
# Small limits keep hostile inputs cheap; the behaviour under test is the same.
LIMITS = LoadLimits(max_unzipped_bytes=5_000_000, max_archive_entries=100, max_pdf_pages=20, max_page_chars=5000)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Real Word and PDF files to mutate."""
    folder = tmp_path_factory.mktemp("templates")
    docx = make_docx(folder / "t.docx", ["The Dnieper dam opened in 1932.", "Magnitogorsk grew fast."])
    pdf = make_pdf(folder / "t.pdf", ["The Turksib railway was finished in 1930.", "Second page."])
    return {"docx": docx.read_bytes(), "pdf": pdf.read_bytes()}


def parse(data: bytes, suffix: str) -> None:
    """Load ``data`` as a ``suffix`` file: Documents with text, or an IngestError; nothing else."""
    try:
        docs = load_bytes(data, source=f"input{suffix}", suffix=suffix, limits=LIMITS)
    except IngestError as exc:
        assert str(exc).startswith(f"input{suffix}: ")
        return
    assert docs and all(isinstance(d, Document) for d in docs)
    assert document_text(docs).strip()


# -- loaders ---------------------------------------------------------------------------------------
@PROPERTY
@given(data=st.binary(max_size=3000), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_load_or_fail_cleanly(data, suffix):
    parse(data, suffix)


@PROPERTY
@given(text=st.text(max_size=800), suffix=st.sampled_from(SUFFIXES),
       encoding=st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-8-sig"]))
def test_random_text_loads_or_fails_cleanly(text, suffix, encoding):
    parse(text.encode(encoding), suffix)


@PROPERTY
@given(data=st.data())
def test_mutated_word_and_pdf_files_load_or_fail_cleanly(templates, data):
    kind = data.draw(st.sampled_from(["docx-xml", "docx-bytes", "pdf-bytes"]))
    if kind == "docx-xml":  # a valid archive whose document.xml is random (malformed XML, mostly)
        xml = data.draw(st.one_of(st.binary(max_size=500), st.text(max_size=500).map(str.encode),
                                  st.just(b"<w:document")))
        parse(_replace_entry(templates["docx"], "word/document.xml", xml), ".docx")
    else:
        original = templates["docx" if kind == "docx-bytes" else "pdf"]
        raw = bytearray(original)
        for _ in range(data.draw(st.integers(1, 8))):
            position = data.draw(st.integers(0, len(raw) - 1))
            raw[position] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(len(raw) // 2, len(raw)))
        parse(bytes(raw[:cut]), ".docx" if kind == "docx-bytes" else ".pdf")


def _replace_entry(docx: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx)) as source, zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            target.writestr(entry.filename, content if entry.filename == name else source.read(entry.filename))
    return out.getvalue()


# -- chunker -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def splitter(embedder):
    """A small-chunk splitter on the real tokenizer, so short texts split into several chunks."""
    return make_splitter(embedder.tokenizer, chunk_tokens=16, overlap_tokens=4,
                         max_seq_length=embedder.max_seq_length)


WORDY = st.lists(st.one_of(
    st.sampled_from(["Gosplan", "U.S.S.R.", "1928", "steel", "\u65e5\u672c", "caf\u00e9", "the", "a"]),
    st.sampled_from([" ", "  ", "\n", "\n\n", ". ", "? ", "! ", "; ", ", ", "\t", "\r\n"]),
    st.text(max_size=12),
), max_size=60).map("".join)


@PROPERTY
@given(text=st.one_of(WORDY, st.text(max_size=400)))
def test_chunk_offsets_reproduce_the_source(splitter, text):
    doc = Document(page_content=text, metadata={"source": "s.txt", "offset": 0})

    chunks = split([doc], splitter)

    for n, chunk in enumerate(chunks):
        start, end = chunk.metadata["start"], chunk.metadata["end"]
        assert text[start:end] == chunk.page_content and chunk.page_content.strip()
        assert chunk.metadata["chunk_index"] == n
    starts = [c.metadata["start"] for c in chunks]
    assert starts == sorted(set(starts))
    assert bool(chunks) == bool(text.strip())


@PROPERTY
@given(pages=st.lists(WORDY, min_size=1, max_size=3))
def test_chunk_offsets_index_the_whole_document_across_pages(splitter, pages):
    docs, offset = [], 0
    for n, text in enumerate(pages):  # segments as loaders.load makes them for PDF pages
        docs.append(Document(page_content=text, metadata={"source": "p.pdf", "page": n + 1, "offset": offset}))
        offset += len(text) + 2
    full = document_text(docs)

    for chunk in split(docs, splitter):
        assert full[chunk.metadata["start"]:chunk.metadata["end"]] == chunk.page_content


# -- citation parser ---------------------------------------------------------------------------------
NUMBER = st.integers(0, 12)
MARKER_TEXT = st.one_of(
    NUMBER.map(lambda n: f"[{n}]"),
    st.lists(NUMBER, min_size=2, max_size=4).flatmap(
        lambda ns: st.sampled_from([", ", ",", "; ", ";", " , "]).map(lambda sep: "[" + sep.join(map(str, ns)) + "]")),
)
PIECE = st.one_of(
    MARKER_TEXT,
    MARKER_TEXT.map(lambda m: f"[{m}]"),                      # nested: [[1]]
    st.tuples(NUMBER, MARKER_TEXT).map(lambda t: f"[{t[0]}{t[1]}]"),  # [1[2]]
    st.tuples(NUMBER, MARKER_TEXT, NUMBER).map(lambda t: f"[{t[0]}, {t[1]}, {t[2]}]"),
    st.sampled_from(["[", "]", "[[", "]]", "[x]", "[]", "[1", "2]", "[1,]", "[ 1]", "[1234]"]),
    st.sampled_from(["Steel output rose", "in 1932", "Gosplan", ".", ". ", "! ", "? ", " ", "\n", "\n\n"]),
    st.text(alphabet="ab [],;.0123456789\n", max_size=8),
)
ANSWER = st.lists(PIECE, max_size=30).map("".join)


def _numbers_in_brackets(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\d+", text)}


@PROPERTY
@given(text=ANSWER)
def test_markers_in_finds_only_numbers_of_the_text_and_strip_leaves_none(text):
    found = markers_in(text)

    assert set(found) <= _numbers_in_brackets(text)
    stripped = strip_markers(text)
    assert markers_in(stripped) == []
    assert not MARKER.search(stripped)


@pytest.fixture(scope="module")
def checker(embedder) -> SupportChecker:
    return SupportChecker(embedder)


def _passage(marker: int) -> Passage:
    # Empty text: support scoring then needs no embedding, and marker handling is what is tested.
    return Passage(marker=marker, id=f"id{marker}", text="", source=f"s{marker}.txt", title="", score=1.0,
                   start=0, end=0)


@PROPERTY
@given(text=ANSWER, markers=st.sets(st.integers(1, 8), max_size=5))
def test_check_keeps_only_markers_of_existing_passages(checker, text, markers):
    passages = [_passage(m) for m in sorted(markers)]

    checked = check(text, passages, checker=checker, threshold=0.5)

    assert set(markers_in(checked.text)) <= markers
    assert all(set(s.markers) <= markers for s in checked.sentences)
    assert {c.marker for c in checked.citations} <= markers
    assert set(checked.dropped_markers).isdisjoint(markers)
