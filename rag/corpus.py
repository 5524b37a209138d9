"""The corpus folder: listing sources, copying files in under safe names, saving fetched web pages."""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

import yaml

from rag.errors import IngestError, UnsupportedFileError
from rag.fetch import fetch
from rag.loaders import SUPPORTED_SUFFIXES, decode_text, html_to_text

logger = logging.getLogger(__name__)

UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
MAX_NAME = 120
WEB_FOLDER = "web"
TEXT_CONTENT_TYPES = {"text/html": ".html", "application/xhtml+xml": ".html", "text/plain": ".txt",
                      "text/markdown": ".md", "application/pdf": ".pdf"}


def scan(corpus_dir: Path) -> list[Path]:
    """Every file under ``corpus_dir`` that is not hidden, sorted."""
    if not corpus_dir.is_dir():
        raise IngestError(f"Corpus folder {corpus_dir} does not exist. Create it or pass --corpus DIR.")
    return sorted(
        p for p in corpus_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(corpus_dir).parts)
    )


def source_of(path: Path, corpus_dir: Path) -> str:
    """A file's source name: its path relative to the corpus folder, with forward slashes."""
    return path.resolve().relative_to(corpus_dir.resolve()).as_posix()


def safe_filename(name: str) -> str:
    """A file name that cannot leave the corpus folder: no separators, controls or leading dots.

    Spaces, quotes that are legal on every platform, and non-ASCII letters are kept.
    """
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = UNSAFE_CHARS.sub("_", name).strip().lstrip(".").strip()
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = stem[: MAX_NAME].strip() or "document"
    return f"{stem}.{suffix.lower()}" if suffix else stem


def copy_in(path: Path, corpus_dir: Path, *, name: str | None = None, max_bytes: int) -> Path:
    """Copy a file into the corpus under a safe, unused name; return where it landed.

    A file with identical bytes already at that name is reused rather than duplicated.
    """
    filename = safe_filename(name or path.name)
    if not filename.lower().endswith(SUPPORTED_SUFFIXES):
        raise UnsupportedFileError(
            f"{filename}: unsupported file type; supported: {', '.join(SUPPORTED_SUFFIXES)}."
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IngestError(f"{filename}: cannot read file ({exc.strerror or exc}).") from exc
    if size > max_bytes:
        raise IngestError(
            f"{filename}: file is {size / 1e6:.3g} MB, over the {max_bytes / 1e6:g} MB limit "
            "(FOOTNOTE_MAX_FILE_MB raises it)."
        )
    corpus_dir.mkdir(parents=True, exist_ok=True)
    target = _unused(corpus_dir / filename, file_hash(path))
    if not target.exists():
        tmp = target.with_name(f".{target.name}.part")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
    return target


def fetch_url(url: str, corpus_dir: Path, *, timeout: float, max_bytes: int, allow_private: bool = False,
              allowed_networks: Sequence[str] = ()) -> Path:
    """Fetch a web page once (through ``rag.fetch``) and save it into ``corpus_dir/web`` with its
    URL and fetch date.

    HTML is reduced to its main text and saved as Markdown with front matter; plain text and
    PDF are saved as they are. ``allow_private`` and ``allowed_networks`` are ``rag.fetch.fetch``'s.

    Raises:
        IngestError: the URL is invalid, refused or unreachable, not 200, too large, or not text.
    """
    response = fetch(url, timeout=timeout, max_bytes=max_bytes, allow_private=allow_private,
                     allowed_networks=allowed_networks)
    if response.status != 200:
        raise IngestError(f"{url}: server answered HTTP {response.status}, not 200.")
    suffix = TEXT_CONTENT_TYPES.get(response.content_type)
    if suffix is None:
        raise IngestError(
            f"{url}: content type {response.content_type or 'unknown'!r} is not a web page, text or PDF."
        )
    body = response.body
    parsed = urlparse(url)
    fetched = datetime.now(timezone.utc).isoformat(timespec="seconds")
    slug = _slug((parsed.hostname or "") + parsed.path) or "page"
    folder = corpus_dir / WEB_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    if suffix == ".pdf":
        target = folder / f"{slug}.pdf"
        target.write_bytes(bytes(body))
        return target
    text = decode_text(bytes(body), url)
    title = ""
    if suffix == ".html":
        text, title = html_to_text(text)
    if not text.strip():
        raise IngestError(f"{url}: the page has no readable text.")
    front = {"title": title or url, "url": url, "fetched": fetched}
    content = "---\n" + yaml.safe_dump(front, allow_unicode=True, sort_keys=False) + "---\n" + text.strip() + "\n"
    target = folder / f"{slug}.md"
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_text(content, encoding="utf-8")
    tmp.replace(target)
    return target


def _slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:80]


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unused(target: Path, content_hash: str) -> Path:
    candidate, n = target, 1
    while candidate.exists():
        if file_hash(candidate) == content_hash:
            return candidate
        n += 1
        candidate = target.with_name(f"{target.stem} ({n}){target.suffix}")
    return candidate


