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
Downloads stream with a size cap, connect/read timeouts and an overall deadline, and
every failure is a `FetchError` with a short reason code.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from core.settings import Settings
from workers.formats import SNIFF_BYTES, sniff_image_type

USER_AGENT = "socialfer/0.1 (facial-expression analysis; +https://github.com/socialfer)"
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}
CHUNK_BYTES = 64 * 1024
MAX_PAGE_BYTES = 2 * 1024 * 1024  # enough HTML to find the og:image in a post page
HTML_TYPES = ("text/html", "application/xhtml+xml")
META_IMAGE = re.compile(
    r"""<meta\b[^>]*?\b(?:property|name)\s*=\s*["'](og:image(?::secure_url|:url)?|twitter:image(?::src)?)["'][^>]*>""",
    re.IGNORECASE,
)
META_CONTENT = re.compile(r"""\bcontent\s*=\s*["']([^"']+)["']""", re.IGNORECASE)

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


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses (IPv4-mapped/compatible IPv6 judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


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


def check_url(url: str, policy: FetchPolicy) -> Target:
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
    addresses = policy.resolver(parts.hostname, port)
    if not addresses:
        raise FetchError("dns_error", f"{parts.hostname} has no address")
    blocked = [a for a in addresses if not policy.address_allowed(a, port)]
    if blocked:
        raise FetchError("blocked_address", f"{parts.hostname} resolves to a non-public address ({blocked[0]})")
    if policy.allowed_ports is not None and port not in policy.allowed_ports:
        raise FetchError("blocked_port", f"port {port} is not allowed (allowed: {sorted(policy.allowed_ports)})")
    return Target(url, scheme, parts.hostname, port, addresses[0])


class PinnedAdapter(HTTPAdapter):
    """Connects to a checked IP address while TLS still presents and verifies the host name."""

    def __init__(self, hostname: str):
        self.hostname = hostname
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self.hostname
            pool_kwargs["assert_hostname"] = self.hostname
        return host_params, pool_kwargs


def pinned_url(target: Target) -> str:
    """The target URL with its host replaced by the checked address."""
    parts = urlsplit(target.url)
    address = f"[{target.address}]" if ":" in target.address else target.address
    return urlunsplit((target.scheme, f"{address}:{target.port}", parts.path or "/", parts.query, ""))


def host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    return target.host if target.port == default else f"{target.host}:{target.port}"


def open_response(target: Target, settings: Settings) -> requests.Response:
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: we connect where we checked
    session.mount(f"{target.scheme}://", PinnedAdapter(target.host))
    try:
        return session.get(
            pinned_url(target),
            stream=True,
            allow_redirects=False,
            timeout=(settings.connect_timeout, settings.read_timeout),
            verify=settings.ca_bundle or True,
            headers={"Host": host_header(target), "User-Agent": USER_AGENT, "Accept": "image/*, text/html;q=0.5"},
        )
    except requests.Timeout as exc:
        raise FetchError("timeout", f"timed out: {exc}", transient=True) from exc
    except requests.exceptions.SSLError as exc:
        raise FetchError("tls_error", f"TLS failed: {exc}") from exc
    except requests.ConnectionError as exc:
        raise FetchError("connection_error", f"cannot connect: {exc}", transient=True) from exc
    except requests.RequestException as exc:
        raise FetchError("fetch_error", str(exc)) from exc


def status_error(response: requests.Response) -> FetchError:
    status = response.status_code
    retry_after = response.headers.get("Retry-After", "")
    return FetchError(
        f"http_{status}",
        f"server answered {status}",
        transient=status in TRANSIENT_STATUSES,
        retry_after=float(retry_after) if retry_after.isdigit() else None,
    )


def fetch_image(url: str, settings: Settings, policy: FetchPolicy | None = None) -> Fetched:
    """Download the image at `url` (or the image a post page names) under the limits in `settings`."""
    policy = policy or FetchPolicy.from_settings(settings)
    deadline = time.monotonic() + settings.connect_timeout + 2 * settings.read_timeout
    fetched = fetch_once(url, settings, policy, deadline)
    if not is_html(fetched.content_type):
        return check_image_bytes(fetched)
    image_url = page_image_url(fetched.content.decode("utf-8", "replace"), fetched.final_url)
    if image_url is None:
        raise FetchError("no_image_in_page", "the URL is a web page without an og:image or twitter:image")
    image = fetch_once(
        image_url, settings, policy, time.monotonic() + settings.connect_timeout + 2 * settings.read_timeout
    )
    if is_html(image.content_type):
        raise FetchError("not_an_image", "the page's og:image is itself a web page")
    return check_image_bytes(image)


def fetch_once(url: str, settings: Settings, policy: FetchPolicy, deadline: float) -> Fetched:
    """One resource, following redirects by hand; every hop is checked before connecting."""
    for _hop in range(settings.max_redirects + 1):
        target = check_url(url, policy)
        with open_response(target, settings) as response:
            if response.status_code in REDIRECT_STATUSES and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])
                continue
            if response.status_code >= 400:
                raise status_error(response)
            content_type = response.headers.get("Content-Type")
            limit = MAX_PAGE_BYTES if is_html(content_type) else settings.max_image_bytes
            return Fetched(read_capped(response, limit, deadline), content_type, url)
    raise FetchError("too_many_redirects", f"more than {settings.max_redirects} redirects")


def is_html(content_type: str | None) -> bool:
    return bool(content_type) and content_type.split(";")[0].strip().lower() in HTML_TYPES


def page_image_url(html: str, page_url: str) -> str | None:
    """The absolute og:image (or twitter:image) URL a post page declares, if any."""
    for tag in META_IMAGE.finditer(html):
        content = META_CONTENT.search(tag.group(0))
        if content:
            return urljoin(page_url, unescape(content.group(1).strip()))
    return None


def check_image_bytes(fetched: Fetched) -> Fetched:
    """Refuse bodies that do not start like an image, whatever the Content-Type claims."""
    if sniff_image_type(fetched.content[:SNIFF_BYTES]) is not None:
        return fetched
    raise FetchError("not_an_image", f"the data is not an image (Content-Type {fetched.content_type or 'missing'})")


def read_capped(response: requests.Response, limit: int, deadline: float) -> bytes:
    """The body, refusing more than `limit` bytes and anything past the overall deadline.

    `read1` returns whatever has arrived, so a server trickling bytes cannot hold us past
    the deadline by more than one read timeout.
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
            if time.monotonic() > deadline:
                raise FetchError("timeout", "download took longer than the overall deadline", transient=True)
    except FetchError:
        raise
    except Exception as exc:  # requests', urllib3's and socket errors all mean the download broke
        code = "timeout" if "timed out" in str(exc).lower() else "connection_error"
        raise FetchError(code, f"download interrupted: {exc}", transient=True) from exc
    if not body:
        raise FetchError("empty_body", "the server sent no data")
    return bytes(body)
