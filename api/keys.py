"""Managing API keys over HTTP (admin): list, create (the key is in this answer only), revoke."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint

from api import schemas
from api.auth import actor_name
from api.context import database
from api.errors import ApiError
from api.openapi import DATA_ROUTE_ERRORS, NOT_FOUND, TAGS, WRITE_ERRORS, WRITE_SECURITY, error_answer
from api.serialize import iso
from db.access import create_key, list_keys, revoke_key
from db.schema import ApiKey

bp = APIBlueprint("keys", __name__, url_prefix="/api/v1", abp_tags=[TAGS["access"]], abp_responses=DATA_ROUTE_ERRORS)


def key_json(row: ApiKey) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "scope": row.scope,
        "prefix": row.prefix,
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "revoked_at": iso(row.revoked_at),
    }


@bp.get(
    "/keys",
    operation_id="listKeys",
    summary="Every API key (admin)",
    security=WRITE_SECURITY,
    responses={200: schemas.KeyList},
)
def list_keys_route() -> Response:
    return jsonify({"items": [key_json(row) for row in list_keys(database())]})


@bp.post(
    "/keys",
    operation_id="createKey",
    summary="Create an API key (admin); the key is in this answer only",
    security=WRITE_SECURITY,
    responses={
        201: schemas.KeyCreated,
        400: error_answer("`invalid_json`, `invalid_name`, `invalid_scope`."),
        **WRITE_ERRORS,
    },
)
def create_key_route(body: schemas.KeyCreate) -> tuple[Response, int]:
    row, key = create_key(database(), body.name, body.scope, actor=actor_name())
    return jsonify({**key_json(row), "key": key}), 201


@bp.delete(
    "/keys/<id:key_id>",
    operation_id="revokeKey",
    summary="Revoke an API key (admin): it and its sessions stop working at once",
    security=WRITE_SECURITY,
    responses={200: schemas.KeyRevoked, 404: NOT_FOUND, **WRITE_ERRORS},
)
def revoke_key_route(path: schemas.KeyPath) -> Response:
    if not revoke_key(database(), path.key_id, actor_name()):
        raise ApiError(404, "not_found", f"no live key {path.key_id}")
    return jsonify({"id": path.key_id, "revoked": True})
