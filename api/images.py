"""Images: one with its outcome and faces, the latest across batches, and their previews."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint
from sqlalchemy.orm import selectinload

from api import schemas
from api.auth import actor_name
from api.context import database
from api.errors import ApiError
from api.openapi import (
    DATA_ROUTE_ERRORS,
    NOT_FOUND,
    READ_ERRORS,
    TAGS,
    WRITE_ERRORS,
    WRITE_SECURITY,
    error_answer,
    media_answer,
)
from api.schemas import page_size
from api.serialize import image_json
from db import PREVIEW, Image, ImageFile
from db.access import audit
from db.lifecycle import delete_image
from db.queries import recent_images

bp = APIBlueprint("images", __name__, url_prefix="/api/v1", abp_tags=[TAGS["images"]], abp_responses=DATA_ROUTE_ERRORS)

PREVIEW_MAX_AGE = 3600  # seconds a browser may reuse a preview: it never changes, but it may be pruned


@bp.get(
    "/images",
    operation_id="listImages",
    summary="Images across batches, newest first, with their faces, keyset-paginated",
    description="Time filters apply to `finished_at`, so they keep only done and failed images. Pass `next_cursor` "
    "as `cursor` for the next page.",
    responses={200: schemas.ImageList, **READ_ERRORS},
)
def list_images(query: schemas.ImageListQuery) -> Response:
    """Newest first across batches, for the dashboard's thumbnails; filters as `/stats` takes them."""
    limit = page_size(query.limit)
    with database().session() as session:
        images, next_cursor = recent_images(
            session, query.filters(), status=query.status, limit=limit, cursor=query.cursor
        )
        return jsonify({"items": [image_json(image) for image in images], "next_cursor": next_cursor})


@bp.get(
    "/images/<id:image_id>",
    operation_id="getImage",
    summary="An image, its outcome and its faces",
    responses={200: schemas.Image, 404: NOT_FOUND},
)
def get_image(path: schemas.ImagePath) -> Response:
    with database().session() as session:
        image = session.get(Image, path.image_id, options=[selectinload(Image.faces)])
        if image is None:
            raise ApiError(404, "not_found", f"image {path.image_id} not found")
        return jsonify(image_json(image))


@bp.get(
    "/images/<id:image_id>/preview",
    operation_id="getImagePreview",
    summary="The downscaled JPEG the worker kept of an analysed image",
    description="At most `SOCIALFER_PREVIEW_MAX_SIDE` (640) pixels on the longer side, kept "
    "`SOCIALFER_PREVIEW_RETENTION_DAYS` (30) days. Face boxes are in the original image's pixels: scale by the "
    "preview's size over the image's `width` and `height`.",
    responses={
        200: media_answer("The preview.", "image/jpeg", {"type": "string", "format": "binary"}),
        404: error_answer(
            "`not_found`: no such image, or it has no preview (not analysed yet, failed, or past the retention time)."
        ),
    },
)
def get_preview(path: schemas.ImagePath) -> Response:
    """The downscaled JPEG the worker kept; face boxes are in original pixels (scale by width/height)."""
    image_id = path.image_id
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


@bp.delete(
    "/images/<id:image_id>",
    operation_id="deleteImage",
    summary="Erase one image (admin) with its faces and files; its batch keeps the others",
    security=WRITE_SECURITY,
    responses={200: schemas.Deleted, 404: NOT_FOUND, **WRITE_ERRORS},
)
def delete_image_route(path: schemas.ImagePath) -> Response:
    if not delete_image(database(), path.image_id):
        raise ApiError(404, "not_found", f"image {path.image_id} not found")
    audit(database(), actor_name(), "delete_image", f"image {path.image_id}", 1)
    return jsonify({"id": path.image_id, "deleted": True})
