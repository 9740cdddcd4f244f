"""The safety net under the queue: images whose task was lost get published again.

A worker that dies mid-image leaves it `processing`; a publish that failed (or a broker
that lost its data) leaves it `queued` with no message. Every worker runs `sweep`
periodically. Rows are taken with SKIP LOCKED and stamped, so concurrent sweepers on
other hosts never publish the same image twice in one period. An image that keeps
losing its worker fails with `worker_lost` after `max_attempts`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery import Celery
from sqlalchemy import or_, select

from core.settings import Settings
from core.vocabulary import PROCESSING, QUEUED
from db import Database, Image
from db.lifecycle import delete_before, give_up, prune_previews, requeue
from db.schema import utcnow
from workers.celery_app import QUEUE, publish_images
from workers.metrics import record_sweep
from workers.webhooks import sweep_callbacks

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    requeued: list[int] = field(default_factory=list)
    gave_up: list[int] = field(default_factory=list)
    previews_pruned: int = 0
    batches_expired: int = 0
    images_expired: int = 0


def sweep(database: Database, settings: Settings, *, queue_is_empty: bool, now: datetime | None = None) -> SweepReport:
    """Decide and record (in one transaction) what to publish again; the caller publishes after commit.

    Queued images count as lost only when the broker's queue is empty: in a long backlog
    an old queued image is simply waiting its turn.
    """
    now = now or utcnow()
    report = SweepReport()
    lost = Image.status == PROCESSING
    lost = lost & (Image.started_at < now - timedelta(seconds=settings.processing_timeout))
    if queue_is_empty:
        stale_queued = (Image.status == QUEUED) & (Image.enqueued_at < now - timedelta(seconds=settings.queued_timeout))
        lost = or_(lost, stale_queued)
    with database.session() as session:
        for image in session.scalars(select(Image).where(lost).with_for_update(skip_locked=True)):
            if image.attempts >= settings.max_attempts:
                give_up(session, image, now)
                report.gave_up.append(image.id)
            else:
                requeue(image, now)
                report.requeued.append(image.id)
        if settings.preview_retention_days > 0:
            report.previews_pruned = prune_previews(session, now - timedelta(days=settings.preview_retention_days))
    if settings.result_retention_days > 0:
        cutoff = now - timedelta(days=settings.result_retention_days)
        report.batches_expired, report.images_expired = delete_before(database, cutoff)
        if report.batches_expired:
            log.warning(
                "sweeper: retention (%s days) erased %s batches, %s images created before %s",
                settings.result_retention_days,
                report.batches_expired,
                report.images_expired,
                cutoff.isoformat(),
            )
    return report


def queue_length(app: Celery) -> int | None:
    """Messages in the task queue as the broker tells it; None if the broker cannot be asked."""
    try:
        with app.connection_for_read() as connection:
            return connection.default_channel.queue_declare(queue=QUEUE, passive=True).message_count
    except Exception as exc:
        if str(getattr(exc, "reply_code", "")) == "404":  # no such queue (e.g. a restarted broker): no messages
            return 0
        log.warning("cannot read the queue length: %s", exc)
        return None


def broker_queue_is_empty(app: Celery) -> bool:
    """True only if the broker answers that the task queue holds no message (an unreachable one: do not guess)."""
    return queue_length(app) == 0


def sweep_and_publish(app: Celery, database: Database, settings: Settings) -> SweepReport:
    report = sweep(database, settings, queue_is_empty=broker_queue_is_empty(app))
    if report.requeued:
        publish_images(app, report.requeued)
    if report.requeued or report.gave_up:
        log.warning("sweeper: requeued %s, gave up on %s", report.requeued, report.gave_up)
    record_sweep(len(report.requeued), len(report.gave_up), report.previews_pruned)
    sweep_callbacks(app, database, grace=settings.queued_timeout)
    return report


def start_sweeper(app: Celery, settings: Settings) -> threading.Thread:
    """A daemon thread that sweeps every `sweep_interval` seconds for the life of the worker."""
    database = Database(settings.database_url)

    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(settings.sweep_interval):
            try:
                sweep_and_publish(app, database, settings)
            except Exception:  # a failed sweep (database down) is retried next period
                log.exception("sweeper: sweep failed")

    thread = threading.Thread(target=loop, name="socialfer-sweeper", daemon=True)
    thread.start()
    return thread
