"""Liveness for load balancers and `socialfer status`: the process answers and the database does."""

from __future__ import annotations

from flask import Response, current_app, jsonify
from flask_openapi3 import APIBlueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api import schemas
from api.context import database
from api.openapi import TAGS

bp = APIBlueprint("health", __name__, abp_tags=[TAGS["service"]])
UNHEALTHY = {
    "description": "The database is unreachable.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
}


@bp.get(
    "/healthz",
    operation_id="health",
    summary="Liveness: the API answers and its database runs `SELECT 1`",
    responses={200: schemas.Health, 503: UNHEALTHY},
)
def healthz() -> tuple[Response, int]:
    try:
        with database().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        current_app.logger.warning("health check: database unavailable: %s", exc)
        return jsonify({"status": "error", "database": "error"}), 503
    return jsonify({"status": "ok", "database": "ok"}), 200
