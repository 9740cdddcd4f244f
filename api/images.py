"""One image with its outcome and faces."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy.orm import selectinload

from api.context import database
from api.errors import ApiError
from api.serialize import image_json
from db import Image

bp = Blueprint("images", __name__, url_prefix="/api/v1")


@bp.get("/images/<id:image_id>")
def get_image(image_id: int) -> Response:
    with database().session() as session:
        image = session.get(Image, image_id, options=[selectinload(Image.faces)])
        if image is None:
            raise ApiError(404, "not_found", f"image {image_id} not found")
        return jsonify(image_json(image))
