"""The Celery application, built from settings. Importing this never loads TensorFlow.

The API publishes by task name (`send_task`), so it needs only this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from celery import Celery

from core.settings import Settings, load_settings

if TYPE_CHECKING:
    from flask import Flask

ANALYZE_IMAGE = "socialfer.analyze_image"
QUEUE = "socialfer"


class SocialferCelery(Celery):
    """A Celery app that carries the settings it was built from, for the tasks and the sweeper."""

    def __init__(self, settings: Settings):
        super().__init__("socialfer", broker=settings.broker_url, include=["workers.tasks"], set_as_current=False)
        self.settings = settings


def make_celery(settings: Settings | None = None) -> SocialferCelery:
    settings = settings or load_settings()
    app = SocialferCelery(settings)
    # Bounded socket waits: a broker that drops packets must not hang a POST or a worker.
    transport_options: dict = {
        "socket_connect_timeout": settings.connect_timeout,
        "socket_timeout": settings.read_timeout,
    }
    if settings.embedded_broker:
        queue_dir, control_dir = settings.broker_dir / "queue", settings.broker_dir / "control"
        for folder in (queue_dir, control_dir):
            folder.mkdir(parents=True, exist_ok=True)
        transport_options = {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "control_folder": str(control_dir),
        }
    app.conf.update(
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_ignore_result=True,  # results live in the database
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        worker_concurrency=settings.pool_processes(),
        worker_hijack_root_logger=False,
    )
    return app


def celery_init_app(flask_app: Flask, settings: Settings) -> Celery:
    """Flask extension pattern: one Celery app per Flask app, kept in `app.extensions`."""
    celery = make_celery(settings)
    flask_app.extensions["celery"] = celery
    return celery


def publish_images(app: Celery, image_ids: Sequence[int], countdown: float | None = None) -> None:
    """One analysis task per image, over a single broker connection."""
    with app.producer_or_acquire() as producer:
        for image_id in image_ids:
            app.send_task(ANALYZE_IMAGE, args=[image_id], queue=QUEUE, producer=producer, countdown=countdown)
