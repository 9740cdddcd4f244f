"""Aggregates over analysed images: counts and emotion shares, and the same over time."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint

from api import schemas
from api.context import database
from api.openapi import DATA_ROUTE_ERRORS, READ_ERRORS, TAGS
from api.serialize import timeline_json
from db.queries import stats, timeline

bp = APIBlueprint("stats", __name__, url_prefix="/api/v1", abp_tags=[TAGS["stats"]], abp_responses=DATA_ROUTE_ERRORS)


@bp.get(
    "/stats",
    operation_id="getStats",
    summary="Counts and emotion shares over analysed (done) images",
    description="Images count those with status `done` (time filters on `finished_at`); faces count faces found in "
    "them (time filters on `analyzed_at`). `share` is count / faces, 0 when there are no faces. `by_platform` has an "
    "entry for each platform with done images under the filters.",
    responses={200: schemas.Stats, **READ_ERRORS},
)
def get_stats(query: schemas.WindowQuery) -> Response:
    with database().session() as session:
        return jsonify(stats(session, query.filters()))


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
