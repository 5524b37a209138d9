"""Tables as Markdown: rows of cells -> pipe tables small enough to stay whole in one passage.

A table is emitted as a block set off by blank lines; one too long for a passage is cut between
rows into several tables, each repeating the header, so no piece loses its column names and no
row is ever cut in two.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence

logger = logging.getLogger(__name__)

# Under the chunker's 200-token passages even for tables of numbers (about 2 characters per
# MiniLM token there), so the splitter's paragraph rule keeps each piece whole.
MAX_TABLE_CHARS = 320
# A ruled table of two rows and two columns draws at least this many lines or boxes.
MIN_RULES = 4
_TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$")
_RULE_LINE = re.compile(r"^\s*\|(\s*:?-{3,}:?\s*\|)+\s*$")


def _cell(value: object) -> str:
    text = " ".join(str(value if value is not None else "").split())
    return text.replace("|", "\\|")


def _row(cells: Sequence[str], width: int) -> str:
    padded = list(cells) + [""] * (width - len(cells))
    return "| " + " | ".join(padded) + " |"


def to_markdown(rows: Sequence[Sequence[object]], *, max_chars: int = MAX_TABLE_CHARS) -> str:
    """``rows`` (the first is the header) as one or more Markdown tables joined by blank lines.

    Empty rows are dropped; an empty table gives "".
    """
    cleaned = [[_cell(c) for c in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    width = max(len(row) for row in cleaned)
    header = _row(cleaned[0], width)
    rule = "|" + "---|" * width
    return join_pieces(header, rule, [_row(row, width) for row in cleaned[1:]], max_chars=max_chars)


def join_pieces(header: str, rule: str, body: Sequence[str], *, max_chars: int = MAX_TABLE_CHARS) -> str:
    """Header, rule and body lines as tables of at most ``max_chars`` (one row may exceed it)."""
    pieces: list[list[str]] = []
    size = max_chars  # forces a first piece
    for line in body:
        if size + len(line) + 1 > max_chars and (not pieces or len(pieces[-1]) > 0):
            pieces.append([])
            size = len(header) + len(rule) + 2
        pieces[-1].append(line)
        size += len(line) + 1
    if not pieces:
        pieces = [[]]
    return "\n\n".join("\n".join([header, rule, *lines]) for lines in pieces)


def normalise_markdown_tables(text: str, *, max_chars: int = MAX_TABLE_CHARS) -> str:
    """``text`` with each run of pipe-table lines set off by blank lines, trailing spaces gone,
    and long tables cut between rows (header repeated), as ``to_markdown`` would write them."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not _TABLE_LINE.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        j = i
        while j < len(lines) and _TABLE_LINE.match(lines[j]):
            j += 1
        block = [line.strip() for line in lines[i:j]]
        if len(block) >= 2 and _RULE_LINE.match(block[1]):
            table = join_pieces(block[0], block[1], block[2:], max_chars=max_chars)
        else:
            table = "\n".join(block)
        if out and out[-1].strip():
            out.append("")
        out.append(table)
        if j < len(lines) and lines[j].strip():
            out.append("")
        i = j
    return "\n".join(out)


def ruled_pages(data: bytes, count: int) -> list[int]:
    """Indexes of the first ``count`` pages drawing enough lines or rectangles to hold a ruled table
    (pypdfium2 counts them cheaply; pdfplumber's table finder costs about 0.5 s a page)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    found = []
    document = pdfium.PdfDocument(data)
    try:
        for i in range(min(count, len(document))):
            page = document[i]
            try:
                paths = page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_PATH,), max_depth=2)
                if sum(1 for _ in zip(range(MIN_RULES), paths)) >= MIN_RULES:
                    found.append(i)
            finally:
                page.close()
    finally:
        document.close()
    return found


def with_pdf_tables(data: bytes, texts: list[str], source: str) -> list[str]:
    """Page texts where each page holding ruled tables is rebuilt as text bands and Markdown tables,
    top to bottom (pypdf's own text runs a table's cells together)."""
    import pdfplumber

    if not any(text.strip() for text in texts):
        return texts
    out = list(texts)
    try:
        candidates = [i for i in ruled_pages(data, len(texts)) if texts[i].strip()]
        if not candidates:
            return texts
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for i in candidates:
                page = pdf.pages[i]
                found = sorted(page.find_tables(), key=lambda t: t.bbox[1])
                if not found:
                    continue
                parts: list[str] = []
                top = 0.0
                for table in found:
                    x0, t_top, x1, t_bottom = table.bbox
                    if t_top > top:
                        parts.append(page.crop((0, top, page.width, t_top)).extract_text() or "")
                    parts.append(to_markdown(table.extract()))
                    top = max(top, t_bottom)
                if top < page.height:
                    parts.append(page.crop((0, top, page.width, page.height)).extract_text() or "")
                out[i] = "\n\n".join(part.strip() for part in parts if part.strip())
    except Exception:  # tables are a refinement: a PDF pypdf reads still loads as plain text
        logger.warning("%s: tables could not be read; the page text is kept as extracted", source,
                       exc_info=logger.isEnabledFor(logging.DEBUG))
        return texts
    return out
