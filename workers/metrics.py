"""The worker's Prometheus metrics and the HTTP port each worker serves them on.

Counters and histograms are written by whichever process does the work (pool processes for
images, the main process for the sweeper) and summed over the worker's multiprocess folder
when scraped (`socialfer.prometheus`). The queue length is read from the broker at scrape time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from core.prometheus import exposition_registry

if TYPE_CHECKING:
    from celery import Celery

    from core.settings import Settings
    from models.analyzer import FaceAnalyzer

log = logging.getLogger(__name__)

STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

IMAGE_ATTEMPTS = Counter(
    "socialfer_image_attempts",
    "Attempts at an image by how they ended: done, failed (with its error code), retry or skipped",
    ["outcome", "error_code"],
)
IMAGE_RETRIES = Counter(
    "socialfer_image_retries",
    "Images published again to retry: a transient fetch error (its code) or an unreachable database",
    ["reason"],
)
STAGE_SECONDS = Histogram(
    "socialfer_image_stage_seconds",
    "Time per image in each stage: fetch, decode, detect, classify, store",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
FACES = Counter("socialfer_faces", "Faces stored")
SWEEPER_ACTIONS = Counter(
    "socialfer_sweeper_actions", "What the sweeper did: requeued, gave_up (images), previews_pruned", ["action"]
)
WEBHOOK_DELIVERIES = Counter(
    "socialfer_webhook_deliveries",
    "Batch callback attempts by result: delivered, retry, failed (gave up) or refused (blocked URL)",
    ["outcome"],
)


@contextmanager
def timed(stage: str) -> Iterator[None]:
    """Observe the duration of the block under `stage`, also when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(stage).observe(time.perf_counter() - started)


def record_attempt(outcome: str, error_code: str | None = None, faces: int = 0) -> None:
    IMAGE_ATTEMPTS.labels(outcome, error_code or "").inc()
    if faces:
        FACES.inc(faces)


def record_sweep(requeued: int, gave_up: int, previews_pruned: int) -> None:
    for action, count in (("requeued", requeued), ("gave_up", gave_up), ("previews_pruned", previews_pruned)):
        if count:
            SWEEPER_ACTIONS.labels(action).inc(count)
    if gave_up:
        IMAGE_ATTEMPTS.labels("failed", "worker_lost").inc(gave_up)


def instrument_analyzer(analyzer: FaceAnalyzer) -> FaceAnalyzer:
    """Time the detector and the classifier separately, without the models knowing about metrics."""
    scan, predict = analyzer.detector.scan, analyzer.classifier.predict  # FaceAnalyzer detects through scan()

    def timed_scan(*args, **kwargs):
        with timed("detect"):
            return scan(*args, **kwargs)

    def timed_predict(*args, **kwargs):
        with timed("classify"):
            return predict(*args, **kwargs)

    analyzer.detector.scan = timed_scan
    analyzer.classifier.predict = timed_predict
    return analyzer


class QueueDepth:
    """`socialfer_queue_messages`: tasks waiting in the broker, read at each scrape (absent if unreachable)."""

    def __init__(self, app: Celery):
        self.app = app

    def collect(self):
        from workers.celery_app import QUEUE
        from workers.sweeper import queue_length

        depth = queue_length(self.app)
        if depth is not None:
            yield GaugeMetricFamily(
                "socialfer_queue_messages", f"Messages waiting in the broker queue {QUEUE!r}", value=depth
            )


def serve_worker_metrics(app: Celery, settings: Settings) -> bool:
    """Serve this worker's metrics (all its processes) on its port; a port in use is logged, not fatal."""
    if settings.worker_metrics_port <= 0:
        return False
    from prometheus_client import start_http_server

    registry = exposition_registry(settings.prometheus_multiproc_dir, QueueDepth(app))
    try:
        start_http_server(settings.worker_metrics_port, settings.worker_metrics_host, registry=registry)
    except OSError as exc:
        log.warning(
            "worker metrics: cannot listen on %s:%s (%s); set SOCIALFER_WORKER_METRICS_PORT to a free port",
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            exc,
        )
        return False
    log.info("worker metrics on http://%s:%s/metrics", settings.worker_metrics_host, settings.worker_metrics_port)
    return True
