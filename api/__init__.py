"""The HTTP API: a Flask application factory over the database and the Celery broker.

Imports stay light on purpose: publishing is by task name through `workers.celery_app`,
so the API process never loads TensorFlow or the worker code.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from api import audit, batches, docs, faces, health, images, keys, metrics, pages, queue, session, stats, uploads
from api.auth import register_auth
from api.context import SETTINGS_KEY
from api.errors import register_error_handlers
from api.openapi import ApiApp
from api.schemas import MAX_ID
from api.security import init_security, limit_writes
from core.settings import Settings, load_settings
from db import Database
from workers.celery_app import celery_init_app

BLUEPRINTS = (
    batches.bp,
    uploads.bp,
    images.bp,
    faces.bp,
    stats.bp,
    queue.bp,
    health.bp,
    docs.bp,
    pages.bp,
    session.bp,
    keys.bp,
    audit.bp,
)
RATE_LIMITED_WRITES = [
    "batches.create_batch",
    "uploads.create_upload",
    "batches.delete_batch_route",
    "images.delete_image_route",
    "keys.create_key_route",
    "keys.revoke_key_route",
]
BODY_OVERHEAD = 64 * 1024  # JSON punctuation, name and platform around the URLs


class IdConverter(IntegerConverter):
    """`<id:name>` in routes: a positive id that fits the column; anything else is a 404."""

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def max_body_size(settings: Settings) -> int:
    """Large enough for the largest valid batch, so only bodies that could never be accepted get 413."""
    return settings.max_batch_urls * (settings.max_url_length + 8) + BODY_OVERHEAD


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app = ApiApp(__name__)
    app.config[SETTINGS_KEY] = settings
    app.config["MAX_CONTENT_LENGTH"] = max_body_size(settings)
    app.json.sort_keys = False  # keep emotions in model order and fields in documented order
    app.url_map.converters["id"] = IdConverter
    app.extensions["db"] = Database(settings.database_url)
    celery_init_app(app, settings)
    register_error_handlers(app)
    metrics.init_app(app)  # first, so its timer covers the other hooks
    register_auth(app)  # before the origin check and the rate limits, which need to know the caller
    limiter = init_security(app, settings)
    for blueprint in BLUEPRINTS:
        app.register_api(blueprint)
    limit_writes(app, limiter, settings, RATE_LIMITED_WRITES)
    return app
