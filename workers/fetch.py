"""The one function through which the workers fetch untrusted URLs.

It refuses anything but http(s), credentials in URLs, and hosts that resolve to any
non-public address (unless private URLs are allowed), follows redirects by hand so
each hop is checked, streams with a size cap, connect/read timeouts and an overall
deadline, and turns every failure into a `FetchError` with a short reason code.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from socialfer.settings import Settings

USER_AGENT = "socialfer/0.1 (+https://github.com/socialfer)"
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
CHUNK_BYTES = 64 * 1024


class FetchError(Exception):
    """A fetch that cannot succeed; `code` is stored on the image (`http_404`, `timeout`, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Fetched:
    content: bytes
    content_type: str | None
    final_url: str


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses (IPv4-mapped IPv6 judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("dns_error", f"cannot resolve {host!r}: {exc}") from exc
    return sorted({info[4][0] for info in infos})


def check_url(url: str, settings: Settings) -> None:
    """Refuse a URL before connecting: scheme, credentials, and every address its host resolves to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError("unsupported_scheme", f"only http and https URLs are fetched, not {parts.scheme!r}")
    if parts.username or parts.password:
        raise FetchError("credentials_in_url", "URLs with credentials are refused")
    if not parts.hostname:
        raise FetchError("invalid_url", "URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchError("invalid_url", f"bad port: {exc}") from exc
    if settings.allow_private_urls:
        return
    blocked = [a for a in resolve(parts.hostname, port) if not is_public_address(a)]
    if blocked:
        raise FetchError("blocked_address", f"{parts.hostname} resolves to a non-public address ({blocked[0]})")


def fetch_image(url: str, settings: Settings, http: requests.Session | None = None) -> Fetched:
    """Download `url` under the limits in `settings`; raise `FetchError` on any failure."""
    http = http or requests.Session()
    deadline = time.monotonic() + settings.connect_timeout + 2 * settings.read_timeout
    for _hop in range(settings.max_redirects + 1):
        check_url(url, settings)
        response = request(http, url, settings)
        with response:
            if response.status_code in REDIRECT_STATUSES and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])
                continue
            if response.status_code >= 400:
                raise FetchError(f"http_{response.status_code}", f"server answered {response.status_code}")
            content_type = response.headers.get("Content-Type")
            if content_type and content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
                raise FetchError("not_an_image", f"the URL returned a web page ({content_type}), not an image")
            return Fetched(read_capped(response, settings, deadline), content_type, url)
    raise FetchError("too_many_redirects", f"more than {settings.max_redirects} redirects")


def request(http: requests.Session, url: str, settings: Settings) -> requests.Response:
    try:
        return http.get(
            url,
            stream=True,
            allow_redirects=False,
            timeout=(settings.connect_timeout, settings.read_timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "image/*"},
        )
    except requests.Timeout as exc:
        raise FetchError("timeout", f"timed out: {exc}") from exc
    except requests.exceptions.SSLError as exc:
        raise FetchError("tls_error", f"TLS failed: {exc}") from exc
    except requests.ConnectionError as exc:
        raise FetchError("connection_error", f"cannot connect: {exc}") from exc
    except requests.RequestException as exc:
        raise FetchError("fetch_error", str(exc)) from exc


def read_capped(response: requests.Response, settings: Settings, deadline: float) -> bytes:
    """The body, refusing more than `max_image_bytes` and anything past the overall deadline."""
    limit = settings.max_image_bytes
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FetchError("too_large", f"image is {int(declared):,} bytes; the limit is {limit:,}")
    body = bytearray()
    try:
        for chunk in response.iter_content(CHUNK_BYTES):
            body.extend(chunk)
            if len(body) > limit:
                raise FetchError("too_large", f"image exceeds the limit of {limit:,} bytes")
            if time.monotonic() > deadline:
                raise FetchError("timeout", "download took longer than the overall deadline")
    except requests.RequestException as exc:
        code = "timeout" if "timed out" in str(exc).lower() else "connection_error"
        raise FetchError(code, f"download interrupted: {exc}") from exc
    if not body:
        raise FetchError("empty_body", "the server sent no data")
    return bytes(body)
