"""Submitting batches of image URLs and following their progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from api.context import celery, database, settings
from api.errors import ApiError
from api.params import choice_arg, filters_arg, int_arg, page_size_arg
from api.platforms import infer_platform
from api.serialize import batch_json, image_json
from core.settings import Settings
from core.vocabulary import IMAGE_STATES, PLATFORMS
from db import Batch
from db.lifecycle import NewImage, UploadedFile, store_batch, withdraw_batch
from db.queries import batch_counts, images_page, latest_batches
from workers.celery_app import publish_images

bp = Blueprint("batches", __name__, url_prefix="/api/v1")

MAX_NAME_LENGTH = 200  # Batch.name is VARCHAR(200)
URL_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class NewBatch:
    urls: list[str]
    platform: str | None
    name: str | None
    files: list[UploadedFile] = field(default_factory=list)  # for uploads: one per URL, in order


def url_problem(url: object, max_length: int) -> str | None:
    """Why `url` cannot be fetched, or None if it can; the worker decides about private hosts."""
    if not isinstance(url, str):
        return "must be a string"
    if len(url) > max_length:
        return f"longer than {max_length} characters"
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        return "contains whitespace or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme.lower() not in URL_SCHEMES:
        return "scheme must be http or https"
    if not parts.hostname:
        return "has no host"
    return None


def parse_new_batch(body: Any, config: Settings) -> NewBatch:
    """Validate the whole request before anything is stored, so a rejected batch leaves no trace."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object (Content-Type: application/json)")
    urls = body.get("urls")
    if not isinstance(urls, list):
        raise ApiError(400, "invalid_urls", "urls: required, a list of image URLs")
    if not 1 <= len(urls) <= config.max_batch_urls:
        raise ApiError(400, "invalid_urls", f"urls: must hold 1 to {config.max_batch_urls} URLs, got {len(urls)}")
    for index, url in enumerate(urls):
        problem = url_problem(url, config.max_url_length)
        if problem:
            raise ApiError(400, "invalid_url", f"urls[{index}]: {problem}")
    return NewBatch(urls=urls, platform=parse_platform(body.get("platform")), name=parse_name(body.get("name")))


def parse_platform(platform: Any) -> str | None:
    if platform is not None and platform not in PLATFORMS:
        raise ApiError(400, "invalid_platform", f"platform: must be one of {', '.join(PLATFORMS)}")
    return platform


def parse_name(name: Any) -> str | None:
    """A batch label; blank means none."""
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME_LENGTH):
        raise ApiError(400, "invalid_name", f"name: must be a string of at most {MAX_NAME_LENGTH} characters")
    return (name or "").strip() or None


def batch_or_404(batch_id: int) -> dict[str, Any]:
    with database().session() as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise ApiError(404, "not_found", f"batch {batch_id} not found")
        return batch_json(batch, batch_counts(session, [batch_id])[batch_id])


def accept_batch(new: NewBatch) -> tuple[Response, int, dict[str, str]]:
    """Store first, publish after commit: a worker must find the image row when its task arrives.

    If the broker cannot take the tasks the batch is deleted again, so a 503 leaves no trace.
    """
    uploads = new.files or [None] * len(new.urls)
    images = [
        NewImage(url, new.platform or infer_platform(url), upload)
        for url, upload in zip(new.urls, uploads, strict=True)
    ]
    batch_id, image_ids = store_batch(database(), images, name=new.name, platform=new.platform)
    try:
        publish_images(celery(), image_ids)
    except Exception as exc:
        current_app.logger.warning("broker unavailable, batch %s withdrawn: %s", batch_id, exc)
        withdraw_batch(database(), batch_id)
        raise ApiError(503, "broker_unavailable", "job queue unavailable; nothing was stored, retry later") from exc
    return jsonify(batch_or_404(batch_id)), 202, {"Location": url_for("batches.get_batch", batch_id=batch_id)}


@bp.post("/batches")
def create_batch() -> tuple[Response, int, dict[str, str]]:
    return accept_batch(parse_new_batch(request.get_json(silent=True), settings()))


@bp.get("/batches")
def list_batches() -> Response:
    limit = page_size_arg("limit")
    filters = filters_arg()
    with database().session() as session:
        batches = latest_batches(session, limit, filters)
        counts = batch_counts(session, [batch.id for batch in batches])
        return jsonify({"items": [batch_json(batch, counts[batch.id]) for batch in batches]})


@bp.get("/batches/<id:batch_id>")
def get_batch(batch_id: int) -> Response:
    return jsonify(batch_or_404(batch_id))


@bp.get("/batches/<id:batch_id>/images")
def list_batch_images(batch_id: int) -> Response:
    page = int_arg("page") or 1
    per_page = page_size_arg("per_page")
    status = choice_arg("status", IMAGE_STATES)
    with database().session() as session:
        if session.get(Batch, batch_id) is None:
            raise ApiError(404, "not_found", f"batch {batch_id} not found")
        images, total = images_page(session, batch_id, status=status, page=page, per_page=per_page)
        return jsonify(
            {
                "items": [image_json(image) for image in images],
                "page": page,
                "per_page": per_page,
                "total": total,
                "pages": -(-total // per_page),
            }
        )
