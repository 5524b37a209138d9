"""The page view: real PDFs and images rendered with the cited passage highlighted."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import IngestError
from rag.loaders import load
from rag.page_view import PASSAGE_FILL, QUOTE_FILL, render_source, surrounding_text
from tests.helpers import FIXTURE_CORPUS, make_pdf
from tests.scans import make_image, make_scanned_pdf

FACT = "The Zhdanov tractor plant in Kharkov opened in 1931 and produced 50,000 tractors by 1934."


def highlighted_share(image, box, fill) -> float:
    """Share of pixels in ``box`` tinted by ``fill`` (a highlight over white paper or black ink)."""
    left, top, right, bottom = (int(v) for v in box)
    region = image.crop((left, top, right, bottom)).convert("RGB")
    pixels = list(region.getdata())
    tinted = [p for p in pixels if p[2] < p[0] - 30]  # yellow/orange: much less blue than red
    return len(tinted) / max(len(pixels), 1)


def test_text_pdf_page_highlights_the_passage_where_it_is(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "kharkov.pdf", ["A first page about something else entirely.",
                                               "Some opening words. " + FACT + " Then more text."])
    page_two = load(path, source="kharkov.pdf", max_bytes=10**8)[1].page_content

    view = render_source(path, "kharkov.pdf", 2, page_two, quote=FACT)

    assert view.found and view.method == "text layer"
    assert view.quote_boxes
    assert all(highlighted_share(view.image, box, QUOTE_FILL) > 0.5 for box in view.quote_boxes)
    top_half = [b for b in view.quote_boxes if b[1] < view.image.height / 2]
    assert top_half, "the passage is near the top of the page, where it was drawn"


def test_passage_not_on_the_page_highlights_nothing(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "kharkov.pdf", ["A first page about something else entirely.", FACT])

    view = render_source(path, "kharkov.pdf", 1, FACT, quote=FACT)

    assert not view.found
    assert highlighted_share(view.image, (0, 0, view.image.width, view.image.height), PASSAGE_FILL) == 0


def test_scanned_page_is_highlighted_from_ocr_boxes(tmp_path: Path) -> None:
    path = make_scanned_pdf(tmp_path / "scan.pdf", [["Reading group notes, spring term.",
                                                     "The Turksib railway linked Turkestan and",
                                                     "Siberia and carried its first trains in May 1930."]])
    text = load(path, source="scan.pdf", max_bytes=10**8)[0].page_content

    view = render_source(path, "scan.pdf", 1, text, quote="carried its first trains in May 1930.")

    assert view.method == "OCR"
    assert len(view.quote_boxes) == 7
    lowest_line = max(b[1] for b in view.passage_boxes)
    assert all(b[1] >= lowest_line - 5 for b in view.quote_boxes), "the quote is on the third line"


def test_image_source_is_highlighted_from_ocr_boxes(tmp_path: Path) -> None:
    path = make_image(tmp_path / "note.png", ["The Dnieper dam at Zaporozhye", "began producing power in 1932."])

    view = render_source(path, "note.png", None, "The Dnieper dam at Zaporozhye began producing power in 1932.")

    assert view.method == "OCR" and len(view.passage_boxes) == 10


def test_page_that_no_longer_exists_is_a_clean_error(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "short.pdf", [FACT])

    with pytest.raises(IngestError, match="has no page 3.*Re-index"):
        render_source(path, "short.pdf", 3, FACT)


def test_text_source_passage_comes_with_its_surrounding_text() -> None:
    path = FIXTURE_CORPUS / "zollverein.txt"
    text = path.read_text(encoding="utf-8")
    start = text.index("Zollverein", 200)

    before, passage, after = surrounding_text(path, "zollverein.txt", start, start + 40, max_bytes=10**8, chars=100)

    assert passage == text[start:start + 40] and passage.startswith("Zollverein")
    assert before == text[start - 100:start]
    assert after == text[start + 40:start + 140] and after
