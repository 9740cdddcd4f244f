"""Who may call which route: API keys with scopes, the dashboard's session, and open mode.

Every route has one rule in `ACCESS`, keyed by endpoint: `public` (health, static files,
page shells, the API document, signing in), or the scope a key needs (`read` < `write` <
`admin`). A route without a rule is refused with 403 until it gets one, and the
authorization matrix test fails, so a new route cannot slip through open.

A caller is identified by `Authorization: Bearer <key>` (keys from `socialfer keys create`,
or the bootstrap admin keys of `SOCIALFER_API_KEYS`), or by the dashboard's signed session
cookie, which holds a key's id and is checked against the database on every request (a
revoked key signs its sessions out). When no key exists at all the service is in open
mode, the embedded default's first look: everything is allowed, and `socialfer serve`
only listens on loopback then. `SOCIALFER_PUBLIC_READS=1` opens the read routes even
when keys exist.
"""

from __future__ import annotations

import time

from flask import Flask, current_app, g, request, session

from api.context import database, settings
from api.errors import ApiError
from core.vocabulary import ADMIN, READ, WRITE, scope_allows
from db.access import Caller, authenticate, bootstrap_by_digest, caller_by_key_id, live_key_count

PUBLIC = "public"
OPEN_MODE_CALLER = Caller(name="open mode", scope=ADMIN)
KEY_COUNT_TTL = 2.0  # seconds the "does any key exist" answer is reused within a process

ACCESS: dict[str, str] = {
    "static": PUBLIC,
    "health.healthz": PUBLIC,
    "health.livez": PUBLIC,
    "pages.dashboard": PUBLIC,  # page shells: every number on them comes from the API, under its rules
    "pages.image_page": PUBLIC,
    "pages.signin_page": PUBLIC,
    "docs.openapi": PUBLIC,
    "docs.api_docs": PUBLIC,
    "docs.static": PUBLIC,  # Swagger UI's files
    "session.get_session": PUBLIC,
    "session.sign_in": PUBLIC,
    "session.sign_out": PUBLIC,
    "batches.create_batch": WRITE,
    "uploads.create_upload": WRITE,
    "batches.list_batches": READ,
    "batches.get_batch": READ,
    "batches.list_batch_images": READ,
    "batches.delete_batch_route": ADMIN,
    "images.list_images": READ,
    "images.get_image": READ,
    "images.get_preview": READ,
    "images.delete_image_route": ADMIN,
    "faces.list_faces": READ,
    "faces.export_faces": READ,
    "stats.get_stats": READ,
    "stats.get_timeline": READ,
    "stats.get_compare": READ,
    "queue.get_queue": READ,
    "audit.list_audit": ADMIN,
    "keys.list_keys_route": ADMIN,
    "keys.create_key_route": ADMIN,
    "keys.revoke_key_route": ADMIN,
    "metrics.metrics": ADMIN,  # Prometheus scrapes with an admin key
}


def open_mode() -> bool:
    """No key anywhere: neither bootstrap keys nor a live stored key."""
    if settings().api_keys:
        return False
    cache = current_app.extensions.setdefault("socialfer_key_count", {"at": 0.0, "count": 0})
    if time.monotonic() - cache["at"] > KEY_COUNT_TTL:
        cache["count"], cache["at"] = live_key_count(database()), time.monotonic()
    return cache["count"] == 0


def bearer_key() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise unauthorized("malformed Authorization header: use Authorization: Bearer <key>")
    return presented.strip()


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


def identify() -> Caller | None:
    """The caller behind this request's key or session cookie; a key that does not check out is a 401."""
    presented = bearer_key()
    if presented is not None:
        caller = authenticate(database(), presented, settings().api_keys)
        if caller is None:
            raise unauthorized("unknown or revoked API key")
        g.auth_method = "bearer"
        return caller
    env_digest = session.get("env_key")
    if env_digest is not None:
        caller = bootstrap_by_digest(env_digest, settings().api_keys)
        if caller is None:
            session.clear()
            return None
        g.auth_method = "session"
        return caller
    key_id = session.get("key_id")
    if key_id is not None:
        caller = caller_by_key_id(database(), int(key_id))
        if caller is None:
            session.clear()  # the key was revoked: its sessions end
            return None
        g.auth_method = "session"
        return caller
    return None


def required_scope() -> str:
    rule = ACCESS.get(request.endpoint or "")
    if rule is None:
        raise ApiError(403, "no_access_rule", f"route {request.endpoint} has no access rule")
    if rule == READ and settings().public_reads:
        return PUBLIC
    return rule


def authorize() -> None:
    """`before_request`: find the caller, then check the route's rule. Unrouted requests get their 404/405."""
    if request.routing_exception is not None:
        return
    g.auth_method = None
    needed = required_scope()
    try:
        caller = identify()
    except ApiError:
        if needed != PUBLIC:
            raise
        caller = None  # a public route answers whatever key comes with it
    if needed == PUBLIC:  # answered without asking the database whether keys exist (health checks)
        g.caller = caller
        return
    if caller is None and open_mode():
        caller = OPEN_MODE_CALLER
    g.caller = caller
    if caller is None:
        raise unauthorized(f"this route needs an API key with the {needed} scope: Authorization: Bearer <key>")
    if not scope_allows(caller.scope, needed):
        raise ApiError(
            403, "forbidden", f"this route needs the {needed} scope; the key {caller.name!r} has {caller.scope}"
        )


def current_caller() -> Caller | None:
    return g.get("caller")


def actor_name() -> str:
    """How the audit log names whoever made this request."""
    caller = current_caller()
    return caller.name if caller is not None else "anonymous"


def register_auth(app: Flask) -> None:
    app.before_request(authorize)
