"""The one function through which the workers fetch untrusted URLs.

The worker must never become an SSRF proxy. So every hop (the URL, each redirect, an
`og:image` found in a page) is checked the same way before any connection:
- only http and https, no credentials in the URL, ports 80 and 443 unless configured;
- the host is resolved once and refused if *any* of its addresses is not globally
  routable (loopback, RFC 1918, link-local, CGNAT, multicast, reserved, ULA,
  IPv4-mapped forms; odd spellings such as `2130706433` resolve to what they mean);
- the connection goes to the address that was checked (no second lookup, so DNS
  rebinding cannot swap it), with the Host header, TLS SNI and certificate check
  still for the name.
Everything a hostile source can slow down shares the attempt's one `Deadline`: the name
lookup, connecting, the status line, headers and body of every hop, the post page and its
`og:image`. Sockets are shut when it passes (`workers.deadline.SocketWatch`), so a server
trickling a byte per read timeout cannot stretch it. Bodies stream under a size cap, a post
page is searched by a bounded scan (linear in its size), and every failure is a
`FetchError` with a short reason code.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection

from core.settings import Settings
from workers.addresses import address_problem, is_public_address
from workers.deadline import Deadline, DeadlineExceeded, SocketWatch, call_within
from workers.formats import SNIFF_BYTES, sniff_image_type

__all__ = ["FetchError", "FetchPolicy", "Fetched", "check_url", "fetch_image", "is_public_address"]

USER_AGENT = "socialfer/0.1 (facial-expression analysis; +https://github.com/socialfer)"
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}
CHUNK_BYTES = 64 * 1024
MAX_PAGE_BYTES = 2 * 1024 * 1024  # enough HTML to find the og:image in a post page
HTML_TYPES = ("text/html", "application/xhtml+xml")
META_IMAGE_KEYS = frozenset({"og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"})

Resolver = Callable[[str, int], list[str]]


class FetchError(Exception):
    """A fetch that did not succeed; `code` is stored on the image (`http_404`, `timeout`, ...).

    `transient` failures (timeouts, connection errors, 5xx, 429) may succeed later and are
    retried; `retry_after` carries a server's Retry-After in seconds.
    """

    def __init__(self, code: str, message: str, *, transient: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient
        self.retry_after = retry_after


@dataclass(frozen=True)
class Fetched:
    content: bytes
    content_type: str | None
    final_url: str


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("dns_error", f"cannot resolve {host!r}: {exc}") from exc
    return sorted({info[4][0] for info in infos})


@dataclass
class FetchPolicy:
    """Which destinations may be contacted; built from settings, replaceable in tests."""

    allow_private: bool = False
    allowed_ports: frozenset[int] | None = frozenset({80, 443})  # None: any port
    resolver: Resolver = field(default=system_resolver)

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        # Private mode is for tests and demos, whose servers listen on arbitrary ports.
        ports = None if settings.allow_private_urls else settings.allowed_ports
        return cls(allow_private=settings.allow_private_urls, allowed_ports=ports)

    def address_allowed(self, address: str, port: int) -> bool:
        return self.allow_private or is_public_address(address)


@dataclass(frozen=True)
class Target:
    """A checked URL: the address to connect to and the name to present."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def check_url(url: str, policy: FetchPolicy, deadline: Deadline | None = None) -> Target:
    """Refuse a URL before connecting; otherwise say exactly where to connect."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError("unsupported_scheme", f"only http and https URLs are fetched, not {parts.scheme!r}")
    if parts.username is not None or parts.password is not None:
        raise FetchError("credentials_in_url", "URLs with credentials are refused")
    if not parts.hostname:
        raise FetchError("invalid_url", "URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise FetchError("invalid_url", f"bad port: {exc}") from exc
    if deadline is None:
        addresses = policy.resolver(parts.hostname, port)
    else:
        addresses = call_within(deadline, policy.resolver, parts.hostname, port)
    if not addresses:
        raise FetchError("dns_error", f"{parts.hostname} has no address")
    blocked = [a for a in addresses if not policy.address_allowed(a, port)]
    if blocked:
        reason = address_problem(blocked[0]) or blocked[0]
        raise FetchError("blocked_address", f"{parts.hostname} resolves to a non-public address: {reason}")
    if policy.allowed_ports is not None and port not in policy.allowed_ports:
        raise FetchError("blocked_port", f"port {port} is not allowed (allowed: {sorted(policy.allowed_ports)})")
    return Target(url, scheme, parts.hostname, port, addresses[0])


class WatchedConnection:
    """Mixed into urllib3's connections: the socket is handed to the attempt's `SocketWatch` as soon as
    it exists (for https the TLS socket wraps the watched one, so shutting that ends both)."""

    def __init__(self, *args, watch: SocketWatch, **kwargs):
        super().__init__(*args, **kwargs)
        self.watch = watch

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self.watch.add(sock)
        return sock


class WatchedHTTPConnection(WatchedConnection, HTTPConnection):
    pass


class WatchedHTTPSConnection(WatchedConnection, HTTPSConnection):
    pass


class PinnedAdapter(HTTPAdapter):
    """Connects to a checked IP address while TLS still presents and verifies the host name."""

    def __init__(self, hostname: str, watch: SocketWatch | None = None):
        self.hostname = hostname
        self.watch = watch
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self.hostname
            pool_kwargs["assert_hostname"] = self.hostname
        return host_params, pool_kwargs

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
        if self.watch is None:
            return pool
        pool.ConnectionCls = WatchedHTTPSConnection if pool.scheme == "https" else WatchedHTTPConnection
        pool.conn_kw["watch"] = self.watch
        return pool


def pinned_url(target: Target) -> str:
    """The target URL with its host replaced by the checked address."""
    parts = urlsplit(target.url)
    address = f"[{target.address}]" if ":" in target.address else target.address
    return urlunsplit((target.scheme, f"{address}:{target.port}", parts.path or "/", parts.query, ""))


def host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    return target.host if target.port == default else f"{target.host}:{target.port}"


def timeout_error(deadline: Deadline) -> FetchError:
    message = f"the download passed the attempt's deadline of {deadline.seconds:g} s"
    return FetchError("timeout", message, transient=True)


def request_error(exc: Exception, watch: SocketWatch) -> FetchError:
    """What a failed request means; anything after the deadline shut the socket is a timeout."""
    if watch.fired or watch.deadline.expired():
        return timeout_error(watch.deadline)
    if isinstance(exc, requests.Timeout):
        return FetchError("timeout", f"timed out: {exc}", transient=True)
    if isinstance(exc, requests.exceptions.SSLError):
        return FetchError("tls_error", f"TLS failed: {exc}")
    if isinstance(exc, requests.ConnectionError):
        return FetchError("connection_error", f"cannot connect: {exc}", transient=True)
    return FetchError("fetch_error", str(exc))


@contextmanager
def open_response(
    target: Target, settings: Settings, deadline: Deadline
) -> Iterator[tuple[requests.Response, SocketWatch]]:
    """The response to one GET (status and headers read), its body still to stream, under the deadline."""
    with SocketWatch(deadline) as watch, requests.Session() as session:
        session.trust_env = False  # no proxies from the environment: we connect where we checked
        session.mount(f"{target.scheme}://", PinnedAdapter(target.host, watch))
        try:
            response = session.get(
                pinned_url(target),
                stream=True,
                allow_redirects=False,
                timeout=(deadline.bound(settings.connect_timeout), deadline.bound(settings.read_timeout)),
                verify=settings.ca_bundle or True,
                headers={"Host": host_header(target), "User-Agent": USER_AGENT, "Accept": "image/*, text/html;q=0.5"},
            )
        except requests.RequestException as exc:
            raise request_error(exc, watch) from exc
        with response:
            yield response, watch


def status_error(response: requests.Response) -> FetchError:
    status = response.status_code
    retry_after = response.headers.get("Retry-After", "")
    return FetchError(
        f"http_{status}",
        f"server answered {status}",
        transient=status in TRANSIENT_STATUSES,
        retry_after=float(retry_after) if retry_after.isdigit() else None,
    )


def fetch_image(
    url: str, settings: Settings, policy: FetchPolicy | None = None, deadline: Deadline | None = None
) -> Fetched:
    """Download the image at `url` (or the image a post page names) under the limits in `settings`.

    Every hop shares `deadline` (by default a fresh one of `settings.attempt_deadline`).
    """
    policy = policy or FetchPolicy.from_settings(settings)
    deadline = deadline or Deadline(settings.attempt_deadline)
    try:
        fetched = fetch_once(url, settings, policy, deadline)
        if not is_html(fetched.content_type):
            return check_image_bytes(fetched)
        image_url = page_image_url(fetched.content, fetched.final_url)
        if image_url is None:
            raise FetchError("no_image_in_page", "the URL is a web page without an og:image or twitter:image")
        image = fetch_once(image_url, settings, policy, deadline)
    except DeadlineExceeded:
        raise timeout_error(deadline) from None
    if is_html(image.content_type):
        raise FetchError("not_an_image", "the page's og:image is itself a web page")
    return check_image_bytes(image)


def fetch_once(url: str, settings: Settings, policy: FetchPolicy, deadline: Deadline) -> Fetched:
    """One resource, following redirects by hand; every hop is checked before connecting."""
    for _hop in range(settings.max_redirects + 1):
        deadline.check("download")
        target = check_url(url, policy, deadline)
        with open_response(target, settings, deadline) as (response, watch):
            if response.status_code in REDIRECT_STATUSES and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])
                continue
            if response.status_code >= 400:
                raise status_error(response)
            content_type = response.headers.get("Content-Type")
            limit = MAX_PAGE_BYTES if is_html(content_type) else settings.max_image_bytes
            return Fetched(read_capped(response, limit, watch), content_type, url)
    raise FetchError("too_many_redirects", f"more than {settings.max_redirects} redirects")


def is_html(content_type: str | None) -> bool:
    return bool(content_type) and content_type.split(";")[0].strip().lower() in HTML_TYPES


META_TAG = re.compile(r"<meta(?=[\s/>])", re.IGNORECASE)
META_KEY = re.compile(r"""\b(?:property|name)\s*=\s*(?:["']\s*)?([a-z:_]+)""", re.IGNORECASE)
META_CONTENT = re.compile(r"""\bcontent\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
MAX_TAG_CHARS = 4096  # a meta tag longer than this (a 2,048-character URL and then some) is not read


def page_image_url(page: bytes | str, page_url: str) -> str | None:
    """The absolute og:image (or twitter:image) URL a post page declares, if any.

    A bounded scan, linear in the page: each `<meta` is read up to the next `>` (skipped if
    that is over MAX_TAG_CHARS away), no character is read as part of two tags, and within
    a tag each regular expression is searched once. No backtracking across the page.
    """
    html = page.decode("utf-8", "replace") if isinstance(page, bytes) else page
    next_close, resume = -1, 0
    for tag in META_TAG.finditer(html):
        start = tag.end()
        if start < resume:
            continue  # inside the tag just read
        if next_close < start:
            next_close = html.find(">", start)
            if next_close < 0:
                return None  # no tag closes after this point
        if next_close - start > MAX_TAG_CHARS:
            continue
        attributes, resume = html[start:next_close], next_close
        key = META_KEY.search(attributes)
        if key is None or key.group(1).lower() not in META_IMAGE_KEYS:
            continue
        content = META_CONTENT.search(attributes)
        value = next((group for group in content.groups() if group), "").strip() if content else ""
        if value:
            return urljoin(page_url, unescape(value))
    return None


def check_image_bytes(fetched: Fetched) -> Fetched:
    """Refuse bodies that do not start like an image, whatever the Content-Type claims."""
    if sniff_image_type(fetched.content[:SNIFF_BYTES]) is not None:
        return fetched
    raise FetchError("not_an_image", f"the data is not an image (Content-Type {fetched.content_type or 'missing'})")


def read_capped(response: requests.Response, limit: int, watch: SocketWatch) -> bytes:
    """The body, refusing more than `limit` bytes (after decompression) and anything past the deadline.

    `read1` returns whatever has arrived; a trickle that outlasts the deadline has its socket
    shut by `watch`, which ends the read at once.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FetchError("too_large", f"the body is {int(declared):,} bytes; the limit is {limit:,}")
    body = bytearray()
    try:
        while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
            body.extend(chunk)
            if len(body) > limit:
                raise FetchError("too_large", f"the body exceeds the limit of {limit:,} bytes")
            if watch.deadline.expired():
                raise timeout_error(watch.deadline)
    except FetchError:
        raise
    except Exception as exc:  # requests', urllib3's and socket errors all mean the download broke
        if watch.fired or watch.deadline.expired():
            raise timeout_error(watch.deadline) from exc
        code = "timeout" if "timed out" in str(exc).lower() else "connection_error"
        raise FetchError(code, f"download interrupted: {exc}", transient=True) from exc
    if watch.fired:  # the socket was shut at the deadline and the read saw an end of stream
        raise timeout_error(watch.deadline)
    if not body:
        raise FetchError("empty_body", "the server sent no data")
    return bytes(body)
