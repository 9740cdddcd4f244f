"""What the queue holds and whether workers are taking from it: the dashboard's "failed images"
headline and its "no worker running" warning."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.context import database
from api.params import filters_arg
from api.serialize import iso
from db.queries import image_states, queue_activity
from db.schema import utcnow

bp = Blueprint("queue", __name__, url_prefix="/api/v1")


@bp.get("/queue")
def get_queue() -> Response:
    """Images per state under the filters; the worker verdict always over everything."""
    filters = filters_arg()
    with database().session() as session:
        images = image_states(session, filters)
        activity = queue_activity(session, utcnow())
    worker = {
        "state": activity["state"],
        "queued": activity["queued"],
        "processing": activity["processing"],
        "oldest_queued_at": iso(activity["oldest_queued_at"]),
        "last_finished_at": iso(activity["last_finished_at"]),
    }
    return jsonify({"images": images, "worker": worker})
