"""What a worker does with one image, as plain functions a test can call without Celery.

State changes are short transactions that lock the image row: claim (`processing`),
then either the faces, preview and `done` in one transaction (replacing whatever an
earlier attempt wrote, so redelivery never duplicates faces), or `failed` with a reason
code, or back to `queued` to retry a transient failure later. An image already terminal
is left alone.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import delete
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.settings import Settings
from core.vocabulary import DONE, FAILED, PROCESSING, QUEUED
from db import PREVIEW, UPLOAD, UPLOAD_URL_PREFIX, Database, Face, Image, ImageFile
from db.schema import utcnow
from workers.fetch import Fetched, FetchError, fetch_image
from workers.imaging import DecodeError, decode_image, encode_preview

if TYPE_CHECKING:
    from models.analyzer import FaceAnalyzer, FaceResult

log = logging.getLogger(__name__)
TERMINAL = (DONE, FAILED)
RETRY, SKIPPED = "retry", "skipped"


def load_analyzer(settings: Settings) -> FaceAnalyzer:
    """The models, loaded and traced once per worker process (never per task)."""
    from models.analyzer import FaceAnalyzer
    from models.classifier import EmotionClassifier
    from models.hardware import limit_threads

    limit_threads(settings.threads_per_process())
    analyzer = FaceAnalyzer(classifier=EmotionClassifier(settings.model_path))
    analyzer.warm_up()
    return analyzer


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


def locked_image(session: Session, image_id: int) -> Image | None:
    """The image row, locked until the transaction ends (a no-op on SQLite, which locks the file)."""
    return session.get(Image, image_id, with_for_update=True)


def claim(database: Database, image_id: int) -> Image | None:
    """Mark the image `processing`; None if it is gone or already terminal."""
    with database.session() as session:
        image = locked_image(session, image_id)
        if image is None or image.status in TERMINAL:
            return None
        image.status = PROCESSING
        image.started_at = utcnow()
        image.attempts += 1
        session.flush()
        session.expunge(image)
        return image


def record_failure(database: Database, image_id: int, code: str, message: str, *, retry: bool = False) -> None:
    """`failed` with its reason; or, to retry, back to `queued` keeping the last error for whoever looks."""
    with database.session() as session:
        image = locked_image(session, image_id)
        if image is None or image.status in TERMINAL:
            return
        image.error_code, image.error_message = code, message[:2000]
        if retry:
            image.status, image.enqueued_at = QUEUED, utcnow()
            return
        image.status, image.finished_at = FAILED, utcnow()
        session.execute(delete(ImageFile).where(ImageFile.image_id == image_id, ImageFile.kind == UPLOAD))


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


def record_success(
    database: Database, image_id: int, faces: list[FaceResult], details: dict, preview: bytes | None = None
) -> None:
    """Replace the image's faces and preview and mark it done, atomically; an upload's bytes go."""
    with database.session() as session:
        image = locked_image(session, image_id)
        if image is None:
            return
        finished = utcnow()
        session.execute(delete(Face).where(Face.image_id == image_id))
        session.execute(delete(ImageFile).where(ImageFile.image_id == image_id))
        if preview is not None:
            session.add(ImageFile(image_id=image_id, kind=PREVIEW, content_type="image/jpeg", data=preview))
        session.add_all(
            Face(
                image_id=image_id,
                batch_id=image.batch_id,
                platform=image.platform,
                analyzed_at=finished,
                x=f.box[0],
                y=f.box[1],
                w=f.box[2],
                h=f.box[3],
                confidence=f.confidence,
                emotion=f.emotion,
                **{f"score_{name}": value for name, value in f.scores.items()},
            )
            for f in faces
        )
        for key, value in details.items():
            setattr(image, key, value)
        image.status, image.error_code, image.error_message = DONE, None, None
        image.face_count = len(faces)
        image.finished_at = finished


def process_image(image_id: int, ctx: WorkerContext) -> Outcome:
    """Fetch, decode, analyse and store one image."""
    image = claim(ctx.database, image_id)
    if image is None:
        return Outcome(SKIPPED)
    try:
        started = time.perf_counter()
        fetched = load_source(image, ctx)
        fetched_at = time.perf_counter()
        rgb = decode_image(fetched.content)
        faces = ctx.analyzer.analyze(rgb)
        finished = time.perf_counter()
        preview = encode_preview(rgb, ctx.settings.preview_max_side)
    except FetchError as exc:
        if exc.transient and image.attempts < ctx.settings.max_attempts:
            record_failure(ctx.database, image_id, exc.code, exc.message, retry=True)
            return Outcome(RETRY, retry_delay(image.attempts, ctx.settings, exc.retry_after))
        record_failure(ctx.database, image_id, exc.code, exc.message)
        return Outcome(FAILED)
    except DecodeError as exc:
        record_failure(ctx.database, image_id, exc.code, exc.message)
        return Outcome(FAILED)
    except OperationalError:
        raise  # the database, not the image, is at fault: the task retries
    except Exception as exc:
        log.exception("image %s failed unexpectedly", image_id)
        record_failure(ctx.database, image_id, "internal_error", f"{exc.__class__.__name__}: {exc}")
        return Outcome(FAILED)
    details = {
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "content_type": fetched.content_type,
        "byte_size": len(fetched.content),
        "fetch_ms": round((fetched_at - started) * 1000, 1),
        "analyze_ms": round((finished - fetched_at) * 1000, 1),
    }
    record_success(ctx.database, image_id, faces, details, preview)
    return Outcome(DONE)
