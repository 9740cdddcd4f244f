"""Celery tasks and worker signals: thin wrappers over `workers.pipeline` and `workers.sweeper`."""

from __future__ import annotations

import os

from celery import shared_task
from celery.signals import worker_process_init, worker_ready
from sqlalchemy.exc import OperationalError

from db import Database
from workers.celery_app import ANALYZE_IMAGE, SocialferCelery, publish_images
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
        start_sweeper(app, app.settings)


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
    outcome = process_image(image_id, worker_context(self.app))
    if outcome.retry_in is not None:
        publish_images(self.app, [image_id], countdown=outcome.retry_in)
    return outcome.status
