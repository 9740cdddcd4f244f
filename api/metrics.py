"""The API's Prometheus metrics: requests by route and status, their latency, and `GET /metrics`.

The route label is the URL rule (`/api/v1/batches/<id:batch_id>`), never the raw path, so
the number of series stays fixed whatever clients send; unmatched paths count as `unmatched`.
Under gunicorn every worker process writes its own files and `/metrics` sums them all
(`socialfer.prometheus`). `/metrics` needs an admin key (`SOCIALFER_ADMIN_KEYS`, else one of
`SOCIALFER_API_KEYS`) whenever keys are configured.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from api.auth import key_is_valid
from api.context import settings
from api.errors import ApiError
from socialfer.prometheus import exposition_registry

bp = Blueprint("metrics", __name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUESTS = Counter("socialfer_http_requests", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "socialfer_http_request_duration_seconds", "Time to answer", ["method", "route"], buckets=LATENCY_BUCKETS
)


def start_timer() -> None:
    g.metrics_started = time.perf_counter()


def count_response(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    if started is not None:
        LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
    return response


def init_app(app: Flask) -> None:
    app.before_request(start_timer)
    app.after_request(count_response)
    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics() -> Response:
    config = settings()
    keys = config.admin_keys or config.api_keys
    if keys:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key_is_valid(presented.strip(), keys):
            raise ApiError(401, "unauthorized", "an admin key is required: Authorization: Bearer <key>")
    return Response(generate_latest(exposition_registry()), content_type=CONTENT_TYPE_LATEST)
