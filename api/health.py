"""Health for load balancers and orchestrators.

`/livez` says only that the process answers (restart me if not). `/healthz` says whether it
can do its work: the database answers a query and the broker takes a connection (for Redis,
a fresh one, which pings; for the embedded broker, its folders are writable). Either down
is a 503, so a load balancer stops sending writes that would fail.
"""

from __future__ import annotations

import os

from flask import Response, current_app, jsonify
from flask_openapi3 import APIBlueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api import schemas
from api.context import celery, database, settings
from api.openapi import TAGS

bp = APIBlueprint("health", __name__, abp_tags=[TAGS["service"]])
UNHEALTHY = {
    "description": "The database or the broker is unreachable (the body says which).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
}


def database_ok() -> bool:
    try:
        with database().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        current_app.logger.warning("health check: database unavailable: %s", exc)
        return False
    return True


def broker_ok() -> bool:
    config = settings()
    if config.embedded_broker:
        folders = (config.broker_dir / "queue", config.broker_dir / "control")
        return all(folder.is_dir() and os.access(folder, os.W_OK) for folder in folders)
    try:
        with celery().connection_for_write() as connection:
            connection.ensure_connection(max_retries=0)
    except Exception as exc:  # noqa: BLE001 - kombu and the transports raise many kinds
        current_app.logger.warning("health check: broker unavailable: %s", exc)
        return False
    return True


@bp.get(
    "/livez",
    operation_id="live",
    summary="Liveness: the process answers (checks nothing else)",
    responses={200: schemas.Live},
)
def livez() -> tuple[Response, int]:
    return jsonify({"status": "ok"}), 200


@bp.get(
    "/healthz",
    operation_id="health",
    summary="Readiness: the database runs `SELECT 1` and the broker takes a connection",
    responses={200: schemas.Health, 503: UNHEALTHY},
)
def healthz() -> tuple[Response, int]:
    checks = {"database": database_ok(), "broker": broker_ok()}
    healthy = all(checks.values())
    body = {"status": "ok" if healthy else "error", **{name: "ok" if ok else "error" for name, ok in checks.items()}}
    return jsonify(body), 200 if healthy else 503
