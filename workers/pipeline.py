"""What a worker does with one image, as plain functions a test can call without Celery.

Fetch, decode, analyse; every state change (claim, success, failure, retry) is a
transition of `db.lifecycle`, which owns the image's writes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError

from core.settings import Settings
from core.vocabulary import DONE, FAILED
from db import UPLOAD, UPLOAD_URL_PREFIX, Database, Image, ImageFile
from db.lifecycle import claim, record_failure, record_success, schedule_retry
from workers.fetch import Fetched, FetchError, fetch_image
from workers.imaging import DecodeError, decode_image
from workers.logs import bind as bind_log_fields
from workers.metrics import instrument_analyzer, timed
from workers.privacy import preview_to_keep

if TYPE_CHECKING:
    from models.analyzer import FaceAnalyzer

log = logging.getLogger(__name__)
RETRY, SKIPPED = "retry", "skipped"


def load_analyzer(settings: Settings) -> FaceAnalyzer:
    """The models, loaded and traced once per worker process (never per task)."""
    from models.analyzer import FaceAnalyzer
    from models.classifier import EmotionClassifier
    from models.hardware import limit_threads

    limit_threads(settings.threads_per_process())
    analyzer = FaceAnalyzer(classifier=EmotionClassifier(settings.model_path))
    analyzer.warm_up()
    return instrument_analyzer(analyzer)  # after warm-up, so tracing is not counted as detection


@dataclass
class WorkerContext:
    """Per-process resources: settings, database, and the analyzer (loaded on first use)."""

    settings: Settings
    database: Database
    analyzer_factory: Callable[[Settings], FaceAnalyzer] = load_analyzer
    _analyzer: FaceAnalyzer | None = field(default=None, repr=False)

    @property
    def analyzer(self) -> FaceAnalyzer:
        if self._analyzer is None:
            self._analyzer = self.analyzer_factory(self.settings)
        return self._analyzer


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended; `retry_in` (seconds) is set when the task should run again."""

    status: str  # done, failed, retry or skipped
    retry_in: float | None = None
    error_code: str | None = None  # why it failed or is retried
    faces: int = 0
    batch_id: int | None = None


def retry_delay(attempt: int, settings: Settings, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter; a server's Retry-After is honoured up to the cap."""
    backoff = min(settings.retry_max_delay, settings.retry_base_delay * 2 ** (attempt - 1))
    delay = random.uniform(backoff / 2, backoff)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, settings.retry_max_delay)


def load_source(image: Image, ctx: WorkerContext) -> Fetched:
    """The image's bytes: downloaded from its URL, or an uploaded file waiting in the database."""
    if not image.url.startswith(UPLOAD_URL_PREFIX):
        return fetch_image(image.url, ctx.settings)
    with ctx.database.session() as session:
        upload = session.get(ImageFile, (image.id, UPLOAD))
        if upload is None:
            raise FetchError("upload_missing", "the uploaded file is no longer stored")
        return Fetched(upload.data, upload.content_type, image.url)


def process_image(image_id: int, ctx: WorkerContext) -> Outcome:
    """Fetch, decode, analyse and store one image."""
    image = claim(ctx.database, image_id)
    if image is None:
        return Outcome(SKIPPED)
    bind_log_fields(batch_id=image.batch_id)
    batch = image.batch_id
    try:
        started = time.perf_counter()
        with timed("fetch"):
            fetched = load_source(image, ctx)
        fetched_at = time.perf_counter()
        with timed("decode"):
            rgb = decode_image(fetched.content)
        faces = ctx.analyzer.analyze(rgb)
        finished = time.perf_counter()
        preview = preview_to_keep(
            rgb, [face.box for face in faces], ctx.settings.previews, ctx.settings.preview_max_side
        )
    except FetchError as exc:
        if exc.transient and image.attempts < ctx.settings.max_attempts:
            schedule_retry(ctx.database, image_id, exc.code, exc.message)
            delay = retry_delay(image.attempts, ctx.settings, exc.retry_after)
            return Outcome(RETRY, delay, exc.code, batch_id=batch)
        record_failure(ctx.database, image_id, exc.code, exc.message)
        return Outcome(FAILED, error_code=exc.code, batch_id=batch)
    except DecodeError as exc:
        record_failure(ctx.database, image_id, exc.code, exc.message)
        return Outcome(FAILED, error_code=exc.code, batch_id=batch)
    except OperationalError:
        raise  # the database, not the image, is at fault: the task retries
    except Exception as exc:
        log.exception("image %s failed unexpectedly", image_id)
        record_failure(ctx.database, image_id, "internal_error", f"{exc.__class__.__name__}: {exc}")
        return Outcome(FAILED, error_code="internal_error", batch_id=batch)
    details = {
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "content_type": fetched.content_type,
        "byte_size": len(fetched.content),
        "fetch_ms": round((fetched_at - started) * 1000, 1),
        "analyze_ms": round((finished - fetched_at) * 1000, 1),
    }
    with timed("store"):
        record_success(ctx.database, image_id, faces, details, preview)
    return Outcome(DONE, faces=len(faces), batch_id=batch)
