"""Text from images of pages: tesseract (through pytesseract) on PDF pages rendered by pypdfium2
and on .png/.jpg files, with word boxes for highlighting a passage on the page."""

from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from rag.errors import IngestError

logger = logging.getLogger(__name__)

LANGUAGE = "eng"
# Tesseract reads best at about 300 dpi; PDF user space is 72 units per inch.
OCR_DPI = 300
INSTALL_HINT = ("Install tesseract with English data (Debian/Ubuntu: `apt-get install -y tesseract-ocr "
                "tesseract-ocr-eng`; macOS: `brew install tesseract`), or run `bash .ci/install`, then "
                "add the file again.")


class OcrUnavailableError(IngestError):
    """Tesseract (or its English data) is not installed, so a scan or image cannot be read."""


@dataclass(frozen=True)
class Word:
    """One word tesseract found, with its box in the image's pixels (left, top, right, bottom)."""

    text: str
    box: tuple[int, int, int, int]


@functools.lru_cache(maxsize=1)
def _version() -> str:
    import pytesseract

    try:
        version = str(pytesseract.get_tesseract_version())
        languages = pytesseract.get_languages(config="")
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise OcrUnavailableError(f"Tesseract OCR is not installed. {INSTALL_HINT}") from exc
    if LANGUAGE not in languages:
        raise OcrUnavailableError(f"Tesseract {version} has no English data ({LANGUAGE}). {INSTALL_HINT}")
    return version


def require(source: str) -> None:
    """Check tesseract is usable before reading ``source`` with it.

    Raises:
        OcrUnavailableError: tesseract or its English data is missing; the message says how to install.
    """
    try:
        _version()
    except OcrUnavailableError as exc:
        _version.cache_clear()  # installed later: the next file tries again
        raise OcrUnavailableError(f"{source}: needs OCR (its text is an image). {exc}") from exc


def check_pixels(width: int, height: int, *, source: str, max_pixels: int) -> None:
    """Refuse an image over ``max_pixels`` before it is decoded (a decompression bomb, or a poster).

    Raises:
        IngestError: the image is too large.
    """
    if width * height > max_pixels:
        raise IngestError(
            f"{source}: image is {width:,} x {height:,} pixels, over the {max_pixels:,}-pixel limit. "
            "Scale it down, or raise FOOTNOTE_LIMITS__MAX_IMAGE_PIXELS if you trust it.")


def read_text(image: Any, *, source: str, timeout: float) -> str:
    """The text tesseract reads in a PIL ``image`` (lines kept, paragraphs separated by blank lines).

    Raises:
        OcrUnavailableError: tesseract is missing.
        IngestError: tesseract failed or took longer than ``timeout`` seconds.
    """
    import pytesseract

    require(source)
    try:
        text = pytesseract.image_to_string(image, lang=LANGUAGE, timeout=timeout)
    except RuntimeError as exc:  # pytesseract's timeout
        raise IngestError(f"{source}: OCR took over {timeout:g} s on one page (FOOTNOTE_LIMITS__"
                          "OCR_SECONDS_PER_PAGE raises it).") from exc
    except pytesseract.TesseractError as exc:
        raise IngestError(f"{source}: tesseract could not read the image ({exc.message}).") from exc
    return str(text).replace("\f", "").strip()


def read_words(image: Any, *, source: str, timeout: float) -> list[Word]:
    """The words tesseract finds in ``image`` with their pixel boxes, in reading order."""
    import pytesseract

    require(source)
    try:
        data = pytesseract.image_to_data(image, lang=LANGUAGE, timeout=timeout,
                                         output_type=pytesseract.Output.DICT)
    except RuntimeError as exc:  # pytesseract's timeout
        raise IngestError(f"{source}: OCR took over {timeout:g} s on one page (FOOTNOTE_LIMITS__"
                          "OCR_SECONDS_PER_PAGE raises it).") from exc
    except pytesseract.TesseractError as exc:
        raise IngestError(f"{source}: tesseract could not read the image ({exc.message}).") from exc
    words = []
    for text, left, top, width, height in zip(data["text"], data["left"], data["top"], data["width"],
                                              data["height"]):
        if str(text).strip():
            words.append(Word(str(text).strip(), (int(left), int(top), int(left) + int(width),
                                                  int(top) + int(height))))
    return words


def render_scale(width_pt: float, height_pt: float, *, max_pixels: int, dpi: int = OCR_DPI) -> float:
    """pypdfium2 render scale for a page of this size: ``dpi``, lowered to stay under ``max_pixels``."""
    scale = dpi / 72
    pixels = width_pt * scale * height_pt * scale
    if pixels > max_pixels:
        scale = math.sqrt(max_pixels / max(width_pt * height_pt, 1.0))
    return scale


def normalise_word(word: str) -> str:
    """A word reduced to lower-case letters and digits, for matching OCR words to passage text."""
    return re.sub(r"[^0-9a-z]", "", word.lower())


def read_pdf_pages(data: bytes, indexes: list[int], *, source: str, max_pixels: int,
                   timeout: float) -> dict[int, str]:
    """OCR text of the pages at ``indexes`` that carry an image (a page of vector drawings only,
    or a blank one, has nothing to read and is left empty)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    found: dict[int, str] = {}
    document = pdfium.PdfDocument(data)
    try:
        for i in indexes:
            page = document[i]
            try:
                if not any(True for _ in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=2)):
                    continue
                width, height = page.get_size()
                scale = render_scale(width, height, max_pixels=max_pixels)
                image = page.render(scale=scale, grayscale=True).to_pil()
                found[i] = read_text(image, source=f"{source} page {i + 1}", timeout=timeout)
                logger.info("%s: page %d read with OCR (%d characters)", source, i + 1, len(found[i]))
            finally:
                page.close()
    finally:
        document.close()
    return found
