"""The page at `/`: what has been analysed so far, from the same queries as the API."""

from __future__ import annotations

from flask import Blueprint, render_template

from api.context import database
from api.serialize import batch_json
from db.queries import batch_counts, latest_batches, stats

bp = Blueprint("overview", __name__)
RECENT_BATCHES = 20


@bp.get("/")
def index() -> str:
    with database().session() as session:
        summary = stats(session)
        batches = latest_batches(session, RECENT_BATCHES)
        counts = batch_counts(session, [batch.id for batch in batches])
        recent = [batch_json(batch, counts[batch.id]) for batch in batches]
    return render_template("overview.html", stats=summary, batches=recent)
