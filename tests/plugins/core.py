"""Fixtures: core (environment isolation, settings, the embedding model, Chroma server, loopback HTTP)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from rag.cli import prepare_process

# A test session is an entry point: the process setup the CLI does (models offline, no telemetry)
# happens before the libraries below are imported.
prepare_process()

from rag.config import BUNDLED_MODEL, Settings, build_settings, default_models_dir  # noqa: E402
from rag.embeddings import Embedder, get_embedder  # noqa: E402
from tests.helpers import KEPT_VARIABLE, SEED, copy_fixture_corpus, free_port, stop  # noqa: E402

# One folder of exported models for the whole session, its subprocesses included (tests.helpers
# passes this variable on): the user's cache unless FOOTNOTE_MODELS_DIR says otherwise, so the
# onnx-int8 export happens once, not once per test's data folder.
SUITE_MODELS_DIR = Path(os.environ.get(KEPT_VARIABLE) or default_models_dir())
os.environ[KEPT_VARIABLE] = str(SUITE_MODELS_DIR)

DEFAULTS = Settings.model_fields
ARTICLE_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>The Stakhanovite movement</title>
<script>var beaconId = "script-noise-ocelot";</script></head>
<body>
<nav><a href="/">Front page of the Loopback Gazette</a> <a href="/archive">Archive</a></nav>
<article>
<h1>The Stakhanovite movement</h1>
<p>On 31 August 1935 the miner Alexei Stakhanov cut 102 tonnes of coal in a single shift at the
Tsentralnaya-Irmino mine in the Donbas, fourteen times his quota.</p>
<p>The Soviet press made him a hero, and a movement named after him urged workers in every
industry to beat their norms; managers in turn raised the norms for everyone.</p>
</article>
<footer>Loopback Gazette footer: all rights reserved, cookie settings.</footer>
</body></html>
"""


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No FOOTNOTE_* variable of the developer's shell leaks in; data goes under tmp_path, exported
    models into the session's one folder."""
    for name in list(os.environ):
        if name.startswith("FOOTNOTE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(KEPT_VARIABLE, str(SUITE_MODELS_DIR))
    monkeypatch.setenv("FOOTNOTE_DATA_DIR", str(tmp_path / "data"))
    # The bundled LLM is opted into by the tests about it (tests/test_local_model.py): the rest
    # test retrieval, citations and the app with the fast, deterministic extractive path.
    monkeypatch.setenv("FOOTNOTE_ANSWER__BACKEND", "extractive")
    monkeypatch.setenv("FOOTNOTE_LOCAL__JUDGE", "off")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings over an empty corpus folder and a data folder under tmp_path."""
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    return build_settings(corpus_dir=corpus_dir, data_dir=tmp_path / "data")


@pytest.fixture
def fixture_corpus(settings: Settings) -> list[Path]:
    """tests/fixtures/corpus copied into the settings' corpus folder."""
    return copy_fixture_corpus(settings.corpus_dir)


@pytest.fixture
def seeded(settings: Settings, embedder: Embedder) -> Settings:
    """Settings whose corpus holds the seed document, already indexed."""
    from rag.indexer import Indexer

    shutil.copy(SEED, settings.corpus_dir / SEED.name)
    Indexer(settings, embedder=embedder).sync()
    return settings


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real bundled all-MiniLM-L6-v2 on the default backend (onnx-int8), loaded once per session.

    Called with the Indexer's own arguments (model, default batch size, backend, models folder) so
    that code building its own ``Indexer`` in this process (``rag.cli.ingest_main``) finds the
    model already loaded.
    """
    return get_embedder(BUNDLED_MODEL, DEFAULTS["embedding_batch_size"].default,
                        backend=DEFAULTS["embedding_backend"].default, cache_dir=SUITE_MODELS_DIR)


@pytest.fixture(scope="session")
def torch_embedder() -> Embedder:
    """The same model run by sentence-transformers (FOOTNOTE_EMBEDDING_BACKEND=torch), loaded once."""
    return get_embedder(BUNDLED_MODEL, DEFAULTS["embedding_batch_size"].default, backend="torch")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` server on a free loopback port; yields its URL."""
    folder = tmp_path_factory.mktemp("chroma-server")
    exe = Path(sys.executable).with_name("chroma")
    command = str(exe) if exe.exists() else (shutil.which("chroma") or "chroma")
    port = free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [command, "run", "--path", str(folder / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, ANONYMIZED_TELEMETRY="False"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"chroma run exited with {process.returncode}: "
                            f"{(folder / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chroma run did not answer its heartbeat within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        stop(process)
        log.close()


@pytest.fixture
def empty_chroma_server(chroma_server: str) -> str:
    """The session's Chroma server with every collection deleted first; yields its URL."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    port = int(chroma_server.rsplit(":", 1)[1])
    client = chromadb.HttpClient(host="127.0.0.1", port=port,
                                 settings=ChromaSettings(anonymized_telemetry=False))
    for collection in client.list_collections():
        client.delete_collection(collection if isinstance(collection, str) else collection.name)
    return chroma_server


@dataclass
class Route:
    """A canned answer of the loopback HTTP server."""

    status: int
    content_type: str
    body: bytes


@dataclass
class LoopbackServer:
    """A real HTTP server on 127.0.0.1: canned routes, else files under ``root``."""

    url: str
    root: Path
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def route(self, path: str, *, status: int = 200, content_type: str = "text/html; charset=utf-8",
              body: bytes | str = b"") -> str:
        """Add (or replace) a canned route; return its full URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Route(status, content_type, data)
        return self.url + path


def _handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            server.requests.append(path)
            route = server.routes.get(path)
            if route is None:
                file = (server.root / path.lstrip("/")).resolve()
                if file.is_file() and file.is_relative_to(server.root.resolve()):
                    route = Route(200, "application/octet-stream", file.read_bytes())
                    if file.suffix in {".html", ".htm"}:
                        route.content_type = "text/html; charset=utf-8"
                    elif file.suffix == ".txt":
                        route.content_type = "text/plain; charset=utf-8"
                    elif file.suffix == ".pdf":
                        route.content_type = "application/pdf"
                else:
                    route = Route(404, "text/plain", b"not found")
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def do_POST(self) -> None:  # noqa: N802 - an API client's request gets the canned route too
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.do_GET()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


@contextmanager
def serve_loopback(root: Path) -> Iterator[LoopbackServer]:
    """Run a loopback HTTP server over ``root`` with the canned routes, until the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    server = LoopbackServer(url="", root=root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    server.route("/page.html", body=ARTICLE_HTML)
    server.route("/missing", status=404, content_type="text/html", body="<h1>Not Found</h1>")
    server.route("/binary", content_type="application/octet-stream", body=bytes(range(256)) * 8)
    server.route("/plain.txt", content_type="text/plain; charset=utf-8",
                 body="The Turksib railway, linking Turkestan and Siberia, was completed in 1930.\n")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LoopbackServer]:
    """A loopback HTTP server with /page.html (HTML article), /missing (404), /binary
    (application/octet-stream) and /plain.txt (text/plain), serving tmp_path/"www" otherwise."""
    with serve_loopback(tmp_path / "www") as server:
        yield server
