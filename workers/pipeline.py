"""What a worker does with one image, as plain functions a test can call without Celery.

Fetch, decode, analyse; every state change (claim, success, failure, retry) is a
transition of `db.lifecycle`, which owns the image's writes.

Each attempt has one deadline (`settings.attempt_deadline`) over everything the image's
source can slow down: the download (every hop), decoding and analysis. The fetcher and the
decoder enforce it themselves; `attempt_alarm` interrupts whatever still runs a moment past
it (in the main thread, so under the solo pool too). A decode cut short is `too_complex`,
anything else past the deadline `timeout`.
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
from workers.deadline import Deadline, DeadlineExceeded, attempt_alarm
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
    from models.detector import FaceDetector
    from models.hardware import limit_threads
    from models.scan import ScanOptions

    limit_threads(settings.threads_per_process())
    scan = ScanOptions(min_face_px=settings.min_face_px, max_scan_pixels=settings.max_scan_pixels)
    detector = FaceDetector(options=scan)
    classifier = EmotionClassifier(settings.model_path, precision=settings.precision)
    analyzer = FaceAnalyzer(detector, classifier, max_faces=settings.max_faces)
    analyzer.warm_up()
    log.info(
        "classifier ready: %s, precision %s (asked: %s), flip averaging %s, profile %s",
        classifier.model_path.name,
        classifier.precision,
        settings.precision,
        "on" if classifier.flip_tta else "off",
        classifier.profile,
    )
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


def load_upload(image: Image, ctx: WorkerContext) -> Fetched | None:
    """An uploaded file's bytes, waiting in the database; None for an image with a URL to fetch."""
    if not image.url.startswith(UPLOAD_URL_PREFIX):
        return None
    with ctx.database.session() as session:
        upload = session.get(ImageFile, (image.id, UPLOAD))
        if upload is None:
            raise FetchError("upload_missing", "the uploaded file is no longer stored")
        return Fetched(upload.data, upload.content_type, image.url)


def record_attempt_failure(ctx: WorkerContext, image: Image, exc: FetchError | DecodeError) -> Outcome:
    """`failed` with the error's code, or `queued` again for a transient failure with attempts left."""
    if isinstance(exc, FetchError) and exc.transient and image.attempts < ctx.settings.max_attempts:
        schedule_retry(ctx.database, image.id, exc.code, exc.message)
        delay = retry_delay(image.attempts, ctx.settings, exc.retry_after)
        return Outcome(RETRY, delay, exc.code, batch_id=image.batch_id)
    record_failure(ctx.database, image.id, exc.code, exc.message)
    return Outcome(FAILED, error_code=exc.code, batch_id=image.batch_id)


def process_image(image_id: int, ctx: WorkerContext) -> Outcome:
    """Fetch, decode, analyse and store one image."""
    image = claim(ctx.database, image_id)
    if image is None:
        return Outcome(SKIPPED)
    bind_log_fields(batch_id=image.batch_id)
    batch = image.batch_id
    stage = "download"
    try:
        ctx.analyzer  # noqa: B018 - loaded before the clock starts: the models are the worker's, not the image's
        started = time.perf_counter()
        fetched = load_upload(image, ctx)  # a database read, outside the alarm
        deadline = Deadline(ctx.settings.attempt_deadline)
        with attempt_alarm(deadline, lambda: stage):
            if fetched is None:
                with timed("fetch"):
                    fetched = fetch_image(image.url, ctx.settings, deadline=deadline)
            fetched_at = time.perf_counter()
            stage = "decode"
            with timed("decode"):
                rgb = decode_image(fetched.content, deadline)
            stage = "analysis"
            deadline.check(stage)
            analysis = ctx.analyzer.analyze_image(rgb)
            faces = analysis.faces
            finished = time.perf_counter()
            preview = preview_to_keep(
                rgb, [face.box for face in faces], ctx.settings.previews, ctx.settings.preview_max_side
            )
    except DeadlineExceeded as exc:
        late: FetchError | DecodeError = (
            DecodeError("too_complex", f"decoding did not finish within the {exc.seconds:g} s deadline")
            if exc.stage == "decode"
            else FetchError("timeout", str(exc), transient=True)
        )
        return record_attempt_failure(ctx, image, late)
    except (FetchError, DecodeError) as exc:
        return record_attempt_failure(ctx, image, exc)
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
        "faces_beyond_cap": analysis.faces_beyond_cap,
        "min_face_px": analysis.min_face_px,
        "scan_capped": analysis.scan_capped,
    }
    with timed("store"):
        record_success(
            ctx.database, image_id, faces, details, preview, low_resolution_px=ctx.settings.low_resolution_px
        )
    return Outcome(DONE, faces=len(faces), batch_id=batch)
