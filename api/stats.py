"""Aggregates over analysed images: counts and emotion shares with intervals, the same over time, and comparisons."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint

from analysis.report import comparison, with_intervals
from api import schemas
from api.confusion import requested_confusion
from api.context import database, settings
from api.openapi import DATA_ROUTE_ERRORS, READ_ERRORS, TAGS
from api.serialize import iso, timeline_json
from core.filters import Filters
from db.queries import stats, timeline

bp = APIBlueprint("stats", __name__, url_prefix="/api/v1", abp_tags=[TAGS["stats"]], abp_responses=DATA_ROUTE_ERRORS)
SIDES = ("a", "b")


@bp.get(
    "/stats",
    operation_id="getStats",
    summary="Counts and emotion shares, with 95 % intervals and corrected shares, over analysed (done) images",
    description="Images count those with status `done` (time filters on `finished_at`); faces count faces found in "
    "them (time filters on `analyzed_at`). `share` is count / faces, 0 when there are no faces. `by_platform` has an "
    "entry for each platform with done images under the filters. Every share has a 95 % `interval` (images as "
    "clusters) and a `corrected` estimate of the true share, with its interval; a block with fewer images with faces "
    "than `statistics.min_images` has `reliable: false`. See docs/statistics.md.",
    responses={200: schemas.Stats, **READ_ERRORS},
)
def get_stats(query: schemas.StatsQuery) -> Response:
    confusion, note = requested_confusion(query.matrix)
    with database().session() as session:
        result = stats(session, query.filters(), with_pairs=True)
    return jsonify(with_intervals(result, confusion, settings().min_images_for_share, note))


@bp.get(
    "/timeline",
    operation_id="getTimeline",
    summary="Faces per emotion per hour or day",
    description="The range is `since`..`until`; each defaults to the first or last face under the filters (`start` "
    "and `end` in the answer; null when there are none). `bucket` defaults to `hour` for a range of up to 3 days, "
    "else `day`. Buckets are UTC hours or days; those without faces are left out.",
    responses={200: schemas.Timeline, **READ_ERRORS},
)
def get_timeline(query: schemas.TimelineQuery) -> Response:
    """Faces per emotion per hour or day; the bucket follows the range unless asked for."""
    with database().session() as session:
        return jsonify(timeline_json(timeline(session, query.filters(), bucket=query.bucket)))


@bp.get(
    "/compare",
    operation_id="compareStats",
    summary="Emotion shares of two filter sets side by side, and their differences",
    description="Two sets of faces, `a` and `b`, each given by `a.platform`, `a.batch_id`, `a.since`, `a.until` (and "
    "`b.` the same); an unprefixed filter applies to both sets unless a set's own overrides it "
    "(`platform=instagram&a.until=2025-03-01&b.since=2025-03-01`). Per emotion: a - b of the raw and of the corrected "
    "shares, a 95 % interval, a p-value, and whether the difference is distinguishable from zero after Holm's "
    "correction for the seven comparisons. The sets are treated as independent: when they share images, the "
    "intervals are conservative. See docs/statistics.md.",
    responses={200: schemas.Comparison, **READ_ERRORS},
)
def get_compare(query: schemas.CompareQuery) -> Response:
    """Two filter sets side by side and, per emotion, a - b with its interval and a Holm-adjusted test."""
    sides = [query.side(side) for side in SIDES]
    confusion, note = requested_confusion(query.matrix)
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
