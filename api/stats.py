"""Aggregates over analysed images: counts and emotion shares, and the same over time."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.context import database
from api.params import choice_arg, filters_arg
from api.serialize import timeline_json
from db.queries import BUCKETS, stats, timeline

bp = Blueprint("stats", __name__, url_prefix="/api/v1")


@bp.get("/stats")
def get_stats() -> Response:
    filters = filters_arg()
    with database().session() as session:
        return jsonify(stats(session, filters))


@bp.get("/timeline")
def get_timeline() -> Response:
    """Faces per emotion per hour or day; the bucket follows the range unless asked for."""
    filters = filters_arg()
    bucket = choice_arg("bucket", BUCKETS)
    with database().session() as session:
        return jsonify(timeline_json(timeline(session, filters, bucket=bucket)))
