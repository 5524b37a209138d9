"""Files -> LangChain Documents with source, title, authors, page and content-hash metadata."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from langchain_core.documents import Document

from rag.errors import EmptyDocumentError, IngestError, UnsupportedFileError

logger = logging.getLogger(__name__)

TEXT_TYPES = {".txt": "txt", ".md": "md", ".markdown": "md"}
SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".html", ".htm", ".docx")
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
# Share of control characters above which a ".txt" is taken to be binary.
BINARY_CONTROL_SHARE = 0.05


def is_supported(path: Path) -> bool:
    """Whether Footnote has a loader for ``path``'s extension."""
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def load(path: Path, *, source: str, max_bytes: int) -> list[Document]:
    """Read one file into Documents (one per PDF page, one otherwise).

    Every Document carries ``source``, ``title``, ``authors``, ``type``, ``content_hash`` and
    ``offset`` (where its text starts in the whole document's text); PDF pages carry ``page``.

    Raises:
        UnsupportedFileError: unknown extension.
        EmptyDocumentError: no extractable text.
        IngestError: unreadable, too large, binary or corrupt.
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFileError(
            f"{source}: unsupported file type {suffix or '(none)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}."
        )
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise IngestError(
                f"{source}: file is {size / 1e6:.3g} MB, over the {max_bytes / 1e6:g} MB limit "
                "(FOOTNOTE_MAX_FILE_MB raises it)."
            )
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise IngestError(f"{source}: file disappeared before it could be read.") from exc
    except OSError as exc:
        raise IngestError(f"{source}: cannot read file ({exc.strerror or exc}).") from exc
    if not data.strip():
        raise EmptyDocumentError(f"{source}: file is empty.")
    reader = READERS[suffix]
    segments, meta = reader(data, source)
    segments = [(page, _normalise(text)) for page, text in segments]
    if not any(text.strip() for _, text in segments):
        raise EmptyDocumentError(f"{source}: no text could be extracted.")
    full_text = "\n\n".join(text for _, text in segments)
    meta = flatten({
        "source": source,
        "title": meta.get("title") or _title_from(full_text, path),
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
    """Bytes -> str: UTF-8 (with or without BOM), else cp1252, else Latin-1; binary is an error."""
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


def _read_text(data: bytes, source: str) -> tuple[list[tuple[int | None, str]], dict[str, Any]]:
    text = decode_text(data, source)
    front, body = split_front_matter(text.replace("\r\n", "\n"))
    meta = {k: v for k, v in front.items() if k not in {"authors", "author", "source", "offset"}}
    meta["authors"] = authors_from(front)
    if "date" in meta:
        meta["date"] = str(meta["date"])
    meta["type"] = "url" if front.get("url") else TEXT_TYPES.get(Path(source).suffix.lower(), "txt")
    return [(None, body)], meta


def _read_pdf(data: bytes, source: str) -> tuple[list[tuple[int | None, str]], dict[str, Any]]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [(i + 1, page.extract_text() or "") for i, page in enumerate(reader.pages)]
        info: Any = reader.metadata or {}
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise IngestError(f"{source}: corrupt or unreadable PDF ({exc}).") from exc
    if not any(text.strip() for _, text in pages):
        raise EmptyDocumentError(
            f"{source}: PDF has no text layer (a scan?); run OCR on it first, e.g. ocrmypdf."
        )
    meta: dict[str, Any] = {"type": "pdf", "pages": len(pages)}
    title = getattr(info, "title", None) or (info.get("/Title") if hasattr(info, "get") else None)
    author = getattr(info, "author", None) or (info.get("/Author") if hasattr(info, "get") else None)
    if title:
        meta["title"] = str(title)
    if author:
        meta["authors"] = str(author)
    return list(pages), meta


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


def _read_html(data: bytes, source: str) -> tuple[list[tuple[int | None, str]], dict[str, Any]]:
    text, title = html_to_text(decode_text(data, source))
    return [(None, text)], {"title": title, "type": "html"}


def _read_docx(data: bytes, source: str) -> tuple[list[tuple[int | None, str]], dict[str, Any]]:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IngestError(f"{source}: corrupt or unreadable Word file ({exc}).") from exc
    paragraphs = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            paragraphs.append(" | ".join(cell.text.strip() for cell in row.cells))
    props = document.core_properties
    return [(None, "\n\n".join(paragraphs))], {
        "title": props.title or "", "authors": props.author or "", "type": "docx",
    }


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _title_from(text: str, path: Path) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return path.stem


Reader = Callable[[bytes, str], tuple[list[tuple[int | None, str]], dict[str, Any]]]
READERS: dict[str, Reader] = {
    ".txt": _read_text, ".md": _read_text, ".markdown": _read_text,
    ".pdf": _read_pdf, ".html": _read_html, ".htm": _read_html, ".docx": _read_docx,
}
