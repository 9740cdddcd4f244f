"""The read queries the API serves, as plain functions over a Session.

Counting happens in SQL (GROUP BY), so a batch of thousands of images or a table of
millions of faces costs one small result set, never rows loaded into Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from db.schema import DONE, FAILED, IMAGE_STATES, PLATFORMS, PROCESSING, QUEUED, Batch, Face, Image
from models.labels import EMOTIONS


def common_filters(
    time_column: InstrumentedAttribute,
    *,
    platform_column: InstrumentedAttribute,
    batch_column: InstrumentedAttribute,
    platform: str | None,
    batch_id: int | None,
    since: datetime | None,
    until: datetime | None,
) -> list[ColumnElement[bool]]:
    """The shared filters: images and faces are filtered the same way on their own columns.

    `since` is inclusive and `until` exclusive, so consecutive windows never count a row twice.
    """
    clauses: list[ColumnElement[bool]] = []
    if platform is not None:
        clauses.append(platform_column == platform)
    if batch_id is not None:
        clauses.append(batch_column == batch_id)
    if since is not None:
        clauses.append(time_column >= since)
    if until is not None:
        clauses.append(time_column < until)
    return clauses


def image_filters(**filters: Any) -> list[ColumnElement[bool]]:
    return common_filters(Image.finished_at, platform_column=Image.platform, batch_column=Image.batch_id, **filters)


def face_filters(**filters: Any) -> list[ColumnElement[bool]]:
    return common_filters(Face.analyzed_at, platform_column=Face.platform, batch_column=Face.batch_id, **filters)


def batch_counts(session: Session, batch_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per batch: images in each state and faces found, in one grouped query.

    Faces are the sum of the images' `face_count`, which the worker sets in the same
    transaction as the faces themselves. Batches without images still get zeros.
    """
    ids = list(batch_ids)
    counts: dict[int, dict[str, int]] = {
        batch_id: {QUEUED: 0, PROCESSING: 0, DONE: 0, FAILED: 0, "faces": 0} for batch_id in ids
    }
    if not ids:
        return counts
    rows = session.execute(
        select(Image.batch_id, Image.status, func.count(), func.coalesce(func.sum(Image.face_count), 0))
        .where(Image.batch_id.in_(ids))
        .group_by(Image.batch_id, Image.status)
    )
    for batch_id, status, images, faces in rows:
        if status in IMAGE_STATES:
            counts[batch_id][status] += int(images)
        counts[batch_id]["faces"] += int(faces)
    return counts


def latest_batches(session: Session, limit: int) -> Sequence[Batch]:
    """Newest first; ids grow with time, and the primary key orders without a sort."""
    return session.scalars(select(Batch).order_by(Batch.id.desc()).limit(limit)).all()


def images_page(
    session: Session, batch_id: int, *, status: str | None, page: int, per_page: int
) -> tuple[Sequence[Image], int]:
    """One page of a batch's images (by id) with their faces, and the total matching.

    Faces come in one extra SELECT ... IN for the whole page (selectinload), not one per image.
    """
    where = [Image.batch_id == batch_id]
    if status is not None:
        where.append(Image.status == status)
    total = session.scalar(select(func.count()).select_from(Image).where(*where)) or 0
    images = session.scalars(
        select(Image)
        .where(*where)
        .order_by(Image.id)
        .offset((page - 1) * per_page)
        .limit(per_page)
        .options(selectinload(Image.faces))
    ).all()
    return images, int(total)


def faces_page(
    session: Session,
    *,
    platform: str | None = None,
    emotion: str | None = None,
    batch_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    cursor: int | None = None,
) -> tuple[Sequence[Face], int | None]:
    """Newest faces first, keyset-paginated on id: stable while workers keep inserting.

    Returns the page and the cursor for the next one (None on the last page); one row
    beyond `limit` is read to know whether there is a next page.
    """
    where = face_filters(platform=platform, batch_id=batch_id, since=since, until=until)
    if emotion is not None:
        where.append(Face.emotion == emotion)
    if cursor is not None:
        where.append(Face.id < cursor)
    faces = session.scalars(select(Face).where(*where).order_by(Face.id.desc()).limit(limit + 1)).all()
    if len(faces) > limit:
        return faces[:limit], faces[limit - 1].id
    return faces, None


def summary(images: int, images_with_faces: int, emotion_counts: dict[str, int]) -> dict[str, Any]:
    """One stats block; every emotion is present so clients need no defaults."""
    faces = sum(emotion_counts.values())
    return {
        "images": images,
        "images_with_faces": images_with_faces,
        "faces": faces,
        "emotions": {
            name: {"count": emotion_counts.get(name, 0), "share": emotion_counts.get(name, 0) / faces if faces else 0.0}
            for name in EMOTIONS
        },
    }


def stats(
    session: Session,
    *,
    platform: str | None = None,
    batch_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Totals and emotion shares over analysed images, overall and per platform.

    Two grouped queries (images by platform; faces by platform and emotion); the totals
    are sums of the groups, so overall and per-platform numbers always agree.
    """
    filters = {"platform": platform, "batch_id": batch_id, "since": since, "until": until}
    image_rows = session.execute(
        select(
            Image.platform,
            func.count(),
            func.coalesce(func.sum(case((Image.face_count > 0, 1), else_=0)), 0),
        )
        .where(Image.status == DONE, *image_filters(**filters))
        .group_by(Image.platform)
    ).all()
    face_rows = session.execute(
        select(Face.platform, Face.emotion, func.count())
        .where(*face_filters(**filters))
        .group_by(Face.platform, Face.emotion)
    ).all()

    emotions_by_platform: dict[str, dict[str, int]] = {}
    all_emotions: dict[str, int] = {}
    for face_platform, emotion, count in face_rows:
        emotions_by_platform.setdefault(face_platform, {})[emotion] = int(count)
        all_emotions[emotion] = all_emotions.get(emotion, 0) + int(count)

    images_by_platform = {row[0]: (int(row[1]), int(row[2])) for row in image_rows}
    order = {name: index for index, name in enumerate(PLATFORMS)}
    by_platform = {
        name: summary(*images_by_platform[name], emotions_by_platform.get(name, {}))
        for name in sorted(images_by_platform, key=lambda name: (order.get(name, len(order)), name))
    }
    return {
        **summary(
            sum(images for images, _ in images_by_platform.values()),
            sum(with_faces for _, with_faces in images_by_platform.values()),
            all_emotions,
        ),
        "by_platform": by_platform,
    }
