"""Whether `socialfer serve` may listen where it was asked to.

While no API key exists (no `SOCIALFER_API_KEYS`, none made by `socialfer keys create`)
the service is in open mode: anyone who reaches it may do anything. Fine on the loopback
interface of one machine, not on an address others can reach. So serving on any other
address needs a key, or the explicit `SOCIALFER_ALLOW_OPEN_API=1`.
"""

from __future__ import annotations

import ipaddress

from core.settings import Settings

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


def stored_key_count(settings: Settings) -> int:
    """Live keys in the database; 0 when it cannot be read yet (not migrated: no keys either)."""
    from db import Database
    from db.access import live_key_count

    database = Database(settings.database_url)
    try:
        return live_key_count(database)
    except Exception:  # noqa: BLE001 - an unmigrated or unreachable database holds no key we could honour
        return 0
    finally:
        database.dispose()


def open_api_refusal(host: str, settings: Settings, stored_keys: int = 0) -> str | None:
    """Why serving on `host` is refused, or None when it is allowed."""
    if settings.api_keys or stored_keys or settings.allow_open_api or is_loopback_host(host):
        return None
    return (
        f"refusing to serve an open API on {host}: with no API key anyone who can reach it may do anything. "
        "Set SOCIALFER_API_KEYS (or `socialfer keys create`), serve on 127.0.0.1, "
        "or set SOCIALFER_ALLOW_OPEN_API=1 to accept that."
    )
