"""rag.fetch and the URL box: public addresses only by default, every hop checked, size and time bounded.

Every connection this module's code attempts is recorded by an audit hook, which refuses any
address outside 127.0.0.0/8 before a packet leaves: no test reaches beyond loopback.
"""

from __future__ import annotations

import gzip
import ipaddress
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rag import corpus
from rag.config import build_settings
from rag.errors import ConfigError, IngestError
from rag.fetch import MAX_REDIRECTS, fetch, is_public
from rag.indexer import Indexer

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
NO_ANSWER = "could not be fetched: the site did not answer"
PRIVATE = "a private or local network address"
URL_BOX = "only http(s) web addresses can be added here; upload files with the file box"

_attempts: list[str] | None = None


def _guard(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect" or _attempts is None or not isinstance(args[1], tuple):
        return
    host = str(args[1][0])
    _attempts.append(host)
    if ipaddress.ip_address(host.split("%")[0]) not in LOOPBACK:
        raise PermissionError(f"test_fetch: connection to {host} blocked (tests stay on loopback)")


sys.addaudithook(_guard)  # audit hooks cannot be removed; it is idle outside this module's tests


@pytest.fixture(autouse=True)
def connections() -> Iterator[list[str]]:
    """Addresses this test's code tried to connect to (servers' own sockets never connect)."""
    global _attempts
    _attempts = []
    try:
        yield _attempts
    finally:
        _attempts = None


# -- a loopback server with programmable routes -----------------------------------------------
Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Server:
    """A real HTTP server on a loopback address; ``requests`` lists the paths asked for."""

    url: str
    port: int
    routes: dict[str, Handler]
    requests: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


def reply(status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
          **headers: str) -> Handler:
    """A route answering ``status`` with ``body`` and extra headers (underscores become dashes)."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        for name, value in headers.items():
            h.send_header(name.replace("_", "-"), value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return handle


@contextmanager
def serve(routes: dict[str, Handler], host: str = "127.0.0.1") -> Iterator[Server]:
    """Run a threaded HTTP server on ``host`` with these routes until the block ends."""
    server: Server

    class RequestHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            server.requests.append(self.path)
            server.hosts.append(self.headers.get("Host", ""))
            server.routes.get(self.path, reply(404, b"not found"))(self)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    httpd = ThreadingHTTPServer((host, 0), RequestHandler)
    port = int(httpd.server_address[1])
    server = Server(f"http://{host}:{port}", port, routes)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


PAGE = reply(200, b"The Dnieper dam was completed in 1932.")


# -- the address classifier --------------------------------------------------------------------
@pytest.mark.parametrize("address,public", [
    ("8.8.8.8", True), ("1.1.1.1", True), ("2606:4700:4700::1111", True),
    ("::ffff:8.8.8.8", True), ("2002:808:808::1", True), ("64:ff9b::808:808", True),
    ("127.0.0.1", False), ("127.0.0.2", False), ("10.1.2.3", False), ("172.16.0.1", False),
    ("192.168.1.1", False), ("169.254.1.1", False), ("169.254.169.254", False),
    ("100.64.0.1", False), ("100.127.255.254", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("239.255.255.250", False), ("240.0.0.1", False), ("255.255.255.255", False),
    ("192.0.2.1", False), ("198.18.0.1", False),
    ("::1", False), ("::", False), ("fe80::1", False), ("fc00::1", False), ("fd00:ec2::254", False),
    ("fec0::1", False), ("ff02::1", False), ("2001:db8::1", False), ("::7f00:1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("::ffff:169.254.169.254", False),
    ("2002:7f00:1::", False), ("2002:a9fe:a9fe::", False), ("2002:a00:1::", False),
    ("64:ff9b::7f00:1", False), ("64:ff9b::a9fe:a9fe", False),
])
def test_address_classifier(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


# -- loopback and its disguises ----------------------------------------------------------------------
def test_loopback_url_is_refused_by_default_without_connecting(connections):
    with serve({"/page": PAGE}) as server:
        with pytest.raises(IngestError) as info:
            fetch(server.url + "/page", timeout=5, max_bytes=10_000)

    message = str(info.value)
    assert message.startswith(f"{server.url}/page: 127.0.0.1 is {PRIVATE}")
    assert "FOOTNOTE_ALLOW_PRIVATE_URLS=true" in message and "--allow-private-urls" in message
    assert server.requests == [] and connections == []


def test_localhost_is_refused_because_it_resolves_to_loopback(connections):
    with serve({"/page": PAGE}) as server:
        with pytest.raises(IngestError, match=f"localhost is {PRIVATE}"):
            fetch(f"http://localhost:{server.port}/page", timeout=5, max_bytes=10_000)

    assert server.requests == [] and connections == []


@pytest.mark.parametrize("template", [
    "http://[::1]:{port}/page", "http://[::ffff:127.0.0.1]:{port}/page", "http://2130706433:{port}/page",
    "http://0177.0.0.1:{port}/page", "http://0x7f.0.0.1:{port}/page", "http://127.1:{port}/page",
    "http://LocalHost:{port}/page",
])
def test_other_spellings_of_loopback_are_refused(template, connections):
    with serve({"/page": PAGE}) as server:
        with pytest.raises(IngestError, match=f"{PRIVATE}|not a valid web address"):
            fetch(template.format(port=server.port), timeout=5, max_bytes=10_000)

    assert server.requests == [] and connections == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/iam/",
                                 "http://[::ffff:169.254.169.254]/latest/", "http://[fd00:ec2::254]/"])
def test_metadata_address_is_refused_without_a_connection_even_with_private_allowed(url, connections):
    with pytest.raises(IngestError, match="is a cloud metadata address"):
        fetch(url, timeout=5, max_bytes=10_000, allow_private=True)

    assert connections == []


def test_loopback_url_is_fetched_when_private_addresses_are_allowed():
    with serve({"/page": PAGE}) as server:
        result = fetch(server.url + "/page", timeout=5, max_bytes=10_000, allow_private=True)

    assert (result.status, result.content_type) == (200, "text/plain")
    assert result.body == b"The Dnieper dam was completed in 1932."
    assert server.requests == ["/page"]


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(connections):
    with serve({"/page": PAGE}) as server:
        fetch(f"http://localhost:{server.port}/page", timeout=5, max_bytes=10_000,
              allowed_networks=["127.0.0.1/32", "::1/128"])

    assert connections and set(connections) <= {"127.0.0.1", "::1"}
    assert server.hosts == [f"localhost:{server.port}"]


def test_an_allowed_network_admits_exactly_its_addresses(connections):
    with serve({"/page": PAGE}) as server:
        assert fetch(server.url + "/page", timeout=5, max_bytes=10_000,
                     allowed_networks=["127.0.0.1/32"]).status == 200
        with pytest.raises(IngestError, match=f"127.0.0.2 is {PRIVATE}"):
            fetch(f"http://127.0.0.2:{server.port}/page", timeout=5, max_bytes=10_000,
                  allowed_networks=["127.0.0.1/32"])

    assert connections == ["127.0.0.1"]


# -- redirects ---------------------------------------------------------------------------------------
def test_redirect_from_an_allowed_server_to_another_loopback_address_is_refused(tmp_path, connections):
    with serve({"/secret": reply(200, b"root password: hunter2")}, host="127.0.0.2") as inside, \
            serve({}) as outside:
        outside.routes["/start"] = reply(302, Location=inside.url + "/secret")
        with pytest.raises(IngestError) as info:
            corpus.fetch_url(outside.url + "/start", tmp_path / "corpus", timeout=5, max_bytes=10_000,
                             allowed_networks=["127.0.0.1/32"])

    assert str(info.value).startswith(f"{outside.url}/start: redirects to 127.0.0.2, which is {PRIVATE}")
    assert outside.requests == ["/start"] and inside.requests == []
    assert "127.0.0.2" not in connections
    assert not (tmp_path / "corpus").exists()


def test_redirect_within_an_allowed_network_is_followed(tmp_path):
    with serve({"/page": PAGE}) as server:
        server.routes["/old"] = reply(301, Location="/page")
        target = corpus.fetch_url(server.url + "/old", tmp_path / "corpus", timeout=5, max_bytes=10_000,
                                  allowed_networks=["127.0.0.1/32"])

    assert "Dnieper dam" in target.read_text(encoding="utf-8")
    assert server.requests == ["/old", "/page"]


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/x.txt"])
def test_redirect_to_a_non_http_address_is_refused(location):
    with serve({"/go": reply(302, Location=location)}) as server:
        with pytest.raises(IngestError, match="redirects to a non-http"):
            fetch(server.url + "/go", timeout=5, max_bytes=10_000, allow_private=True)


def test_redirect_loop_is_cut_after_the_limit():
    with serve({"/loop": reply(302, Location="/loop")}) as server:
        with pytest.raises(IngestError, match=f"redirects more than {MAX_REDIRECTS} times"):
            fetch(server.url + "/loop", timeout=5, max_bytes=10_000, allow_private=True)

    assert len(server.requests) == MAX_REDIRECTS + 1


# -- size and time --------------------------------------------------------------------------------------
def test_body_over_the_limit_is_refused():
    with serve({"/big": reply(200, b"Plan " * 2000)}) as server:
        with pytest.raises(IngestError, match=r"/big: response is over the 0\.001 MB limit"):
            fetch(server.url + "/big", timeout=5, max_bytes=1000, allow_private=True)


def test_compressed_body_is_measured_after_decompression():
    bomb = gzip.compress(b"\0" * 5_000_000)
    with serve({"/bomb": reply(200, bomb, Content_Encoding="gzip")}) as server:
        assert len(bomb) < 100_000
        with pytest.raises(IngestError, match=r"/bomb: response is over the 1 MB limit"):
            fetch(server.url + "/bomb", timeout=5, max_bytes=1_000_000, allow_private=True)


def test_a_server_that_trickles_its_body_is_cut_by_the_overall_deadline():
    cut = threading.Event()

    def trickle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Content-Length", "80")
        h.end_headers()
        try:
            for _ in range(80):  # 8 s in all, each byte well within any per-read timeout
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.1)
        except OSError:
            cut.set()

    with serve({"/slow": trickle}) as server:
        with pytest.raises(IngestError, match=NO_ANSWER):
            fetch(server.url + "/slow", timeout=1, max_bytes=10_000, allow_private=True)
        assert cut.wait(10), "the client kept reading after its deadline"


def test_closed_port_and_silent_server_give_the_same_message():
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    held: list[socket.socket] = []
    accepting = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
    accepting.start()
    try:
        with pytest.raises(IngestError) as silent:
            fetch(url, timeout=1, max_bytes=10_000, allow_private=True)
        accepting.join(timeout=5)
        assert held, "the silent server never accepted the connection"
    finally:
        for conn in held:
            conn.close()
        listener.close()
    with pytest.raises(IngestError) as closed:
        fetch(url, timeout=1, max_bytes=10_000, allow_private=True)

    assert str(silent.value) == str(closed.value)
    assert str(closed.value).startswith(f"{url}: {NO_ANSWER}.")


# -- the app's URL box: Indexer.add(..., paths=False) -----------------------------------------------------
def test_url_box_never_reads_a_local_path(settings, tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("The vault code is 0451.")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    items = [str(secret), "../secret.txt", "/etc/passwd", "file:///etc/passwd",
             f"file://{secret}", "ftp://127.0.0.1/secret.txt", " http://127.0.0.1/"]

    report = Indexer(settings).add(items, paths=False)

    assert report.failed == [(item, f"{item}: {URL_BOX}.") for item in items]
    assert report.added == [] and list(settings.corpus_dir.iterdir()) == []


def test_url_box_refuses_loopback_by_default_and_reports_it(settings):
    with serve({"/page": PAGE}) as server:
        report = Indexer(settings).add([server.url + "/page"], paths=False)

    assert len(report.failed) == 1 and PRIVATE in report.failed[0][1]
    assert server.requests == [] and list(settings.corpus_dir.iterdir()) == []


@pytest.mark.slow
def test_url_box_uses_the_allowed_networks_setting(settings, embedder):
    allowed = settings.with_updates(allowed_url_networks=["127.0.0.1/32"])
    with serve({"/page": reply(200, b"<title>Dam</title><p>The Dnieper dam was completed in 1932.</p>",
                               content_type="text/html")}) as server:
        report = Indexer(allowed, embedder=embedder).add([server.url + "/page"], paths=False)

    assert report.failed == []
    assert len(report.added) == 1 and report.added[0].startswith("web/")


def test_allowed_url_networks_setting_reads_a_json_list_and_rejects_a_non_network(monkeypatch):
    monkeypatch.setenv("FOOTNOTE_ALLOWED_URL_NETWORKS", '["10.20.0.0/16", "fd12::/48"]')
    assert build_settings().allowed_url_networks == ["10.20.0.0/16", "fd12::/48"]

    monkeypatch.setenv("FOOTNOTE_ALLOWED_URL_NETWORKS", '["intranet"]')
    with pytest.raises(ConfigError, match="allowed_url_networks"):
        build_settings()

