"""Celery tasks and worker signals: thin wrappers over `workers.pipeline` and `workers.sweeper`."""

from __future__ import annotations

import os

from celery import shared_task
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_ready
from sqlalchemy.exc import OperationalError

from core.vocabulary import DONE, FAILED
from db import Database
from workers import logs, webhooks
from workers.celery_app import ANALYZE_IMAGE, SocialferCelery, publish_images
from workers.metrics import IMAGE_RETRIES, record_attempt, serve_worker_metrics
from workers.pipeline import WorkerContext, load_analyzer, process_image
from workers.sweeper import start_sweeper

_context: tuple[int, WorkerContext] | None = None


def worker_context(app: SocialferCelery) -> WorkerContext:
    """One context per process (rebuilt after a fork), so models load once per worker process."""
    global _context
    if _context is None or _context[0] != os.getpid():
        settings = app.settings
        _context = (os.getpid(), WorkerContext(settings, Database(settings.database_url), load_analyzer))
    return _context[1]


@worker_process_init.connect
def warm_up(sender=None, **_kwargs) -> None:
    """Load the models when a pool process starts, not on its first image."""
    from celery import current_app

    app = current_app._get_current_object()
    if isinstance(app, SocialferCelery):
        worker_context(app).analyzer  # noqa: B018 - loads the models


@worker_ready.connect
def begin_sweeping(sender=None, **_kwargs) -> None:
    app = sender.app
    if isinstance(app, SocialferCelery):
        serve_worker_metrics(app, app.settings)
        start_sweeper(app, app.settings)


@task_prerun.connect
def bind_log_fields(task_id=None, task=None, args=(), **_kwargs) -> None:
    """Every line logged while the task runs, Celery's "succeeded" included, names its image (workers.logs)."""
    first = args[0] if args else None
    if task is not None and task.name == ANALYZE_IMAGE:
        logs.begin_task(task_id, image_id=first)
    else:
        logs.begin_task(task_id, batch_id=first)


@task_postrun.connect
def unbind_log_fields(**_kwargs) -> None:
    logs.end_task()


@shared_task(
    name=ANALYZE_IMAGE,
    bind=True,
    # An unreachable database is waited out, not blamed on the image; the sweeper is the last resort.
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=12,
)
def analyze_image(self, image_id: int) -> str:
    try:
        outcome = process_image(image_id, worker_context(self.app))
    except OperationalError:
        IMAGE_RETRIES.labels("database").inc()
        logs.bind(outcome="retry")
        raise
    logs.bind(outcome=outcome.status)
    record_attempt(outcome.status, outcome.error_code, outcome.faces)
    if outcome.retry_in is not None:
        IMAGE_RETRIES.labels(outcome.error_code or "unknown").inc()
        publish_images(self.app, [image_id], countdown=outcome.retry_in)
    if outcome.status in (DONE, FAILED) and outcome.batch_id is not None:
        webhooks.start_if_batch_ended(self.app, worker_context(self.app).database, outcome.batch_id)
    return outcome.status


@shared_task(
    name=webhooks.DELIVER_CALLBACK, bind=True, autoretry_for=(OperationalError,), retry_backoff=2, max_retries=12
)
def deliver_callback(self, batch_id: int) -> str:
    """One attempt at a batch's callback; the next one is published with its backoff as countdown."""
    context = worker_context(self.app)
    delay = webhooks.deliver(context.database, context.settings, batch_id)
    if delay is not None:
        webhooks.publish(self.app, [batch_id], countdown=delay)
        return "retry"
    return "settled"
