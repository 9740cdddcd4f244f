"""What the queue holds and whether workers are taking from it: the dashboard's "failed images"
headline and its "no worker running" warning."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint

from api import schemas
from api.context import database
from api.openapi import DATA_ROUTE_ERRORS, READ_ERRORS, TAGS
from api.serialize import iso
from db.queries import image_states, queue_activity
from db.schema import utcnow

bp = APIBlueprint("queue", __name__, url_prefix="/api/v1", abp_tags=[TAGS["stats"]], abp_responses=DATA_ROUTE_ERRORS)


@bp.get(
    "/queue",
    operation_id="getQueue",
    summary="Images per state under the filters, and whether workers are taking from the queue",
    description="`images` counts images in each state under the filters (time filters apply to `finished_at`, so "
    "they keep only done and failed images). `worker` always looks at every image: `working` while one is being "
    "analysed, `idle` when none waits, `waiting` when some wait, and `stalled` when some have waited over 2 minutes "
    "and none finished meanwhile, which is what a queue without a running worker looks like.",
    responses={200: schemas.Queue, **READ_ERRORS},
)
def get_queue(query: schemas.WindowQuery) -> Response:
    """Images per state under the filters; the worker verdict always over everything."""
    with database().session() as session:
        images = image_states(session, query.filters())
        activity = queue_activity(session, utcnow())
    worker = {
        "state": activity["state"],
        "queued": activity["queued"],
        "processing": activity["processing"],
        "oldest_queued_at": iso(activity["oldest_queued_at"]),
        "last_finished_at": iso(activity["last_finished_at"]),
    }
    return jsonify({"images": images, "worker": worker})
