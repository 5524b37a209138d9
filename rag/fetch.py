"""Fetching one http(s) web address safely: public addresses only, pinned, size- and time-bounded."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from rag.errors import ConfigError, IngestError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "Footnote/0.1 (+document ingestion)"
METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NO_ANSWER = ("{url}: could not be fetched: the site did not answer. Check the address and try again; "
             "a slow site may need a longer FOOTNOTE_FETCH_TIMEOUT.")
TOO_LARGE = "{url}: response is over the {mb:g} MB limit (FOOTNOTE_MAX_FILE_MB raises it)."


@dataclass(frozen=True)
class Fetched:
    """A final (non-redirect) response; ``body`` is empty unless the status is 2xx."""

    status: int
    url: str
    content_type: str
    body: bytes


def is_public(ip: IPAddress) -> bool:
    """Whether ``ip`` is a global unicast address: not loopback, private, link-local, multicast,
    reserved, shared (100.64/10), cloud metadata, nor an IPv6 form embedding one of those."""
    if isinstance(ip, ipaddress.IPv6Address):
        translated = ip.ipv4_mapped or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None)
        if translated is not None:  # reaches exactly that IPv4 address
            return is_public(translated)
        if ip.is_site_local or (ip.sixtofour is not None and not is_public(ip.sixtofour)):
            return False
    return ip not in METADATA and ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback
        or ip.is_link_local or ip.is_private)


def parse_networks(networks: Sequence[str]) -> list[Network]:
    """Networks such as ``10.1.0.0/16`` or ``fd12::/48`` (a bare address is a one-address network)."""
    try:
        return [ipaddress.ip_network(n.strip(), strict=False) for n in networks]
    except ValueError as exc:
        raise ConfigError(f"Invalid allowed URL network ({exc}). Use CIDR form, e.g. 10.1.0.0/16.") from exc


def fetch(url: str, *, timeout: float, max_bytes: int, allow_private: bool = False,
          allowed_networks: Sequence[str] = ()) -> Fetched:
    """GET ``url``, following at most ``MAX_REDIRECTS`` redirects, each hop checked and pinned.

    Every address a host resolves to must be public, in ``allowed_networks``, or (with
    ``allow_private``) private; cloud metadata addresses need ``allowed_networks``. The checked
    address is the one connected to, so a second DNS answer cannot switch it. ``timeout`` bounds
    the whole fetch and ``max_bytes`` the decoded body.

    Raises:
        IngestError: the URL is not http(s), its host is refused or unknown, the site did not answer
            (one message for every cause, so port states do not show), too many redirects, too large.
        ConfigError: an allowed network is not one.
    """
    networks = parse_networks(allowed_networks)
    deadline = time.monotonic() + timeout
    current = _parse(url, url)
    watchdog = _Watchdog(deadline)
    try:
        with httpx.Client(trust_env=False, follow_redirects=False) as client:
            for hop in range(MAX_REDIRECTS + 1):
                addresses = _resolve(current, url, redirected=hop > 0)
                _check(addresses, current, url, redirected=hop > 0, allow_private=allow_private,
                       networks=networks)
                result = _get(client, current, addresses, url, deadline=deadline,
                              max_bytes=max_bytes, watchdog=watchdog)
                if isinstance(result, Fetched):
                    return result
                current = _parse(result, url, base=current)
    finally:
        watchdog.cancel()
    raise IngestError(f"{url}: redirects more than {MAX_REDIRECTS} times. Open it in a browser and "
                      "add the address it ends at.")


def _parse(address: str, url: str, *, base: httpx.URL | None = None) -> httpx.URL:
    try:
        parsed = base.join(address) if base is not None else httpx.URL(address)
    except (httpx.InvalidURL, ValueError) as exc:
        what = "redirects to an invalid address" if base is not None else "not a valid web address"
        raise IngestError(f"{url}: {what}. Check it in a browser and try again.") from exc
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        what = "redirects to a non-http(s) address" if base is not None else "not an http(s) URL"
        raise IngestError(f"{url}: {what}; only web addresses starting http:// or https:// can be fetched.")
    return parsed


def _resolve(target: httpx.URL, url: str, *, redirected: bool) -> list[IPAddress]:
    host = target.raw_host.decode("ascii")
    try:
        infos = socket.getaddrinfo(host, target.port or 0, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    except (OSError, UnicodeError, ValueError) as exc:
        where = f"redirects to {host}, which" if redirected else f"the host {host}"
        raise IngestError(f"{url}: could not be fetched: {where} was not found. Check the address.") from exc


def _check(addresses: list[IPAddress], target: httpx.URL, url: str, *, redirected: bool,
           allow_private: bool, networks: list[Network]) -> None:
    for ip in addresses:
        plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
        if is_public(plain) or any(plain in net for net in networks):
            continue
        subject = f"redirects to {target.host}, which is" if redirected else f"{target.host} is"
        if plain in METADATA:
            raise IngestError(f"{url}: {subject} a cloud metadata address, never fetched by default. "
                              "List it in FOOTNOTE_ALLOWED_URL_NETWORKS only if everyone who can use "
                              "this app may read the machine's credentials.")
        if not allow_private:
            raise IngestError(f"{url}: {subject} a private or local network address, not fetched by "
                              "default. If everyone who can use this app may read that network, set "
                              "FOOTNOTE_ALLOW_PRIVATE_URLS=true (or use `ingest.py add "
                              "--allow-private-urls`).")


def _get(client: httpx.Client, target: httpx.URL, addresses: list[IPAddress], url: str, *,
         deadline: float, max_bytes: int, watchdog: _Watchdog) -> Fetched | str:
    """One GET pinned to each checked address in turn: a ``Fetched``, or a redirect's Location."""
    host = target.raw_host.decode("ascii")
    headers = {"Host": target.netloc.decode("ascii"), "User-Agent": USER_AGENT}
    extensions: dict[str, Any] = {"trace": watchdog.trace}
    if target.scheme == "https":
        extensions["sni_hostname"] = host  # TLS verifies the name, not the pinned address
    for ip in addresses:
        pinned = target.copy_with(host=str(ip), userinfo=b"", fragment=None)
        remaining = max(deadline - time.monotonic(), 0.001)
        try:
            with client.stream("GET", pinned, headers=headers, extensions=extensions,
                               timeout=remaining) as response:
                return _read(response, target, url, deadline=deadline, max_bytes=max_bytes,
                             watchdog=watchdog)
        except httpx.ConnectError as exc:  # refused or unreachable: the next address may answer
            logger.info("%s: no answer from %s (%r)", url, ip, exc)
        except httpx.TransportError as exc:
            logger.info("%s: no answer from %s (%r)", url, ip, exc)
            break
        except httpx.DecodingError as exc:
            raise IngestError(f"{url}: the site's compressed answer could not be decoded. Save the "
                              "page from a browser and upload the file instead.") from exc
    raise IngestError(NO_ANSWER.format(url=url))


def _read(response: httpx.Response, target: httpx.URL, url: str, *, deadline: float,
          max_bytes: int, watchdog: _Watchdog) -> Fetched | str:
    location = response.headers.get("location")
    if response.status_code in REDIRECT_STATUSES and location:
        return location
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    body = bytearray()
    if 200 <= response.status_code < 300:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise IngestError(TOO_LARGE.format(url=url, mb=max_bytes / 1e6))
        for part in response.iter_bytes():
            body.extend(part)
            if len(body) > max_bytes:
                raise IngestError(TOO_LARGE.format(url=url, mb=max_bytes / 1e6))
            if time.monotonic() > deadline:
                raise IngestError(NO_ANSWER.format(url=url))
    if watchdog.fired:  # the socket was cut mid-body: what was read is not the whole page
        raise IngestError(NO_ANSWER.format(url=url))
    return Fetched(response.status_code, str(target), content_type, bytes(body))


class _Watchdog:
    """Shuts the open connection's socket at the deadline, so no single read outlives it."""

    def __init__(self, deadline: float) -> None:
        self.fired = False
        self._socket: socket.socket | None = None
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: remember each new connection's socket."""
        if event == "connection.connect_tcp.complete" and info.get("return_value") is not None:
            self._socket = info["return_value"].get_extra_info("socket")
            if self.fired:
                self._fire()

    def cancel(self) -> None:
        """Stop the timer: the fetch is over."""
        self._timer.cancel()

    def _fire(self) -> None:
        self.fired = True
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
