"""Faces across all batches, newest first, filtered and keyset-paginated."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.context import database
from api.params import choice_arg, int_arg, page_size_arg, window_args
from api.serialize import face_json
from db.queries import faces_page
from models.labels import EMOTIONS

bp = Blueprint("faces", __name__, url_prefix="/api/v1")


@bp.get("/faces")
def list_faces() -> Response:
    filters = window_args()
    emotion = choice_arg("emotion", EMOTIONS)
    limit, cursor = page_size_arg("limit"), int_arg("cursor")
    with database().session() as session:
        faces, next_cursor = faces_page(session, emotion=emotion, limit=limit, cursor=cursor, **filters)
        return jsonify({"items": [face_json(face, listing=True) for face in faces], "next_cursor": next_cursor})
