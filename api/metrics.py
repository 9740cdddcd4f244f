"""The API's Prometheus metrics: requests by route and status, their latency, and `GET /metrics`.

The route label is the URL rule (`/api/v1/batches/<id:batch_id>`), never the raw path, so
the number of series stays fixed whatever clients send; unmatched paths count as `unmatched`.
Under gunicorn every worker process writes its own files and `/metrics` sums them all
(`socialfer.prometheus`). `/metrics` needs an admin key whenever keys exist (its rule in api/auth.py's ACCESS).
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from flask_openapi3 import APIBlueprint
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from api.context import settings
from api.openapi import DATA_ROUTE_ERRORS, TAGS, WRITE_SECURITY, media_answer
from core.prometheus import exposition_registry

bp = APIBlueprint("metrics", __name__, abp_tags=[TAGS["service"]], abp_responses=DATA_ROUTE_ERRORS)

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
    app.register_api(bp)


@bp.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics of every API process (admin)",
    description="Requests by route and status and their latency, summed over gunicorn's worker processes "
    "(README: Metrics). Needs an admin-scope key whenever keys exist.",
    security=WRITE_SECURITY,
    responses={200: media_answer("The Prometheus text format.", "text/plain")},
)
def metrics() -> Response:
    registry = exposition_registry(settings().prometheus_multiproc_dir)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
