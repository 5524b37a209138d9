"""Bounds on what one file may cost to read: file size, archive expansion, PDF pages, page text and
image pixels."""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass

from rag.config import LimitsSettings
from rag.errors import IngestError

logger = logging.getLogger(__name__)

MB = 1_000_000
# Deflate cannot beat about 1032:1; real Word XML compresses 10-30:1. An entry this large that
# expands this much is built to expand, not written by a word processor.
MAX_COMPRESSION_RATIO = 500
RATIO_CHECK_BYTES = 10 * MB


@dataclass(frozen=True)
class LoadLimits:
    """What ``loaders.load`` may spend on one file (built from ``Settings.limits``)."""

    max_unzipped_bytes: int = int(LimitsSettings.model_fields["max_unzipped_mb"].default * MB)
    max_archive_entries: int = LimitsSettings.model_fields["max_archive_entries"].default
    max_pdf_pages: int = LimitsSettings.model_fields["max_pdf_pages"].default
    max_page_chars: int = LimitsSettings.model_fields["max_page_chars"].default
    max_image_pixels: int = LimitsSettings.model_fields["max_image_pixels"].default
    ocr_seconds_per_page: float = LimitsSettings.model_fields["ocr_seconds_per_page"].default

    @classmethod
    def from_settings(cls, limits: LimitsSettings) -> LoadLimits:
        """The limits of one ``LimitsSettings`` section."""
        return cls(
            max_unzipped_bytes=int(limits.max_unzipped_mb * MB),
            max_archive_entries=limits.max_archive_entries,
            max_pdf_pages=limits.max_pdf_pages,
            max_page_chars=limits.max_page_chars,
            max_image_pixels=limits.max_image_pixels,
            ocr_seconds_per_page=limits.ocr_seconds_per_page,
        )


def over_limit(size: int, limit: int, unit: str = "MB") -> str:
    """"20.4 MB, over the 20 MB limit": the size shown with enough digits to exceed the limit."""
    scale = MB if unit == "MB" else 1
    shown_limit = f"{limit / scale:g}"
    for digits in range(3, 13):
        shown = f"{size / scale:.{digits}g}"
        if float(shown) > float(shown_limit):
            return f"{shown} {unit}, over the {shown_limit} {unit} limit"
    return f"{size:,} bytes, over the {limit:,}-byte limit"


def check_archive(data: bytes, source: str, limits: LoadLimits, *, kind: str) -> None:
    """Refuse a zip-based file (``.docx``) that would expand too far, before anything unpacks it.

    Only the zip's central directory is read: sizes come from it, and ``zipfile`` refuses to
    produce more bytes than an entry declares, so a lying directory cannot expand further.

    Raises:
        IngestError: not a zip archive, too many entries, too large unpacked, or a bomb-like entry.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise IngestError(
            f"{source}: corrupt or unreadable {kind} (not a valid zip archive: {exc}). "
            "Open it and save it again, or remove it."
        ) from exc
    if len(entries) > limits.max_archive_entries:
        raise IngestError(
            f"{source}: {kind} holds {len(entries):,} archive entries, over the "
            f"{limits.max_archive_entries:,}-entry limit; it is not a normal document. Remove it, "
            "or raise FOOTNOTE_LIMITS__MAX_ARCHIVE_ENTRIES if you trust it."
        )
    total = sum(entry.file_size for entry in entries)
    if total > limits.max_unzipped_bytes:
        raise IngestError(
            f"{source}: {kind} would unpack to {over_limit(total, limits.max_unzipped_bytes)} "
            "for archive contents. Remove it, or raise FOOTNOTE_LIMITS__MAX_UNZIPPED_MB if you trust it."
        )
    for entry in entries:
        if entry.file_size > RATIO_CHECK_BYTES and entry.file_size > MAX_COMPRESSION_RATIO * max(entry.compress_size, 1):
            raise IngestError(
                f"{source}: {kind} entry {entry.filename[:80]!r} expands "
                f"{entry.file_size // max(entry.compress_size, 1):,} times (a zip bomb?). Remove it."
            )


def check_pages(count: int, source: str, limits: LoadLimits) -> None:
    """Refuse a PDF with more pages than ``limits.max_pdf_pages`` (before any text is extracted)."""
    if count > limits.max_pdf_pages:
        raise IngestError(
            f"{source}: PDF has {count:,} pages, over the {limits.max_pdf_pages:,}-page limit. "
            "Split it into smaller files, or raise FOOTNOTE_LIMITS__MAX_PDF_PAGES."
        )


def cut_page(text: str, page: int, source: str, limits: LoadLimits) -> str:
    """A page's text, cut to ``limits.max_page_chars`` (with a log line saying so)."""
    if len(text) <= limits.max_page_chars:
        return text
    logger.warning("%s: page %d has %d characters; kept the first %d (FOOTNOTE_LIMITS__MAX_PAGE_CHARS)",
                   source, page, len(text), limits.max_page_chars)
    return text[: limits.max_page_chars]
