"""Whether `socialfer serve` may listen where it was asked to.

Reads are open and, with no `SOCIALFER_API_KEYS`, so are writes: fine on the loopback
interface of one machine, not on an address others can reach. So serving on any other
address needs keys, or the explicit `SOCIALFER_ALLOW_OPEN_API=1`.
"""

from __future__ import annotations

import ipaddress

from socialfer.settings import Settings

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback_host(host: str) -> bool:
    """True for a loopback address or the name `localhost`; a wildcard (0.0.0.0, ::) or any other name is not."""
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_api_refusal(host: str, settings: Settings) -> str | None:
    """Why serving on `host` is refused, or None when it is allowed."""
    if settings.api_keys or settings.allow_open_api or is_loopback_host(host):
        return None
    return (
        f"refusing to serve an open API on {host}: without SOCIALFER_API_KEYS anyone who can reach it may "
        "submit work. Set SOCIALFER_API_KEYS, serve on 127.0.0.1, or set SOCIALFER_ALLOW_OPEN_API=1 to accept that."
    )
