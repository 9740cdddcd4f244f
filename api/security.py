"""What keeps a browser on another origin from using this API, and the headers every answer carries.

- Host allow-list (Flask's TRUSTED_HOSTS): a request naming another host is a 400, which is
  what defeats DNS rebinding (the attacker's name resolving to 127.0.0.1).
- State-changing requests must come from this app's own origin: `Sec-Fetch-Site` other than
  same-origin/none, or an `Origin` that is neither ours nor a configured CORS origin, is a 403.
  Requests authenticated by the session cookie also need the session's CSRF token in
  `X-CSRF-Token` (the cookie is SameSite=Strict as well).
- Headers on every response: a Content-Security-Policy without inline script and with
  `frame-ancestors 'none'`, `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`.
- CORS only for the origins `SOCIALFER_CORS_ORIGINS` names (flask-cors).
- Writes are rate-limited per key (Flask-Limiter): 429 with Retry-After.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from flask import Flask, g, request, session
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded

from api.errors import ApiError, error_response
from core.settings import Settings

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
CSRF_HEADER = "X-CSRF-Token"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def allowed_hosts(settings: Settings) -> list[str]:
    return list(settings.allowed_hosts or LOOPBACK_HOSTS)


def secret_key(settings: Settings) -> str:
    """`SOCIALFER_SECRET_KEY`, or one generated once and kept (mode 0600) in the data directory."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def own_origin() -> str:
    return f"{request.scheme}://{request.host}"


def check_origin(cors_origins: tuple[str, ...]) -> None:
    """`before_request`, after authorization: refuse state changes that a page elsewhere started."""
    if request.method not in UNSAFE_METHODS or request.routing_exception is not None:
        return
    fetch_site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if origin is not None and origin != own_origin() and origin not in cors_origins:
        raise ApiError(403, "cross_origin", f"requests that change data must come from {own_origin()}, not {origin}")
    if fetch_site is not None and fetch_site not in TRUSTED_FETCH_SITES and origin not in cors_origins:
        raise ApiError(403, "cross_origin", "requests that change data must come from this app's own pages")
    if g.get("auth_method") == "session":
        presented = request.headers.get(CSRF_HEADER, "")
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
            raise ApiError(403, "csrf_failed", f"a signed-in write needs the session's {CSRF_HEADER} header")


def add_security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def rate_limit_key() -> str:
    caller = g.get("caller")
    if caller is not None and caller.key_id is not None:
        return f"key:{caller.key_id}"
    if caller is not None and caller.name.startswith("env key"):
        return caller.name
    return f"address:{request.remote_addr}"


def limiter_storage(settings: Settings) -> str:
    if settings.rate_limit_storage_url:
        return settings.rate_limit_storage_url
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return settings.broker_url
    return "memory://"


def too_many_requests(exc: RateLimitExceeded):
    retry_after = exc.response.headers.get("Retry-After") if exc.response is not None else None
    headers = {"Retry-After": retry_after} if retry_after else {}
    return error_response(429, "rate_limited", f"too many writes: {exc.description}", headers)


def init_security(app: Flask, settings: Settings) -> Limiter:
    app.config["TRUSTED_HOSTS"] = allowed_hosts(settings)
    app.config["SECRET_KEY"] = secret_key(settings)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="socialfer_session",
    )
    app.before_request(lambda: check_origin(settings.cors_origins))
    app.after_request(add_security_headers)
    if settings.cors_origins:
        CORS(app, origins=list(settings.cors_origins), supports_credentials=False)
    limiter = Limiter(
        rate_limit_key,
        app=app,
        storage_uri=limiter_storage(settings),
        strategy="fixed-window",
        headers_enabled=True,
        swallow_errors=True,  # a rate-limit store that is down must not take the API down with it
    )
    app.register_error_handler(RateLimitExceeded, too_many_requests)
    return limiter


def limit_writes(app: Flask, limiter: Limiter, settings: Settings, endpoints: list[str]) -> None:
    """One shared write budget per key across `endpoints` (submitting, uploading, deleting)."""
    shared = limiter.shared_limit(settings.write_rate_limit, scope="writes")
    for endpoint in endpoints:
        view = app.view_functions.get(endpoint)
        if view is not None:
            app.view_functions[endpoint] = shared(view)
