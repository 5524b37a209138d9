"""Test files made on the spot: images of text, scanned PDFs (an image wrapped in a PDF), and
PDF, Word and HTML files holding tables."""

from __future__ import annotations

from pathlib import Path

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def text_image(lines: list[str], *, size: tuple[int, int] = (1700, 2200)) -> object:
    """A white page (PIL image, 200 dpi A4-ish) with ``lines`` of black text, as a scanner gives it."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 40)
    y = 150
    for line in lines:
        draw.text((150, y), line, fill=0, font=font)
        y += 70
    return image


def make_image(path: Path, lines: list[str]) -> Path:
    """A .png or .jpg of ``lines``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text_image(lines).save(path)  # type: ignore[attr-defined]
    return path


def make_scanned_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A PDF without a text layer: each page is an image of its lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [text_image(lines).convert("RGB") for lines in pages]  # type: ignore[attr-defined]
    images[0].save(path, resolution=200, save_all=True, append_images=images[1:])
    return path


def make_table_pdf(path: Path, before: str, rows: list[list[str]], after: str) -> Path:
    """A text PDF: a paragraph, a ruled table of ``rows`` (first row the header), a paragraph."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    path.parent.mkdir(parents=True, exist_ok=True)
    styles = getSampleStyleSheet()
    table = Table(rows)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    template = SimpleDocTemplate(str(path), pagesize=A4, title="Steel output",
                                 author="Commissariat of Heavy Industry")
    template.build(
        [Paragraph(before, styles["Normal"]), table, Paragraph(after, styles["Normal"])])
    return path


def make_table_docx(path: Path, before: str, rows: list[list[str]], after: str) -> Path:
    """A Word file: a paragraph, a table of ``rows``, a paragraph."""
    import docx

    path.parent.mkdir(parents=True, exist_ok=True)
    document = docx.Document()
    document.add_paragraph(before)
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph(after)
    document.save(str(path))
    return path


def table_html(before: str, rows: list[list[str]], after: str) -> str:
    """An HTML article: a paragraph, a table of ``rows`` (header cells first), a paragraph."""
    head = "".join(f"<th>{c}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows[1:])
    return (f"<html><head><title>Tables</title></head><body><article><h1>Tables</h1><p>{before}</p>"
            f"<table><tr>{head}</tr>{body}</table><p>{after}</p></article></body></html>")
