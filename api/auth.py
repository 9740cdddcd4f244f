"""Bearer API keys for requests that change state; reads stay open.

With no keys configured (the embedded default) everything is open.
"""

from __future__ import annotations

import hmac

from flask import request

from api.context import settings
from api.errors import ApiError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def key_is_valid(presented: str, keys: tuple[str, ...]) -> bool:
    """Constant-time comparison against every key, so timing reveals neither key nor which one matched."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented.encode(), key.encode())
    return matched


def require_api_key() -> None:
    """`before_request` hook: 401 for an unsafe method without a valid `Authorization: Bearer` key.

    Requests that did not match a route are left to routing, so they still get 404/405.
    """
    keys = settings().api_keys
    if not keys or request.method in SAFE_METHODS or request.routing_exception is not None:
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key_is_valid(presented.strip(), keys):
        raise ApiError(
            401,
            "unauthorized",
            "a valid API key is required: Authorization: Bearer <key>",
            {"WWW-Authenticate": "Bearer"},
        )
