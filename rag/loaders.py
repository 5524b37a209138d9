"""Files -> LangChain Documents with source, title, authors, page and content-hash metadata.

Scanned PDF pages and images are read with OCR (``rag.ocr``); tables become Markdown tables
(``rag.tables``), each a block of its own so the chunker keeps it whole.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from langchain_core.documents import Document

from rag import ocr, tables
from rag.errors import EmptyDocumentError, IngestError, UnsupportedFileError
from rag.limits import LoadLimits, check_archive, check_pages, cut_page, over_limit

logger = logging.getLogger(__name__)

TEXT_TYPES = {".txt": "txt", ".md": "md", ".markdown": "md"}
IMAGE_TYPES = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg"}
SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".html", ".htm", ".docx", *IMAGE_TYPES)
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
# Share of control characters above which a ".txt" is taken to be binary.
BINARY_CONTROL_SHARE = 0.05
# UTF-32 first: its little-endian mark starts with UTF-16's.
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# What a file of each type is called in messages.
KINDS = {".txt": "text file", ".md": "Markdown file", ".markdown": "Markdown file", ".pdf": "PDF",
         ".html": "web page", ".htm": "web page", ".docx": "Word file",
         ".png": "image", ".jpg": "image", ".jpeg": "image"}
# The type a document read with OCR shows in the documents list ("pdf (OCR)", "png (OCR)").
OCR_MARK = " (OCR)"


def is_supported(path: Path) -> bool:
    """Whether Footnote has a loader for ``path``'s extension."""
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def load(path: Path, *, source: str, max_bytes: int, limits: LoadLimits | None = None) -> list[Document]:
    """Read one file into Documents (one per PDF page, one otherwise).

    Every Document carries ``source``, ``title``, ``authors``, ``type``, ``content_hash`` and
    ``offset`` (where its text starts in the whole document's text); PDF pages carry ``page``.

    Raises:
        UnsupportedFileError: unknown extension.
        EmptyDocumentError: no extractable text.
        IngestError: unreadable, too large, binary, corrupt, or over one of ``limits``; any
            failure of a parser ends as an ``IngestError`` whose ``__cause__`` is the original.
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFileError(
            f"{source}: unsupported file type {suffix or '(none)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}."
        )
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise IngestError(f"{source}: not a regular file (a device, pipe or folder); remove it.")
        if info.st_size > max_bytes:
            raise IngestError(f"{source}: file is {over_limit(info.st_size, max_bytes)} "
                              "(FOOTNOTE_MAX_FILE_MB raises it).")
        with path.open("rb") as handle:
            data = handle.read(info.st_size + 1)  # one byte more shows a file still growing
        if len(data) > info.st_size:
            raise IngestError(f"{source}: file grew while it was read; try again once it is written.")
    except FileNotFoundError as exc:
        raise IngestError(f"{source}: file disappeared before it could be read.") from exc
    except OSError as exc:
        raise IngestError(f"{source}: cannot read file ({exc.strerror or exc}).") from exc
    return load_bytes(data, source=source, suffix=suffix, limits=limits or LoadLimits())


def load_bytes(data: bytes, *, source: str, suffix: str, limits: LoadLimits) -> list[Document]:
    """``load`` after the file is read: parse ``data`` as a ``suffix`` file into Documents.

    Raises:
        IngestError: as ``load``; never any other exception type (a parser's own error is the
            ``__cause__``, and its traceback is logged at DEBUG).
    """
    try:
        return _documents(data, source, suffix, limits)
    except IngestError:
        raise
    except Exception as exc:  # a hostile file must not stop the other files of a sync
        logger.debug("%s: reader failed", source, exc_info=True)
        raise IngestError(
            f"{source}: corrupt or unreadable {KINDS.get(suffix, 'file')} ({brief(exc)}). "
            "Open it and save it again, or remove it."
        ) from exc


def brief(exc: BaseException) -> str:
    """One short line naming an exception: ``XMLSyntaxError: Premature end of data...``."""
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _documents(data: bytes, source: str, suffix: str, limits: LoadLimits) -> list[Document]:
    if suffix not in READERS:
        raise UnsupportedFileError(
            f"{source}: unsupported file type {suffix or '(none)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}."
        )
    if not data.strip():
        raise EmptyDocumentError(f"{source}: file is empty.")
    segments, meta = READERS[suffix](data, source, limits)
    segments = [(page, _normalise(text)) for page, text in segments]
    if not any(text.strip() for _, text in segments):
        raise EmptyDocumentError(f"{source}: no text could be extracted.")
    full_text = "\n\n".join(text for _, text in segments)
    meta = flatten({
        "source": source,
        "title": meta.get("title") or _title_from(full_text, Path(source)),
        "authors": meta.get("authors", ""),
        "type": meta["type"],
        "content_hash": hashlib.sha256(full_text.encode()).hexdigest(),
        **{k: v for k, v in meta.items() if k not in {"title", "authors", "type"}},
    })
    docs = []
    offset = 0
    for page, text in segments:
        doc_meta = dict(meta, offset=offset)
        if page is not None:
            doc_meta["page"] = page
        docs.append(Document(page_content=text, metadata=doc_meta))
        offset += len(text) + 2
    return docs


def document_text(docs: list[Document]) -> str:
    """The whole document's text that chunk offsets index (segments joined as ``load`` does)."""
    return "\n\n".join(doc.page_content for doc in docs)


def flatten(meta: dict[str, Any]) -> dict[str, str | int | float | bool]:
    """Chroma accepts only str, int, float and bool values: join lists, stringify the rest."""
    flat: dict[str, str | int | float | bool] = {}
    for key, value in meta.items():
        if value is None:
            continue
        if isinstance(value, (str, bool, int, float)):
            flat[key] = value
        elif isinstance(value, (list, tuple, set)):
            flat[key] = "; ".join(str(v) for v in value)
        else:
            flat[key] = str(value)
    return flat


def decode_text(data: bytes, source: str) -> str:
    """Bytes -> str: UTF-16/32 by their BOM, UTF-8 (with or without BOM), else cp1252, else
    Latin-1; binary is an error."""
    boms = [encoding for bom, encoding in BOMS if data.startswith(bom)]
    for encoding in boms:
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        if boms:
            raise IngestError(f"{source}: starts with a {boms[-1].upper()} byte-order mark but is not "
                              f"valid {boms[-1].upper()} text. Save it again as UTF-8.")
        if b"\x00" in data[:8192]:
            raise IngestError(f"{source}: looks like a binary file, not text (NUL bytes).")
        for encoding in ("utf-8-sig", "cp1252", "latin-1"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    controls = sum(1 for ch in text[:20000] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > BINARY_CONTROL_SHARE * min(len(text), 20000):
        raise IngestError(f"{source}: looks like a binary file, not text.")
    if encoding != "utf-8-sig":
        logger.info("%s decoded as %s", source, encoding)
    return text


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """YAML front matter (``---`` block at the top) and the body after it."""
    match = FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        return {}, text
    if not isinstance(meta, dict):
        return {}, text
    return meta, text[match.end():]


def authors_from(meta: dict[str, Any]) -> str:
    """One readable authors string from front-matter keys (authors/author, asker, answerer)."""
    names: list[str] = []
    for key in ("authors", "author"):
        value = meta.get(key)
        if isinstance(value, (list, tuple)):
            names.extend(str(v) for v in value)
        elif value:
            names.append(str(value))
    for role in ("asker", "answerer"):
        if meta.get(role):
            names.append(f"{meta[role]} ({role})")
    return "; ".join(names)


def _read_text(data: bytes, source: str, limits: LoadLimits) -> tuple[list[tuple[int | None, str]], dict[str, Any]]:
    text = decode_text(data, source)
    front, body = split_front_matter(text.replace("\r\n", "\n"))
    meta = {k: v for k, v in front.items() if k not in {"authors", "author", "source", "offset"}}
    meta["authors"] = authors_from(front)
    if "date" in meta:
        meta["date"] = str(meta["date"])
    meta["type"] = "url" if front.get("url") else TEXT_TYPES.get(Path(source).suffix.lower(), "txt")
    return [(None, body)], meta


def _read_pdf(data: bytes, source: str, limits: LoadLimits) -> tuple[list[tuple[int | None, str]], dict[str, Any]]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise IngestError(f"{source}: PDF is password-protected; save an unprotected copy and add that.")
    check_pages(len(reader.pages), source, limits)
    texts = [page.extract_text() or "" for page in reader.pages]
    texts = tables.with_pdf_tables(data, texts, source)
    blank = [i for i, text in enumerate(texts) if not text.strip()]
    scanned = (ocr.read_pdf_pages(data, blank, source=source, max_pixels=limits.max_image_pixels,
                                  timeout=limits.ocr_seconds_per_page) if blank else {})
    texts = [scanned.get(i, text) for i, text in enumerate(texts)]
    pages = [(i + 1, cut_page(text, i + 1, source, limits)) for i, text in enumerate(texts)]
    info: Any = reader.metadata or {}
    if not any(text.strip() for _, text in pages):
        raise EmptyDocumentError(
            f"{source}: PDF has no text layer (a scan?); run OCR on it first, e.g. ocrmypdf."
            if not scanned else f"{source}: OCR found no text on its scanned pages."
        )
    meta: dict[str, Any] = {"type": "pdf" + (OCR_MARK if scanned else ""), "pages": len(pages)}
    if scanned:
        meta["ocr_pages"] = [i + 1 for i in sorted(scanned)]
    title = getattr(info, "title", None) or (info.get("/Title") if hasattr(info, "get") else None)
    author = getattr(info, "author", None) or (info.get("/Author") if hasattr(info, "get") else None)
    if title:
        meta["title"] = str(title)
    if author:
        meta["authors"] = str(author)
    return list(pages), meta


def _read_image(data: bytes, source: str, limits: LoadLimits) -> tuple[list[tuple[int | None, str]], dict[str, Any]]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        ocr.check_pixels(image.width, image.height, source=source, max_pixels=limits.max_image_pixels)
        image.load()
        text = ocr.read_text(image.convert("L"), source=source, timeout=limits.ocr_seconds_per_page)
    if not text.strip():
        raise EmptyDocumentError(f"{source}: OCR found no text in the image.")
    suffix = Path(source).suffix.lower()
    return [(None, text)], {"type": IMAGE_TYPES.get(suffix, "image") + OCR_MARK}


def html_to_text(html: str) -> tuple[str, str]:
    """Main text (no navigation, scripts or boilerplate) and title of an HTML page."""
    import trafilatura
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    # trafilatura with favor_recall keeps <nav>/<footer> text on short pages: drop them first.
    for tag in soup(["script", "style", "nav", "aside", "noscript", "form"]):
        tag.decompose()
    for tag in soup(["header", "footer"]):
        if not tag.find_parent(["article", "main"]):
            tag.decompose()
    text = trafilatura.extract(
        str(soup), include_comments=False, include_tables=True, favor_recall=True, deduplicate=False
    ) or ""
    if not text.strip():
        body = soup.body or soup
        text = "\n\n".join(
            line for line in (p.strip() for p in body.get_text("\n").split("\n")) if line
        )
    if not title:
        h1 = soup.find("h1")
        title = h1.get_text(" ", strip=True) if h1 else ""
    return text, title


def _read_html(data: bytes, source: str, limits: LoadLimits) -> tuple[list[tuple[int | None, str]], dict[str, Any]]:
    text, title = html_to_text(decode_text(data, source))
    return [(None, tables.normalise_markdown_tables(text))], {"title": title, "type": "html"}


def _read_docx(data: bytes, source: str, limits: LoadLimits) -> tuple[list[tuple[int | None, str]], dict[str, Any]]:
    import docx

    check_archive(data, source, limits, kind="Word file")
    document = docx.Document(io.BytesIO(data))
    # Paragraphs and tables in document order, each table one Markdown block.
    paragraphs: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, docx.table.Table):
            paragraphs.append(tables.to_markdown([[cell.text for cell in row.cells] for row in block.rows]))
        elif block.text.strip():
            paragraphs.append(block.text)
    paragraphs = [p for p in paragraphs if p.strip()]
    props = document.core_properties
    return [(None, "\n\n".join(paragraphs))], {
        "title": props.title or "", "authors": props.author or "", "type": "docx",
    }


def _normalise(text: str) -> str:
    # Lone surrogates (from some PDFs) cannot be encoded for hashing or storage.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _title_from(text: str, path: Path) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return path.stem


Reader = Callable[[bytes, str, LoadLimits], tuple[list[tuple[int | None, str]], dict[str, Any]]]
READERS: dict[str, Reader] = {
    ".txt": _read_text, ".md": _read_text, ".markdown": _read_text,
    ".pdf": _read_pdf, ".html": _read_html, ".htm": _read_html, ".docx": _read_docx,
    **{suffix: _read_image for suffix in IMAGE_TYPES},
}
