"""Test helpers over the database: rows written straight in (images in any state), SQL counting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.vocabulary import DONE, EMOTIONS, FAILED, PROCESSING, QUEUED
from db import PREVIEW, Batch, Database, Face, Image, ImageFile
from db.schema import utcnow


def scores_for(emotion: str) -> dict[str, float]:
    """A score vector whose dominant emotion is `emotion` (0.94 + 6 x 0.01)."""
    return {f"score_{name}": (0.94 if name == emotion else 0.01) for name in EMOTIONS}


def add_batch(session: Session, *, total: int = 1, name: str | None = None) -> Batch:
    batch = Batch(total=total, name=name)
    session.add(batch)
    session.flush()
    return batch


def add_image(
    session: Session,
    batch: Batch,
    *,
    platform: str = "twitter",
    status: str = DONE,
    finished_at: datetime | None = None,
    emotions: tuple[str, ...] = (),
    url: str = "https://example.com/a.jpg",
) -> Image:
    """An image and, when done, one face per entry of `emotions`, stamped the way the worker stamps them."""
    if finished_at is None and status in (DONE, FAILED):
        finished_at = utcnow()
    image = Image(
        batch_id=batch.id,
        url=url,
        platform=platform,
        status=status,
        finished_at=finished_at,
        face_count=len(emotions) if status == DONE else None,
    )
    session.add(image)
    session.flush()
    add_faces(session, image, emotions)
    return image


def add_faces(
    session: Session, image: Image, emotions: tuple[str, ...], *, size: int = 40, uncertain: bool = False
) -> None:
    """One face per emotion, with the image's batch, platform and finish time, as the worker stores them;
    boxes `size` x (size + 8) pixels, flagged low resolution under 28 px."""
    for index, emotion in enumerate(emotions):
        session.add(
            Face(
                image_id=image.id,
                batch_id=image.batch_id,
                platform=image.platform,
                analyzed_at=image.finished_at,
                x=10 * index,
                y=5,
                w=size,
                h=size + 8,
                confidence=0.99,
                emotion=emotion,
                **scores_for(emotion),
                size_px=size,
                low_resolution=size < 28,
                uncertain=uncertain,
            )
        )
    session.flush()


T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class StatsData:
    batch_a: int
    batch_b: int
    face_ids: list[int]  # in insertion order, i.e. ascending


def seed_stats(session: Session) -> StatsData:
    """A fixed data set whose counts the stats and faces tests assert exactly.

    Batch A: facebook done T0-1d [happy, happy, sad]; facebook done at T0 exactly, no faces;
             instagram done T0+1h [neutral]; twitter failed; twitter queued.
    Batch B: twitter done T0+1d [angry, happy]; instagram processing.
    """
    batch_a, batch_b = add_batch(session, total=5), add_batch(session, total=2)
    day_before = T0 - timedelta(days=1)
    add_image(session, batch_a, platform="facebook", finished_at=day_before, emotions=("happy", "happy", "sad"))
    add_image(session, batch_a, platform="facebook", finished_at=T0)
    add_image(session, batch_a, platform="instagram", finished_at=T0 + timedelta(hours=1), emotions=("neutral",))
    add_image(session, batch_a, platform="twitter", status=FAILED, finished_at=T0)
    add_image(session, batch_a, platform="twitter", status=QUEUED)
    add_image(session, batch_b, platform="twitter", finished_at=T0 + timedelta(days=1), emotions=("angry", "happy"))
    add_image(session, batch_b, platform="instagram", status=PROCESSING)
    face_ids = list(session.scalars(select(Face.id).order_by(Face.id)))
    return StatsData(batch_a.id, batch_b.id, face_ids)


@contextmanager
def counting_statements(database: Database) -> Iterator[list[str]]:
    """Collect the SQL statements run on `database` inside the block."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


def jpeg_bytes(width: int, height: int, color: tuple[int, int, int] = (150, 170, 190)) -> bytes:
    """A plain JPEG of the given size: a stand-in for a preview or an upload without faces."""
    import io

    from PIL import Image as PillowImage

    buffer = io.BytesIO()
    PillowImage.new("RGB", (width, height), color).save(buffer, "JPEG")
    return buffer.getvalue()


def add_preview(
    session: Session, image: Image, *, size: tuple[int, int] = (64, 48), created_at: datetime | None = None
) -> ImageFile:
    """The preview the worker keeps of an analysed image, `size` being the original's (as stored on the image)."""
    image.width, image.height = size
    preview = ImageFile(
        image_id=image.id,
        kind=PREVIEW,
        content_type="image/jpeg",
        data=jpeg_bytes(*size),
        created_at=created_at or utcnow(),
    )
    session.add(preview)
    session.flush()
    return preview
