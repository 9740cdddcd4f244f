"""The sweeper finds images whose task was lost, on the real Postgres."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from core.vocabulary import DONE, FAILED, PROCESSING, QUEUED
from db import PREVIEW, Batch, Database, Image, ImageFile
from db.schema import utcnow
from tests.support import make_settings
from workers.pipeline import retry_delay
from workers.sweeper import sweep

NOW = utcnow()


def add(database: Database, status: str, *, age_s: float, attempts: int = 0) -> int:
    then = NOW - timedelta(seconds=age_s)
    with database.session() as session:
        image = Image(
            batch=Batch(total=1),
            url="http://example.com/a.jpg",
            platform="other",
            status=status,
            attempts=attempts,
            created_at=then,
            enqueued_at=then,
            started_at=then if status == PROCESSING else None,
        )
        session.add(image)
        session.flush()
        return image.id


def state(database: Database, image_id: int) -> tuple[str, str | None]:
    with database.session() as session:
        image = session.get(Image, image_id)
        return image.status, image.error_code


@pytest.fixture
def settings(tmp_path: Path):
    return make_settings(
        tmp_path, processing_timeout=60, task_soft_time_limit=40, task_time_limit=50, queued_timeout=120, max_attempts=3
    )


def test_lost_processing_images_are_requeued(pg_database: Database, settings) -> None:
    fresh = add(pg_database, PROCESSING, age_s=10, attempts=1)
    lost = add(pg_database, PROCESSING, age_s=600, attempts=1)
    report = sweep(pg_database, settings, queue_is_empty=False, now=NOW)
    assert report.requeued == [lost]
    assert state(pg_database, lost) == (QUEUED, None) and state(pg_database, fresh) == (PROCESSING, None)


def test_queued_images_are_requeued_only_when_the_queue_is_empty(pg_database: Database, settings) -> None:
    old = add(pg_database, QUEUED, age_s=600)
    young = add(pg_database, QUEUED, age_s=30)
    assert sweep(pg_database, settings, queue_is_empty=False, now=NOW).requeued == []
    assert sweep(pg_database, settings, queue_is_empty=True, now=NOW).requeued == [old]
    # stamped: the next sweep in the same period leaves it alone
    assert sweep(pg_database, settings, queue_is_empty=True, now=NOW + timedelta(seconds=5)).requeued == []
    assert state(pg_database, young) == (QUEUED, None)


def test_an_image_that_keeps_losing_its_worker_fails(pg_database: Database, settings) -> None:
    doomed = add(pg_database, PROCESSING, age_s=600, attempts=3)
    report = sweep(pg_database, settings, queue_is_empty=True, now=NOW)
    assert report.gave_up == [doomed] and report.requeued == []
    assert state(pg_database, doomed) == (FAILED, "worker_lost")


def test_terminal_images_are_never_touched(pg_database: Database, settings) -> None:
    done = add(pg_database, DONE, age_s=10_000)
    assert sweep(pg_database, settings, queue_is_empty=True, now=NOW).requeued == []
    assert state(pg_database, done) == (DONE, None)


def test_old_previews_are_pruned(pg_database: Database, settings) -> None:
    image_id = add(pg_database, DONE, age_s=10)
    with pg_database.session() as session:
        session.add(
            ImageFile(
                image_id=image_id,
                kind=PREVIEW,
                content_type="image/jpeg",
                data=b"x",
                created_at=NOW - timedelta(days=31),
            )
        )
    assert sweep(pg_database, settings, queue_is_empty=False, now=NOW).previews_pruned == 1


def test_retry_delays_grow_and_respect_retry_after(settings) -> None:
    delays = [retry_delay(attempt, settings) for attempt in (1, 2, 3, 4)]
    for attempt, delay in enumerate(delays, 1):
        ceiling = settings.retry_base_delay * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
    assert retry_delay(1, settings, retry_after=30) == 30
    assert retry_delay(1, settings, retry_after=10_000) == settings.retry_max_delay


def test_queue_emptiness_is_read_from_the_real_broker(redis_url: str, tmp_path: Path) -> None:
    import redis

    from workers.celery_app import make_celery, publish_images
    from workers.sweeper import broker_queue_is_empty

    redis.Redis.from_url(redis_url).flushdb()
    app = make_celery(make_settings(tmp_path, broker_url=redis_url))
    assert broker_queue_is_empty(app)  # no queue at all, as after a broker restart, means no messages
    publish_images(app, [1, 2])
    assert not broker_queue_is_empty(app)
    redis.Redis.from_url(redis_url).flushdb()
    assert not broker_queue_is_empty(make_celery(make_settings(tmp_path, broker_url="redis://127.0.0.1:1/0")))
