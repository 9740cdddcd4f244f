"""Aggregates over analysed images: counts and emotion shares with intervals, the same over time, and comparisons."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from analysis.report import comparison, with_intervals
from api.confusion import requested_confusion
from api.context import database, settings
from api.params import choice_arg, filters_arg
from api.serialize import iso, timeline_json
from core.filters import Filters
from db.queries import BUCKETS, stats, timeline

bp = Blueprint("stats", __name__, url_prefix="/api/v1")
SIDES = ("a", "b")


@bp.get("/stats")
def get_stats() -> Response:
    """Counts and shares, each share with its 95 % interval and its corrected estimate (docs/statistics.md)."""
    filters = filters_arg()
    confusion, note = requested_confusion()
    with database().session() as session:
        result = stats(session, filters, with_pairs=True)
    return jsonify(with_intervals(result, confusion, settings().min_images_for_share, note))


@bp.get("/timeline")
def get_timeline() -> Response:
    """Faces per emotion per hour or day; the bucket follows the range unless asked for."""
    filters = filters_arg()
    bucket = choice_arg("bucket", BUCKETS)
    with database().session() as session:
        return jsonify(timeline_json(timeline(session, filters, bucket=bucket)))


def side_filters(common: Filters, prefix: str) -> Filters:
    """One side's filters: its own `a.`/`b.` parameters, else the ones without a prefix (shared by both)."""
    own = filters_arg(prefix)
    return Filters(
        platform=own.platform or common.platform,
        batch_id=own.batch_id or common.batch_id,
        since=own.since or common.since,
        until=own.until or common.until,
    )


@bp.get("/compare")
def get_compare() -> Response:
    """Two filter sets side by side and, per emotion, a - b with its interval and a Holm-adjusted test."""
    common = filters_arg()
    sides = [side_filters(common, f"{side}.") for side in SIDES]
    confusion, note = requested_confusion()
    with database().session() as session:
        results = [stats(session, filters, with_pairs=True) for filters in sides]
    answer = comparison(*results, confusion, settings().min_images_for_share, note)
    for side, filters in zip(SIDES, sides, strict=True):
        answer[side] = {"filters": filters_json(filters), **answer[side]}
    return jsonify(answer)


def filters_json(filters: Filters) -> dict[str, object]:
    return {
        "platform": filters.platform,
        "batch_id": filters.batch_id,
        "since": iso(filters.since),
        "until": iso(filters.until),
    }
