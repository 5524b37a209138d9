"""OCR with the real tesseract: scanned PDFs and images load with pages, offsets and an OCR mark."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.errors import EmptyDocumentError, IngestError
from rag.limits import LoadLimits
from rag.loaders import document_text, load
from tests.helpers import REPO, make_pdf
from tests.scans import make_image, make_scanned_pdf

TURKSIB = ["The Turksib railway linked Turkestan", "and Siberia; it opened in May 1930."]
DNIEPER = ["The Dnieper dam at Zaporozhye", "began producing power in 1932."]


def words(text: str) -> list[str]:
    return text.split()


def test_scanned_pdf_is_read_with_ocr_page_by_page(tmp_path: Path) -> None:
    path = make_scanned_pdf(tmp_path / "scan.pdf", [TURKSIB, DNIEPER])

    docs = load(path, source="scan.pdf", max_bytes=10**8)

    assert [d.metadata["page"] for d in docs] == [1, 2]
    assert "Turksib railway" in docs[0].page_content and "May 1930" in docs[0].page_content
    assert "Dnieper dam" in docs[1].page_content and "1932" in docs[1].page_content
    assert docs[0].metadata["type"] == "pdf (OCR)"
    assert docs[0].metadata["ocr_pages"] == "1; 2"
    full = document_text(docs)
    for doc in docs:
        offset = doc.metadata["offset"]
        assert full[offset:offset + len(doc.page_content)] == doc.page_content


def test_pdf_mixing_text_and_scanned_pages_marks_only_the_scans(tmp_path: Path) -> None:
    text_pdf = make_pdf(tmp_path / "text.pdf", ["A page with a real text layer about Gosplan."])
    scan = make_scanned_pdf(tmp_path / "scan.pdf", [TURKSIB])
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.append(str(text_pdf))
    writer.append(str(scan))
    mixed = tmp_path / "mixed.pdf"
    writer.write(str(mixed))

    docs = load(mixed, source="mixed.pdf", max_bytes=10**8)

    assert "Gosplan" in docs[0].page_content
    assert "Turksib" in docs[1].page_content
    assert docs[0].metadata["ocr_pages"] == "2"


@pytest.mark.parametrize("name", ["note.png", "note.jpg"])
def test_image_of_text_is_read_with_ocr(tmp_path: Path, name: str) -> None:
    path = make_image(tmp_path / name, TURKSIB)

    docs = load(path, source=name, max_bytes=10**8)

    assert len(docs) == 1
    assert "Turkestan" in docs[0].page_content
    assert docs[0].metadata["type"].endswith("(OCR)")


def test_image_over_the_pixel_limit_is_refused_before_ocr(tmp_path: Path) -> None:
    path = make_image(tmp_path / "poster.png", TURKSIB)

    with pytest.raises(IngestError, match=r"^poster\.png: image is 1,700 x 2,200 pixels, over the 1,000,000-pixel"):
        load(path, source="poster.png", max_bytes=10**8, limits=LoadLimits(max_image_pixels=1_000_000))


def test_blank_image_is_an_empty_document(tmp_path: Path) -> None:
    path = make_image(tmp_path / "blank.png", [])

    with pytest.raises(EmptyDocumentError, match="OCR found no text"):
        load(path, source="blank.png", max_bytes=10**8)


def test_missing_tesseract_says_how_to_install_it(tmp_path: Path) -> None:
    scan = make_scanned_pdf(tmp_path / "scan.pdf", [TURKSIB])
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    code = ("import sys; from pathlib import Path; from rag.loaders import load\n"
            "try:\n    load(Path(sys.argv[1]), source='scan.pdf', max_bytes=10**8)\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    result = subprocess.run([sys.executable, "-c", code, str(scan)], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PATH": str(empty_bin)}, timeout=120)

    assert result.stdout.startswith("OcrUnavailableError scan.pdf page 1: needs OCR"), result.stdout + result.stderr
    assert "apt-get install -y tesseract-ocr tesseract-ocr-eng" in result.stdout
