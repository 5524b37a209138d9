"""Loaders on real files: fixture corpus, the seed file, generated PDFs and Word files, bad input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rag.errors import EmptyDocumentError, IngestError, UnsupportedFileError
from rag.loaders import document_text, flatten, html_to_text, load
from tests.helpers import FIXTURE_CORPUS, SEED, make_docx, make_pdf

MB = 1_000_000


def load_one(path: Path, *, max_bytes: int = 20 * MB):
    return load(path, source=path.name, max_bytes=max_bytes)


# -- supported types -----------------------------------------------------------------
def test_text_file_keeps_its_text_and_takes_title_from_first_line():
    docs = load_one(FIXTURE_CORPUS / "bessemer-process.txt")

    assert len(docs) == 1
    meta = docs[0].metadata
    assert meta["type"] == "txt"
    assert meta["source"] == "bessemer-process.txt"
    assert meta["title"] == "The Bessemer process"
    assert "Henry Bessemer patented his converter in 1856" in docs[0].page_content
    assert len(meta["content_hash"]) == 64


def test_markdown_front_matter_becomes_title_and_authors_not_text():
    docs = load_one(FIXTURE_CORPUS / "meiji-industrialisation.md")

    meta = docs[0].metadata
    assert meta["type"] == "md"
    assert meta["title"] == "Industrialisation in Meiji Japan"
    assert meta["authors"] == "Aiko Tanaka"
    assert meta["date"] == "2021-04-12"
    text = document_text(docs)
    assert "Tomioka Silk Mill opened in Gunma Prefecture in 1872" in text
    assert "author:" not in text and not text.startswith("---")


def test_seed_thread_lists_asker_and_answerer_as_authors():
    docs = load(SEED, source=SEED.name, max_bytes=20 * MB)

    meta = docs[0].metadata
    assert meta["title"].startswith("What accounts for the (economic) success of Stalin's industrialisation")
    assert "BeingAndSlime" in meta["authors"]
    assert "histomat" in meta["authors"]
    assert "asker:" not in document_text(docs)


def test_html_keeps_the_article_and_drops_nav_script_and_footer():
    docs = load_one(FIXTURE_CORPUS / "gosplan.html")

    meta = docs[0].metadata
    text = document_text(docs)
    assert meta["type"] == "html"
    assert meta["title"] == "Gosplan and the Five-Year Plans"
    assert "was founded in February 1921" in text
    assert "The first Five-Year Plan began in October 1928" in text
    for noise in ("Wombat Press", "tote bags", "Member login", "zebra-quartz", "trackingPixel",
                  "loadAds", "Subscribe to our newsletter", "font-family"):
        assert noise not in text


def test_htm_extension_is_read_as_html(tmp_path):
    page = tmp_path / "gosplan.htm"
    shutil.copy(FIXTURE_CORPUS / "gosplan.html", page)

    docs = load_one(page)

    assert docs[0].metadata["type"] == "html"
    assert "material balances" in docs[0].page_content


def test_short_html_page_drops_nav_script_and_footer():
    html = ("<html><head><title>Kolkhoz</title><script>var spy='script-noise-lynx';</script></head>"
            "<body><nav>Navigation noise heron</nav><p>The kolkhoz was a collective farm.</p>"
            "<footer>Footer noise badger</footer><script>trackMe()</script></body></html>")

    text, title = html_to_text(html)

    assert title == "Kolkhoz"
    assert "The kolkhoz was a collective farm." in text
    for noise in ("heron", "badger", "script-noise-lynx", "trackMe"):
        assert noise not in text


def test_pdf_gives_one_document_per_page_with_page_numbers_and_metadata(tmp_path):
    pdf = make_pdf(tmp_path / "dnieper.pdf", [
        "The Dnieper hydroelectric station was opened in 1932.",
        "Magnitogorsk was built around Magnitnaya mountain in the Urals.",
        "Its first blast furnace was lit in 1932.",
    ], title="Two Soviet Projects", author="Vera Petrova")

    docs = load_one(pdf)

    assert [d.metadata["page"] for d in docs] == [1, 2, 3]
    assert "Dnieper hydroelectric station" in docs[0].page_content
    assert "Magnitnaya mountain" in docs[1].page_content
    assert all(d.metadata["title"] == "Two Soviet Projects" for d in docs)
    assert all(d.metadata["authors"] == "Vera Petrova" for d in docs)
    assert all(d.metadata["type"] == "pdf" and d.metadata["pages"] == 3 for d in docs)
    text = document_text(docs)
    for doc in docs:
        offset = doc.metadata["offset"]
        assert text[offset:offset + len(doc.page_content)] == doc.page_content


def test_docx_gives_paragraphs_and_core_property_title_and_author(tmp_path):
    path = make_docx(tmp_path / "turksib.docx", [
        "The Turkestan-Siberia Railway was finished in 1930.",
        "",
        "It carried Siberian grain south and Central Asian cotton north.",
    ], title="The Turksib", author="Ivan Sokolov")

    docs = load_one(path)

    meta = docs[0].metadata
    assert meta["type"] == "docx"
    assert meta["title"] == "The Turksib"
    assert meta["authors"] == "Ivan Sokolov"
    assert docs[0].page_content == (
        "The Turkestan-Siberia Railway was finished in 1930.\n\n"
        "It carried Siberian grain south and Central Asian cotton north."
    )


def test_docx_without_title_takes_its_first_line(tmp_path):
    path = make_docx(tmp_path / "untitled.docx", ["Collectivisation of agriculture", "Began in 1929."])

    assert load_one(path)[0].metadata["title"] == "Collectivisation of agriculture"


def test_metadata_values_are_flattened_for_chroma():
    flat = flatten({"authors": ["A", "B"], "n": 3, "ok": True, "date": object, "none": None})

    assert flat["authors"] == "A; B"
    assert flat["n"] == 3 and flat["ok"] is True
    assert isinstance(flat["date"], str)
    assert "none" not in flat


# -- encodings -------------------------------------------------------------------------
def test_latin1_text_is_decoded_not_rejected(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Le café de la gare, où l'on parlait du plan.".encode("latin-1"))

    assert load_one(path)[0].page_content == "Le café de la gare, où l'on parlait du plan."


def test_cp1252_quotes_and_euro_sign_survive(tmp_path):
    path = tmp_path / "cp1252.txt"
    path.write_bytes("He called it \u201cthe plan\u201d \u2013 and it cost 5 \u20ac.".encode("cp1252"))

    assert load_one(path)[0].page_content == "He called it \u201cthe plan\u201d \u2013 and it cost 5 \u20ac."


def test_utf8_bom_is_not_part_of_the_text(tmp_path):
    path = tmp_path / "bom.md"
    path.write_bytes("\ufeff---\ntitle: Kulaks\n---\nDekulakisation began in 1930.".encode("utf-8"))

    docs = load_one(path)

    assert docs[0].metadata["title"] == "Kulaks"
    assert docs[0].page_content == "Dekulakisation began in 1930."


def test_windows_line_endings_are_normalised(tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"First line.\r\n\r\nSecond paragraph.\r\n")

    assert load_one(path)[0].page_content == "First line.\n\nSecond paragraph.\n"


# -- bad input: one clear error naming the file and the reason ------------------------
def test_empty_file_is_an_empty_document_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")

    with pytest.raises(EmptyDocumentError, match=r"^empty\.txt: file is empty"):
        load_one(path)


def test_whitespace_only_file_is_an_empty_document_error(tmp_path):
    path = tmp_path / "blank.md"
    path.write_text("  \n\n\t \n")

    with pytest.raises(EmptyDocumentError, match=r"^blank\.md: "):
        load_one(path)


def test_front_matter_only_markdown_is_an_empty_document_error(tmp_path):
    path = tmp_path / "only-meta.md"
    path.write_text("---\ntitle: Nothing here\n---\n\n")

    with pytest.raises(EmptyDocumentError, match=r"^only-meta\.md: no text could be extracted"):
        load_one(path)


@pytest.mark.parametrize("payload", [
    bytes(range(256)) * 8,
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200),
    b"\x01\x02\x03\x04\x05\x06\x07\x08" * 100 + b"some text",
], ids=["all-bytes", "png", "control-chars"])
def test_binary_file_named_txt_is_a_clean_error(tmp_path, payload):
    path = tmp_path / "image.txt"
    path.write_bytes(payload)

    with pytest.raises(IngestError, match=r"^image\.txt: looks like a binary file"):
        load_one(path)


@pytest.mark.parametrize("payload", [
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage\n",
    os.urandom(2048),
], ids=["garbage-after-header", "random-bytes"])
def test_corrupt_pdf_is_a_clean_error(tmp_path, payload):
    path = tmp_path / "broken.pdf"
    path.write_bytes(payload)

    with pytest.raises(IngestError, match=r"^broken\.pdf: corrupt or unreadable PDF") as info:
        load_one(path)
    assert "\n" not in str(info.value)


def test_truncated_pdf_is_a_clean_error(tmp_path):
    good = make_pdf(tmp_path / "whole.pdf", ["Some text on a page.", "More text."])
    path = tmp_path / "truncated.pdf"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])

    with pytest.raises(IngestError, match=r"^truncated\.pdf: "):
        load_one(path)


def test_pdf_without_text_layer_says_to_run_ocr(tmp_path):
    path = make_pdf(tmp_path / "scan.pdf", ["", ""])

    with pytest.raises(EmptyDocumentError, match=r"^scan\.pdf: PDF has no text layer.*OCR"):
        load_one(path)


def test_corrupt_docx_is_a_clean_error(tmp_path):
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive")

    with pytest.raises(IngestError, match=r"^broken\.docx: corrupt or unreadable Word file"):
        load_one(path)


def test_file_over_the_size_limit_states_both_sizes(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("Five-Year Plan. " * 200)  # 3,200 bytes

    with pytest.raises(IngestError, match=r"^big\.txt: file is 0\.0032 MB, over the 0\.001 MB limit"):
        load_one(path, max_bytes=1000)


def test_unsupported_extension_names_the_supported_ones(tmp_path):
    path = tmp_path / "notes.xyz"
    path.write_text("plain words")

    with pytest.raises(UnsupportedFileError, match=r"^notes\.xyz: unsupported file type '\.xyz'.*\.txt"):
        load_one(path)


def test_missing_file_is_a_clean_error(tmp_path):
    with pytest.raises(IngestError, match=r"^gone\.txt: file disappeared"):
        load_one(tmp_path / "gone.txt")
