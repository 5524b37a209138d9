"""The corpus folder: listing sources, copying files in under safe names, saving fetched web pages."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

import yaml

from rag.errors import IngestError, InputError, UnsupportedFileError
from rag.fetch import fetch
from rag.limits import over_limit
from rag.loaders import SUPPORTED_SUFFIXES, decode_text, html_to_text

logger = logging.getLogger(__name__)

UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
MAX_NAME = 120
# File systems cap a name at 255 bytes, not characters: 120 emoji are 480 bytes.
MAX_NAME_BYTES = 200
WEB_FOLDER = "web"
# Files directly in the corpus folder (and fetched pages in its web/ folder) belong to this collection.
MAIN_COLLECTION = "main"
MAX_COLLECTION_NAME = 64
TEXT_CONTENT_TYPES = {"text/html": ".html", "application/xhtml+xml": ".html", "text/plain": ".txt",
                      "text/markdown": ".md", "application/pdf": ".pdf"}


def scan(corpus_dir: Path) -> list[Path]:
    """Every file under ``corpus_dir`` that is not hidden, sorted (links to files included, links
    to folders not followed)."""
    if not corpus_dir.is_dir():
        raise IngestError(f"Corpus folder {corpus_dir} does not exist. Create it or pass --corpus DIR.")
    found: list[Path] = []
    folders = [corpus_dir]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except PermissionError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                folders.append(folder / entry.name)
            elif entry.is_file():
                found.append(folder / entry.name)
    return sorted(found)


class Places:
    """Corpus paths resolved for one pass over the folder: the corpus folder and each sub-folder
    are resolved once, not again for every file (seconds for 20,000 files)."""

    def __init__(self, corpus_dir: Path) -> None:
        self.corpus_dir = corpus_dir
        self.root = corpus_dir.resolve()
        self._folders: dict[Path, Path] = {}

    def resolve(self, path: Path, *, follow: bool = True) -> Path:
        """``path.resolve()``; with ``follow=False`` a link's own place, not its target's."""
        if path.name in {"", ".", ".."}:
            return path.resolve()
        if follow and path.is_symlink():
            return path.resolve()
        folder = self._folders.get(path.parent)
        if folder is None:
            folder = self._folders[path.parent] = path.parent.resolve()
        return folder / path.name


def source_of(path: Path, corpus_dir: Path, *, places: Places | None = None) -> str:
    """A file's source name: its path relative to the corpus folder, with forward slashes.

    A symbolic link is named by where it sits, not where it points (``check_inside`` decides
    whether it may be read).

    Raises:
        ValueError: ``path`` is not inside ``corpus_dir``.
    """
    places = places or Places(corpus_dir)
    return places.resolve(path, follow=False).relative_to(places.root).as_posix()


def collection_of(source: str) -> str:
    """The collection a source belongs to: the corpus sub-folder it sits in, else ``main``.

    Every collection keeps fetched web pages in its own ``web/`` folder, so the top-level
    ``web/`` folder is the main collection's.
    """
    folder, slash, _ = source.partition("/")
    return folder if slash and folder != WEB_FOLDER else MAIN_COLLECTION


def collection_folder(name: str, corpus_dir: Path) -> Path:
    """Where a collection's files live: a folder of that name under the corpus (``main``: the corpus).

    Raises:
        InputError: the name could not be a folder name, or is ``web`` (reserved for fetched pages).
    """
    name = check_collection(name)
    return corpus_dir if name == MAIN_COLLECTION else corpus_dir / name


def check_collection(name: str) -> str:
    """``name`` stripped, once it is a usable collection name (it becomes a folder name).

    Raises:
        InputError: empty, too long, a reserved name, or holding characters a folder name cannot.
    """
    name = unicodedata.normalize("NFC", (name or "").strip())
    if not name:
        raise InputError("The collection name is empty. Name it, e.g. --collection papers.")
    if name == WEB_FOLDER:
        raise InputError(f"'{WEB_FOLDER}' is reserved for fetched web pages; choose another collection name.")
    if UNSAFE_CHARS.search(name) or name.startswith(".") or len(name) > MAX_COLLECTION_NAME:
        raise InputError(
            f"{name[:80]!r} cannot be a collection name: use up to {MAX_COLLECTION_NAME} "
            "letters, digits, spaces, dashes or underscores, not starting with a dot, and no / \\ : * ? \" < > |.")
    return name


def check_inside(path: Path, corpus_dir: Path, *, source: str, places: Places | None = None) -> None:
    """Refuse a corpus file that resolves outside the corpus (a symbolic link out of it), or
    whose name is not UTF-8 (it could not be stored or cited).

    Raises:
        IngestError: the file must not be read.
    """
    if not storable(source):
        raise IngestError(f"{ascii(source)[1:-1]}: the file name is not valid UTF-8, so it cannot be "
                          "stored or cited. Rename the file.")
    places = places or Places(corpus_dir)
    try:
        inside = places.resolve(path).is_relative_to(places.root)
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise IngestError(f"{source}: cannot resolve the file ({exc}). Remove it.") from exc
    if not inside:
        raise IngestError(
            f"{source}: is a symbolic link to a file outside the corpus folder, which Footnote never "
            "follows. Copy the file into the corpus instead, or remove the link."
        )


def storable(source: str) -> bool:
    """Whether a source name can be written as UTF-8 (a Linux file name need not be)."""
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def delete(source: str, corpus_dir: Path) -> None:
    """Delete a source's file from the corpus (a symbolic link itself, never its target).

    Raises:
        IngestError: ``source`` is not a corpus path, or the file cannot be deleted.
    """
    if Path(source).is_absolute() or ".." in Path(source).parts:
        raise IngestError(f"{source}: not a corpus path; nothing was deleted.")
    try:
        (corpus_dir / source).unlink(missing_ok=True)
    except OSError as exc:
        raise IngestError(f"{source}: cannot delete the file ({exc.strerror or exc}). "
                          "Check the corpus folder's permissions.") from exc
    for folder in Path(source).parents[:-1]:  # a collection's folder goes with its last document
        try:
            (corpus_dir / folder).rmdir()
        except OSError:
            break  # not empty (or not ours to remove): leave it and every folder above it


def safe_filename(name: str) -> str:
    """A file name that cannot leave the corpus folder: no separators, controls or leading dots.

    Spaces, quotes that are legal on every platform, and non-ASCII letters are kept.
    """
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = UNSAFE_CHARS.sub("_", name).strip().lstrip(".").strip()
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = _cut_utf8(stem[: MAX_NAME], MAX_NAME_BYTES).strip() or "document"
    suffix = _cut_utf8(suffix.lower(), MAX_NAME_BYTES // 4)
    return f"{stem}.{suffix}" if suffix else stem


def _cut_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, on a character boundary."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


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
        raise IngestError(f"{filename}: file is {over_limit(size, max_bytes)} (FOOTNOTE_MAX_FILE_MB raises it).")
    corpus_dir.mkdir(parents=True, exist_ok=True)
    target = _unused(corpus_dir / filename, file_hash(path))
    if not target.exists():
        tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            shutil.copyfile(path, tmp)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def fetch_url(url: str, corpus_dir: Path, *, timeout: float, max_bytes: int, allow_private: bool = False,
              allowed_networks: Sequence[str] = ()) -> Path:
    """Fetch a web page once (through ``rag.fetch``) and save it into ``corpus_dir/web`` (a
    collection's folder in place of ``corpus_dir`` keeps it in that collection) with its URL and
    fetch date.

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
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
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


