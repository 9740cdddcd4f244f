"""Submitting batches of image URLs and following their progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Response, current_app, jsonify, url_for
from flask_openapi3 import APIBlueprint

from api import schemas
from api.auth import actor_name
from api.context import celery, database, settings
from api.errors import ApiError
from api.openapi import (
    BROKER_UNAVAILABLE,
    DATA_ROUTE_ERRORS,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    READ_ERRORS,
    TAGS,
    WRITE_ERRORS,
    WRITE_SECURITY,
    error_answer,
)
from api.platforms import infer_platform
from api.schemas import page_size
from api.serialize import batch_json, image_json
from db import Batch
from db.access import audit
from db.lifecycle import NewImage, UploadedFile, delete_batch, store_batch, withdraw_batch
from db.queries import batch_counts, images_page, latest_batches
from db.upload_store import UploadQueueFull, UploadStream
from workers.celery_app import publish_images

bp = APIBlueprint(
    "batches", __name__, url_prefix="/api/v1", abp_tags=[TAGS["batches"]], abp_responses=DATA_ROUTE_ERRORS
)
# What a submission may answer besides 202, for POST /batches and POST /uploads alike.
SUBMIT_ERRORS: dict[int, Any] = {**WRITE_ERRORS, 413: PAYLOAD_TOO_LARGE, 503: BROKER_UNAVAILABLE}


@dataclass(frozen=True)
class NewBatch:
    urls: list[str]
    platform: str | None
    name: str | None
    files: list[UploadedFile | UploadStream] = field(default_factory=list)  # for uploads: one per URL, in order
    callback_url: str | None = None  # POSTed the batch's summary when it ends (workers/webhooks.py)


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
    bound = settings().max_queued_upload_bytes if new.files else None
    try:
        batch_id, image_ids = store_batch(
            database(),
            images,
            name=new.name,
            platform=new.platform,
            callback_url=new.callback_url,
            max_queued_upload_bytes=bound,
        )
    except UploadQueueFull as exc:
        message = f"{exc}; nothing was stored, retry when the workers have caught up"
        raise ApiError(507, "upload_queue_full", message) from None
    try:
        publish_images(celery(), image_ids)
    except Exception as exc:
        current_app.logger.warning("broker unavailable, batch %s withdrawn: %s", batch_id, exc)
        withdraw_batch(database(), batch_id)
        raise ApiError(503, "broker_unavailable", "job queue unavailable; nothing was stored, retry later") from exc
    audit(database(), actor_name(), "upload" if new.files else "submit", f"batch {batch_id}", len(image_ids))
    return jsonify(batch_or_404(batch_id)), 202, {"Location": url_for("batches.get_batch", batch_id=batch_id)}


@bp.post(
    "/batches",
    operation_id="createBatch",
    summary="Submit a batch of image URLs",
    description="Validates the whole request, stores the batch and its images (status `queued`) in one transaction, "
    "then queues one analysis task per image. A rejected request stores nothing. Each image's platform is the "
    "request's `platform` if given, else inferred from the URL's host.",
    security=WRITE_SECURITY,
    responses={
        202: schemas.BatchAccepted,
        400: error_answer(
            "Invalid request. Codes: `invalid_json` (body not a JSON object), `invalid_urls` (missing, not a list, "
            "empty or too many), `invalid_url` (message starts with `urls[<index>]:`), `invalid_platform`, "
            "`invalid_name`, `invalid_callback_url`."
        ),
        **SUBMIT_ERRORS,
    },
)
def create_batch(body: schemas.BatchCreate) -> tuple[Response, int, dict[str, str]]:
    return accept_batch(
        NewBatch(urls=body.urls, platform=body.platform, name=body.name, callback_url=body.callback_url)
    )


@bp.get(
    "/batches",
    operation_id="listBatches",
    summary="Recent batches, newest first",
    description="Filtered like the dashboard: `platform` keeps batches with at least one image on that platform; "
    "`batch_id` keeps that batch; `since`/`until` bound the time the batch was created.",
    responses={200: schemas.BatchList, **READ_ERRORS},
)
def list_batches(query: schemas.BatchListQuery) -> Response:
    with database().session() as session:
        batches = latest_batches(session, page_size(query.limit), query.filters())
        counts = batch_counts(session, [batch.id for batch in batches], query.filters())
        return jsonify({"items": [batch_json(batch, counts[batch.id]) for batch in batches]})


@bp.get(
    "/batches/<id:batch_id>",
    operation_id="getBatch",
    summary="A batch and its progress",
    responses={200: schemas.Batch, 404: NOT_FOUND},
)
def get_batch(path: schemas.BatchPath) -> Response:
    return jsonify(batch_or_404(path.batch_id))


@bp.get(
    "/batches/<id:batch_id>/images",
    operation_id="listBatchImages",
    summary="A batch's images with their faces, by id, one page at a time",
    responses={200: schemas.ImagePage, **READ_ERRORS, 404: NOT_FOUND},
)
def list_batch_images(path: schemas.BatchPath, query: schemas.BatchImagesQuery) -> Response:
    per_page = page_size(query.per_page)
    with database().session() as session:
        if session.get(Batch, path.batch_id) is None:
            raise ApiError(404, "not_found", f"batch {path.batch_id} not found")
        images, total = images_page(session, path.batch_id, status=query.status, page=query.page, per_page=per_page)
        return jsonify(
            {
                "items": [image_json(image) for image in images],
                "page": query.page,
                "per_page": per_page,
                "total": total,
                "pages": -(-total // per_page),
            }
        )


@bp.delete(
    "/batches/<id:batch_id>",
    operation_id="deleteBatch",
    summary="Erase a batch (admin): its images, faces, previews and upload bytes",
    description="The stats and rollups follow at once. Recorded in the audit log.",
    security=WRITE_SECURITY,
    responses={200: schemas.Deleted, 404: NOT_FOUND, **WRITE_ERRORS},
)
def delete_batch_route(path: schemas.BatchPath) -> Response:
    images = delete_batch(database(), path.batch_id)
    if images is None:
        raise ApiError(404, "not_found", f"batch {path.batch_id} not found")
    audit(database(), actor_name(), "delete_batch", f"batch {path.batch_id}", images)
    return jsonify({"id": path.batch_id, "deleted": True, "images": images})
