"""Images: one with its outcome and faces, the latest across batches, and their previews."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy.orm import selectinload

from api.context import database
from api.errors import ApiError
from api.params import choice_arg, filters_arg, int_arg, page_size_arg
from api.serialize import image_json
from core.vocabulary import IMAGE_STATES
from db import PREVIEW, Image, ImageFile
from db.queries import recent_images

bp = Blueprint("images", __name__, url_prefix="/api/v1")

PREVIEW_MAX_AGE = 3600  # seconds a browser may reuse a preview: it never changes, but it may be pruned


@bp.get("/images")
def list_images() -> Response:
    """Newest first across batches, for the dashboard's thumbnails; filters as `/stats` takes them."""
    filters = filters_arg()
    status = choice_arg("status", IMAGE_STATES)
    limit, cursor = page_size_arg("limit"), int_arg("cursor")
    with database().session() as session:
        images, next_cursor = recent_images(session, filters, status=status, limit=limit, cursor=cursor)
        return jsonify({"items": [image_json(image) for image in images], "next_cursor": next_cursor})


@bp.get("/images/<id:image_id>")
def get_image(image_id: int) -> Response:
    with database().session() as session:
        image = session.get(Image, image_id, options=[selectinload(Image.faces)])
        if image is None:
            raise ApiError(404, "not_found", f"image {image_id} not found")
        return jsonify(image_json(image))


@bp.get("/images/<id:image_id>/preview")
def get_preview(image_id: int) -> Response:
    """The downscaled JPEG the worker kept; face boxes are in original pixels (scale by width/height)."""
    with database().session() as session:
        preview = session.get(ImageFile, (image_id, PREVIEW))
        if preview is None:
            raise ApiError(
                404, "not_found", f"image {image_id} has no preview (not analysed, failed, or past the retention time)"
            )
        response = Response(preview.data, mimetype=preview.content_type)
    response.cache_control.private = True
    response.cache_control.max_age = PREVIEW_MAX_AGE
    return response
