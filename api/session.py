"""The dashboard's sign-in: a key becomes a signed, HttpOnly, SameSite=Strict session cookie.

The key itself never reaches the page's storage: the page posts it once, the cookie then
carries only a reference (a stored key's id, or the digest of a bootstrap key), checked on
every request. Writes through the cookie need the CSRF token this route hands out.
"""

from __future__ import annotations

from flask import Response, jsonify, session
from flask_openapi3 import APIBlueprint

from api import schemas
from api.auth import current_caller, open_mode
from api.context import database, settings
from api.errors import ApiError
from api.openapi import FORBIDDEN, INTERNAL_ERROR, TAGS, UNAUTHORIZED, error_answer
from api.security import csrf_token
from db.access import audit, authenticate, key_digest

bp = APIBlueprint(
    "session", __name__, url_prefix="/api/v1", abp_tags=[TAGS["access"]], abp_responses={500: INTERNAL_ERROR}
)


def session_json() -> dict:
    caller = current_caller()
    signed_in = caller is not None and ("key_id" in session or "env_key" in session)
    return {
        "open_mode": open_mode(),
        "public_reads": settings().public_reads,
        "signed_in": signed_in,
        "name": caller.name if signed_in else None,
        "scope": caller.scope if signed_in else None,
        "csrf_token": csrf_token(),
    }


@bp.get(
    "/session",
    operation_id="getSession",
    summary="Who this browser is signed in as, and the CSRF token for its writes",
    responses={200: schemas.SessionState},
)
def get_session() -> Response:
    return jsonify(session_json())


@bp.post(
    "/session",
    operation_id="signIn",
    summary="Sign in: exchange an API key for a session cookie",
    responses={
        200: schemas.SessionState,
        400: error_answer("`invalid_key`: no key given."),
        401: UNAUTHORIZED,
        403: FORBIDDEN,
    },
)
def sign_in(body: schemas.SignIn) -> Response:
    caller = authenticate(database(), body.key, settings().api_keys)
    if caller is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key")
    session.clear()
    if caller.key_id is not None:
        session["key_id"] = caller.key_id
    else:
        session["env_key"] = key_digest(body.key)
    audit(database(), caller.name, "sign_in", None)
    return jsonify({**session_json(), "signed_in": True, "name": caller.name, "scope": caller.scope})


@bp.delete(
    "/session",
    operation_id="signOut",
    summary="Sign out: the session cookie is cleared",
    responses={200: schemas.SignedOut, 403: FORBIDDEN},
)
def sign_out() -> Response:
    session.clear()
    return jsonify({"signed_in": False, "csrf_token": csrf_token()})
