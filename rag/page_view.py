"""The cited spot in its original: a PDF page or an image rendered server-side by pypdfium2 and
Pillow with the passage highlighted (boxes from the PDF's text layer, or from OCR of a scan), or a
text passage shown in its surrounding text."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag import ocr
from rag.errors import IngestError
from rag.limits import LoadLimits
from rag.loaders import IMAGE_TYPES, document_text, load

logger = logging.getLogger(__name__)

Box = tuple[float, float, float, float]  # left, top, right, bottom, in the image's pixels
# 108 dpi: a page fits the sources column and stays legible.
VIEW_SCALE = 1.5
PASSAGE_FILL = (253, 230, 138, 110)
QUOTE_FILL = (249, 115, 22, 120)
CONTEXT_CHARS = 600
# Fewest consecutive passage words an OCR match needs, so a stray "the" lights up nothing.
MIN_RUN = 3
# OCR of a page takes seconds: keep the words of the last few pages viewed (by file, version, page).
_WORDS: OrderedDict[tuple[object, ...], list[ocr.Word]] = OrderedDict()
_WORDS_KEPT = 8
_words_lock = threading.Lock()


@dataclass
class PageView:
    """A rendered page (PIL image) with the passage's and the quote's boxes drawn on it."""

    image: Any
    passage_boxes: list[Box] = field(default_factory=list)
    quote_boxes: list[Box] = field(default_factory=list)
    method: str = "text layer"

    @property
    def found(self) -> bool:
        """Whether the passage was located on the page."""
        return bool(self.passage_boxes or self.quote_boxes)


def _alnum(text: str) -> tuple[str, list[int]]:
    """Lower-case letters and digits of ``text`` and, for each, its index in ``text``."""
    kept = [(c.lower(), i) for i, c in enumerate(text) if c.isalnum()]
    return "".join(c for c, _ in kept), [i for _, i in kept]


def _find(haystack: str, needle: str) -> tuple[int, int] | None:
    """Where ``needle`` (or, failing that, its first 80 characters) occurs in ``haystack``."""
    for probe in (needle, needle[:80]):
        if probe and (at := haystack.find(probe)) >= 0:
            return at, at + len(probe)
    return None


def _text_layer_boxes(textpage: Any, page_height: float, scale: float, target: str) -> list[Box]:
    count = textpage.count_chars()
    if count <= 0:
        return []
    flat, index = _alnum(textpage.get_text_range(0, count))
    span = _find(flat, _alnum(target)[0])
    if span is None:
        return []
    first, last = index[span[0]], index[span[1] - 1]
    boxes = []
    for k in range(textpage.count_rects(first, last - first + 1)):
        left, bottom, right, top = textpage.get_rect(k)
        boxes.append((left * scale, (page_height - top) * scale, right * scale, (page_height - bottom) * scale))
    return boxes


def _ocr_boxes(words: list[ocr.Word], target: str, factor: float) -> list[Box]:
    wanted = [w for w in (ocr.normalise_word(t) for t in target.split()) if w]
    seen = [ocr.normalise_word(w.text) for w in words]
    hits = [False] * len(words)
    # Every run of at least MIN_RUN OCR words that appears, in order, in the target.
    joined = " " + " ".join(wanted) + " "
    start = 0
    while start < len(words):
        end = start
        while end < len(words) and seen[end] and f" {' '.join(seen[start:end + 1])} " in joined:
            end += 1
        if end - start >= min(MIN_RUN, len(wanted)):
            hits[start:end] = [True] * (end - start)
            start = end
        else:
            start += 1
    return [tuple(v * factor for v in w.box) for w, hit in zip(words, hits) if hit]  # type: ignore[misc]


def _draw(view: PageView) -> PageView:
    from PIL import Image, ImageDraw

    base = view.image.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for boxes, fill in ((view.passage_boxes, PASSAGE_FILL), (view.quote_boxes, QUOTE_FILL)):
        for left, top, right, bottom in boxes:
            draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=fill)
    view.image = Image.alpha_composite(base, overlay).convert("RGB")
    return view


def render_pdf_page(path: Path, page: int, passage: str, quote: str = "", *,
                    limits: LoadLimits | None = None) -> PageView:
    """Page ``page`` (1-based) of the PDF at ``path``, the passage and quote highlighted.

    A page without a text layer is read with OCR to find the boxes, as at ingest.

    Raises:
        IngestError: the file is not a readable PDF, or has no such page.
        OcrUnavailableError: the page is a scan and tesseract is missing.
    """
    import pypdfium2 as pdfium

    limits = limits or LoadLimits()
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise IngestError(f"{path.name}: cannot open the PDF to show its page ({exc}).") from exc
    try:
        if not 1 <= page <= len(document):
            raise IngestError(f"{path.name} has no page {page}; it may have changed since it was indexed. "
                              "Re-index the folder.")
        pdf_page = document[page - 1]
        width, height = pdf_page.get_size()
        textpage = pdf_page.get_textpage()
        has_text = textpage.count_chars() > 0 and bool(textpage.get_text_range().strip())
        if has_text:
            scale = ocr.render_scale(width, height, max_pixels=limits.max_image_pixels, dpi=int(VIEW_SCALE * 72))
            view = PageView(pdf_page.render(scale=scale).to_pil(),
                            _text_layer_boxes(textpage, height, scale, passage),
                            _text_layer_boxes(textpage, height, scale, quote) if quote else [])
        else:
            scale = ocr.render_scale(width, height, max_pixels=limits.max_image_pixels)
            view = _ocr_view(pdf_page.render(scale=scale, grayscale=True).to_pil(), passage, quote,
                             source=f"{path.name} page {page}", limits=limits, key=(_version(path), page))
        textpage.close()
        pdf_page.close()
    finally:
        document.close()
    return _draw(view)


def render_image(path: Path, passage: str, quote: str = "", *, limits: LoadLimits | None = None) -> PageView:
    """An image source with the passage and quote highlighted from OCR word boxes.

    Raises:
        IngestError: unreadable or over the pixel limit.
        OcrUnavailableError: tesseract is missing.
    """
    from PIL import Image

    limits = limits or LoadLimits()
    with Image.open(path) as image:
        ocr.check_pixels(image.width, image.height, source=path.name, max_pixels=limits.max_image_pixels)
        image.load()
        return _draw(_ocr_view(image.convert("L"), passage, quote, source=path.name, limits=limits,
                               key=(_version(path), None)))


def _version(path: Path) -> tuple[str, int, int]:
    info = path.stat()
    return str(path.resolve()), info.st_mtime_ns, info.st_size


def _ocr_view(image: Any, passage: str, quote: str, *, source: str, limits: LoadLimits,
              key: tuple[object, ...]) -> PageView:
    key = (*key, image.size)
    with _words_lock:
        words = _WORDS.get(key)
    if words is None:
        words = ocr.read_words(image, source=source, timeout=limits.ocr_seconds_per_page)
        with _words_lock:
            _WORDS[key] = words
            while len(_WORDS) > _WORDS_KEPT:
                _WORDS.popitem(last=False)
    # Shown at about VIEW_SCALE of a page: scale the OCR-resolution image and its boxes down.
    factor = min(1.0, 1300 / max(image.width, 1))
    shown = image.resize((round(image.width * factor), round(image.height * factor))) if factor < 1 else image
    return PageView(shown, _ocr_boxes(words, passage, factor), _ocr_boxes(words, quote, factor) if quote else [],
                    method="OCR")


def is_page_source(source: str) -> bool:
    """Whether a source is shown as a page image (PDFs and images) rather than as text."""
    suffix = Path(source).suffix.lower()
    return suffix == ".pdf" or suffix in IMAGE_TYPES


def render_source(path: Path, source: str, page: int | None, passage: str, quote: str = "", *,
                  limits: LoadLimits | None = None) -> PageView:
    """The page image of a PDF or image source (see ``render_pdf_page`` and ``render_image``)."""
    if Path(source).suffix.lower() == ".pdf":
        return render_pdf_page(path, page or 1, passage, quote, limits=limits)
    return render_image(path, passage, quote, limits=limits)


def surrounding_text(path: Path, source: str, start: int, end: int, *, max_bytes: int,
                     limits: LoadLimits | None = None, chars: int = CONTEXT_CHARS) -> tuple[str, str, str]:
    """The text before, of, and after ``[start, end)`` in the document as it was indexed.

    Raises:
        IngestError: the file can no longer be read.
    """
    text = document_text(load(path, source=source, max_bytes=max_bytes, limits=limits))
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    before = text[max(0, start - chars):start]
    after = text[end:end + chars]
    return before, text[start:end], after
