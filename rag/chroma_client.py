"""Chroma access: opening a client (local or server) once per process, reopening it when another
process wrote, and the one table that turns Chroma's exceptions into Footnote's."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from rag import journal
from rag.config import Settings
from rag.errors import IndexNotFoundError, StoreError

logger = logging.getLogger(__name__)


def connect(settings: Settings) -> Any:
    """A Chroma client: HTTP when ``chroma_url`` is set, else persistent under the data folder."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    where = settings.chroma_url or str(settings.chroma_dir)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if url.scheme not in {"http", "https"} or not url.hostname:
            raise StoreError(f"FOOTNOTE_CHROMA_URL {settings.chroma_url!r} is not http(s)://HOST:PORT.")
    hint = " Check that `chroma run` is up or that the data folder is writable."
    with translated(f"open the Chroma store at {where}", where, hint=hint):
        try:
            if settings.chroma_url:
                client = chromadb.HttpClient(host=str(url.hostname), ssl=url.scheme == "https", settings=chroma_settings,
                                             port=url.port or (443 if url.scheme == "https" else 8000))
                client.heartbeat()
                return client
            settings.chroma_dir.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
        except ValueError as exc:  # how Chroma's client constructors report an unreachable server
            raise StoreError(f"Cannot open the Chroma store at {where} ({exc}).{hint}") from exc


def _errors() -> list[tuple[type[BaseException], Callable[[str, str, BaseException], StoreError]]]:
    """Chroma's exceptions (and its transports') and what the user is told for each, first match wins."""
    import httpx
    from chromadb.errors import ChromaError, NotFoundError

    return [
        (NotFoundError, lambda what, where, exc: IndexNotFoundError(
            f"The index at {where} was deleted while in use ({exc}). Run `python ingest.py`.")),
        (httpx.TransportError, lambda what, where, exc: StoreError(
            f"Cannot reach the Chroma server at {where} to {what} ({exc}).")),
        (ChromaError, lambda what, where, exc: StoreError(f"Chroma failed to {what} ({exc}).")),
        (httpx.HTTPError, lambda what, where, exc: StoreError(f"Chroma failed to {what} ({exc}).")),
        (OSError, lambda what, where, exc: StoreError(f"Cannot {what} at {where} ({exc}).")),
    ]


@contextmanager
def translated(what: str, where: str, *, hint: str = "") -> Iterator[None]:
    """Turn the Chroma errors of the block into ``StoreError``s (one table: ``_errors``)."""
    table = _errors()
    try:
        yield
    except tuple(kind for kind, _ in table) as exc:
        if journal.is_disk_full(exc):
            raise journal.disk_full_error(where) from exc
        make = next(m for kind, m in table if isinstance(exc, kind))
        error = make(what, where, exc)
        raise type(error)(f"{error}{hint if type(error) is StoreError else ''}") from exc


class _RWLock:
    """Many readers or one writer, within this process (a reopen waits for searches in flight)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and self._readers == 0)
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class Connection:
    """This process's Chroma client for one store, reopened when another process has written
    (a persistent client keeps its own copy of the vector index and would serve stale ids)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = _RWLock()
        self.stamp = journal.read_stamp(settings.data_dir)
        self.client = connect(settings)
        self.generation = 0

    def refresh(self) -> None:
        """Reopen the client if the index changed since it was opened (a local store only)."""
        if self.settings.chroma_url:
            return
        stamp = journal.read_stamp(self.settings.data_dir)
        if stamp == self.stamp:
            return
        with self.lock.writing():
            if stamp == self.stamp:
                return
            self.client.close()
            self.client = connect(self.settings)
            self.stamp = stamp
            self.generation += 1
            logger.info("reopened the index at %s: another process changed it", self.settings.chroma_dir)


_connections: dict[str, Connection] = {}
_connections_lock = threading.Lock()


def connection(settings: Settings) -> Connection:
    key = settings.chroma_url or str(settings.chroma_dir.resolve())
    with _connections_lock:
        if key not in _connections:
            _connections[key] = Connection(settings)
        return _connections[key]


def close_all() -> None:
    """Close every Chroma client this process opened (at exit, or before deleting a data folder)."""
    with _connections_lock:
        for conn in _connections.values():
            with conn.lock.writing():
                if not conn.settings.chroma_url:
                    conn.client.close()
        _connections.clear()


def get_collection(conn: Connection, name: str, where: str) -> Any | None:
    """The collection called ``name``, or None if there is none."""
    from chromadb.errors import NotFoundError

    try:
        return conn.client.get_collection(name, embedding_function=None)
    except NotFoundError:
        return None
    except tuple(kind for kind, _ in _errors()) as exc:
        with translated(f"open collection {name}", where):
            raise exc
