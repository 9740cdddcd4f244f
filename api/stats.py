"""Aggregate counts and emotion shares over analysed images."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.context import database
from api.params import window_args
from db.queries import stats

bp = Blueprint("stats", __name__, url_prefix="/api/v1")


@bp.get("/stats")
def get_stats() -> Response:
    filters = window_args()
    with database().session() as session:
        return jsonify(stats(session, **filters))
