"""The image lifecycle: every write that moves an image between states, in one place.

    store ──> queued ──claim──> processing ──success──> done
                ▲                   │ └──failure──────> failed
                └──retry / requeue──┘ └──give up──────> failed (worker_lost)

Each transition is a short transaction that locks the image row, so concurrent workers and
sweepers on other hosts never interleave on one image; an image already terminal is left
alone. The invariants the tests walk: faces exist only on done images; an image that
reaches a terminal state keeps no upload bytes (its original is not needed any more, and
it is personal data); the hourly rollups stay equal to counts from the rows (database
triggers keep them, whoever writes). Erasure (`delete_batch`, `delete_image`) and
retention (`prune_previews`) are here too: they remove rows, never rewrite them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from core.vocabulary import DONE, FAILED, PROCESSING, QUEUED, TERMINAL_STATES
from db.callbacks import WAITING
from db.schema import PREVIEW, UPLOAD, Batch, Face, Image, ImageFile, utcnow
from db.session import Database
from db.upload_store import UploadStream, reserve_upload_bytes, store_upload

MAX_ERROR_MESSAGE = 2000
WORKER_LOST = "worker_lost"


@dataclass(frozen=True)
class UploadedFile:
    """An image sent as a file: stored with its image row, read back by the worker."""

    data: bytes
    content_type: str


@dataclass(frozen=True)
class NewImage:
    url: str
    platform: str
    upload: UploadedFile | UploadStream | None = None  # a stream is copied into the database block by block


class DetectedFace(Protocol):
    """What the worker found in an image (models.analyzer.FaceResult has this shape)."""

    box: Sequence[int]
    confidence: float
    emotion: str
    scores: Mapping[str, float]
    uncertain: bool  # the classifier abstained (its top probability under its threshold)


def locked_image(session: Session, image_id: int) -> Image | None:
    """The image row, locked until the transaction ends (a no-op on SQLite, which locks the file)."""
    return session.get(Image, image_id, with_for_update=True)


def drop_upload(session: Session, image_id: int) -> None:
    session.execute(delete(ImageFile).where(ImageFile.image_id == image_id, ImageFile.kind == UPLOAD))


# --- into the queue ------------------------------------------------------------------------------


def store_batch(
    database: Database,
    images: Sequence[NewImage],
    *,
    name: str | None,
    platform: str | None,
    callback_url: str | None = None,
    max_queued_upload_bytes: int | None = None,
) -> tuple[int, list[int]]:
    """The batch, its queued images and any uploaded bytes in one transaction; the ids in the given order.

    With a `callback_url` the batch's callback starts `waiting` (db/callbacks.py takes it from there).
    With `max_queued_upload_bytes`, raises `db.upload_store.UploadQueueFull` (storing nothing) when the
    uploads would take what queued uploads occupy over it.
    """
    created = utcnow()
    uploads = [as_stream(image.upload) for image in images if image.upload is not None]
    with database.session() as session:
        if uploads and max_queued_upload_bytes is not None:
            reserve_upload_bytes(session, sum(upload.size for upload in uploads), max_queued_upload_bytes)
        batch = Batch(name=name, platform=platform, total=len(images), created_at=created)
        if callback_url:
            batch.callback_url, batch.callback_state = callback_url, WAITING
        session.add(batch)
        session.flush()
        rows = [
            {
                "batch_id": batch.id,
                "url": image.url,
                "platform": image.platform,
                "status": QUEUED,
                "created_at": created,
            }
            for image in images
        ]
        image_ids = list(session.scalars(insert(Image).returning(Image.id, sort_by_parameter_order=True), rows).all())
        for image_id, image in zip(image_ids, images, strict=True):
            if image.upload is not None:
                store_upload(session, image_id, as_stream(image.upload), created)
        if uploads and max_queued_upload_bytes is not None:  # again, ours written: two at once cannot both slip in
            reserve_upload_bytes(session, 0, max_queued_upload_bytes)
        return batch.id, image_ids


def as_stream(upload: UploadedFile | UploadStream) -> UploadStream:
    if isinstance(upload, UploadStream):
        return upload
    return UploadStream(stream=io.BytesIO(upload.data), size=len(upload.data), content_type=upload.content_type)


def withdraw_batch(database: Database, batch_id: int) -> None:
    """Undo a batch whose tasks could not be published, so a refused submission leaves no trace."""
    delete_batch(database, batch_id)


# --- a worker's attempt --------------------------------------------------------------------------


def claim(database: Database, image_id: int) -> Image | None:
    """Mark the image `processing` for one more attempt; None if it is gone or already terminal."""
    with database.session() as session:
        image = locked_image(session, image_id)
        if image is None or image.status in TERMINAL_STATES:
            return None
        image.status = PROCESSING
        image.started_at = utcnow()
        image.attempts += 1
        session.flush()
        session.expunge(image)
        return image


def record_success(
    database: Database,
    image_id: int,
    faces: Sequence[DetectedFace],
    details: Mapping[str, Any],
    preview: bytes | None = None,
    low_resolution_px: int = 0,
) -> None:
    """Replace the image's faces and preview and mark it done, atomically; the upload's bytes go.

    Replacing (not adding) is what makes a redelivered task harmless: it never duplicates faces.
    A face whose box's shorter side is under `low_resolution_px` is stored flagged `low_resolution`.
    """
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
                x=face.box[0],
                y=face.box[1],
                w=face.box[2],
                h=face.box[3],
                confidence=face.confidence,
                emotion=face.emotion,
                **{f"score_{name}": value for name, value in face.scores.items()},
                size_px=min(face.box[2], face.box[3]),
                low_resolution=min(face.box[2], face.box[3]) < low_resolution_px,
                uncertain=bool(getattr(face, "uncertain", False)),
            )
            for face in faces
        )
        for key, value in details.items():
            setattr(image, key, value)
        image.status, image.error_code, image.error_message = DONE, None, None
        image.face_count = len(faces)
        image.finished_at = finished


def record_failure(database: Database, image_id: int, code: str, message: str) -> None:
    """`failed` for good, with its reason; the upload's bytes go."""
    with database.session() as session:
        image = locked_image(session, image_id)
        if image is not None and image.status not in TERMINAL_STATES:
            fail(session, image, code, message, utcnow())


def schedule_retry(database: Database, image_id: int, code: str, message: str) -> None:
    """Back to `queued` for a later attempt, keeping the last error for whoever looks meanwhile."""
    with database.session() as session:
        image = locked_image(session, image_id)
        if image is not None and image.status not in TERMINAL_STATES:
            image.error_code, image.error_message = code, message[:MAX_ERROR_MESSAGE]
            image.status, image.enqueued_at = QUEUED, utcnow()


def fail(session: Session, image: Image, code: str, message: str, now: datetime) -> None:
    """The one way into `failed`, inside the caller's transaction."""
    image.status, image.finished_at = FAILED, now
    image.error_code, image.error_message = code, message[:MAX_ERROR_MESSAGE]
    drop_upload(session, image.id)


# --- the sweeper's transitions (inside its transaction, rows already locked) --------------------


def requeue(image: Image, now: datetime) -> None:
    """A lost task: `queued` again, to be published after the transaction commits."""
    image.status, image.enqueued_at = QUEUED, now


def give_up(session: Session, image: Image, now: datetime) -> None:
    """An image that kept losing its worker: failed with `worker_lost`; its upload's bytes go too."""
    message = f"gave up after {image.attempts} attempts: the worker stopped or the task was lost"
    fail(session, image, WORKER_LOST, message, now)


# --- erasure and retention -----------------------------------------------------------------------


def delete_batch(database: Database, batch_id: int) -> int | None:
    """The batch, its images, faces, previews and upload bytes (ON DELETE CASCADE): how many images
    went, or None if there was no such batch.

    The rollups follow through the triggers on `images` and `faces`, so the stats stay exact.
    """
    with database.session() as session:
        images = session.scalar(select(func.count()).select_from(Image).where(Image.batch_id == batch_id)) or 0
        if not session.execute(delete(Batch).where(Batch.id == batch_id)).rowcount:
            return None
        return images


def delete_before(database: Database, before: datetime) -> tuple[int, int]:
    """Every batch created before `before` (retention, `socialfer delete --before`): (batches, images) removed."""
    with database.session() as session:
        old = select(Batch.id).where(Batch.created_at < before)
        images = session.scalar(select(func.count()).select_from(Image).where(Image.batch_id.in_(old))) or 0
        batches = session.execute(delete(Batch).where(Batch.created_at < before)).rowcount or 0
        return batches, images


def delete_image(database: Database, image_id: int) -> bool:
    """One image with its faces and files; its batch keeps the others. False if there was none."""
    with database.session() as session:
        image = locked_image(session, image_id)
        if image is None:
            return False
        batch = session.get(Batch, image.batch_id)
        session.execute(delete(Image).where(Image.id == image_id))
        if batch is not None:
            batch.total = max(0, batch.total - 1)
        return True


def prune_previews(session: Session, before: datetime) -> int:
    """Delete the previews stored before `before` (the retention limit); returns how many went.

    Only previews: uploaded originals go when their image reaches a terminal state.
    """
    result = session.execute(delete(ImageFile).where(ImageFile.kind == PREVIEW, ImageFile.created_at < before))
    return result.rowcount or 0
