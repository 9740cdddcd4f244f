"""The read queries the API serves, as plain functions over a Session.

Counting happens in SQL (GROUP BY), so a batch of thousands of images or a table of
millions of faces costs one small result set, never rows loaded into Python. Totals
read the hourly rollups (image_hours, face_hours) for the whole UTC hours of a window
and the rows themselves only for the partial hours at its ends, so /stats and
/timeline cost the same over a day or over a year of data.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from functools import reduce
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    case,
    exists,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from core.filters import INCLUDE, NO_FILTERS, ONLY, Filters
from core.vocabulary import DONE, EMOTIONS, FAILED, IMAGE_STATES, PLATFORMS, PROCESSING, QUEUED
from db.schema import (
    EMOTION_PAIRS,
    NO_FINISH_HOUR,
    Batch,
    Face,
    FaceFlagHour,
    FaceHour,
    Image,
    ImageHour,
    pair_column,
)
from db.windows import Window, as_utc, ceil_hour, floor_hour, split_window, time_range, within

HOUR, DAY = "hour", "day"
BUCKETS = (HOUR, DAY)
HOURLY_UP_TO = timedelta(days=3)  # a timeline over a longer range is drawn per day
# SQLite has no date_trunc: strftime to the start of the bucket, in the stored (UTC) time.
SQLITE_BUCKET_FORMATS = {HOUR: "%Y-%m-%d %H:00:00", DAY: "%Y-%m-%d 00:00:00"}
EXPORT_CHUNK = 1000  # rows per fetch while streaming an export
STALLED_AFTER = timedelta(minutes=2)  # queued this long with no image finishing: no worker is taking tasks
FLAGS = ("uncertain", "low_resolution")  # faces counted apart, beside the emotions (face_flag_hours)


def common_filters(
    filters: Filters,
    time_column: InstrumentedAttribute,
    *,
    platform_column: InstrumentedAttribute | None,
    batch_column: InstrumentedAttribute,
    with_window: bool = True,
) -> list[ColumnElement[bool]]:
    """The shared filters: images and faces are filtered the same way on their own columns."""
    clauses: list[ColumnElement[bool]] = []
    if filters.platform is not None and platform_column is not None:
        clauses.append(platform_column == filters.platform)
    if filters.batch_id is not None:
        clauses.append(batch_column == filters.batch_id)
    if with_window:
        clauses += time_range(time_column, filters.since, filters.until)
    return clauses


def image_filters(filters: Filters, *, with_window: bool = True) -> list[ColumnElement[bool]]:
    return common_filters(
        filters, Image.finished_at, platform_column=Image.platform, batch_column=Image.batch_id, with_window=with_window
    )


def face_filters(filters: Filters, *, with_window: bool = True) -> list[ColumnElement[bool]]:
    """The shared filters on the faces' own columns, and the filters' choice of faces."""
    clauses = common_filters(
        filters, Face.analyzed_at, platform_column=Face.platform, batch_column=Face.batch_id, with_window=with_window
    )
    return clauses + face_choice(filters)


def face_choice(filters: Filters) -> list[ColumnElement[bool]]:
    """Which faces count: at least `min_face_px`, and the uncertain ones kept, left out or alone."""
    clauses: list[ColumnElement[bool]] = []
    if filters.min_face_px:
        clauses.append(Face.size_px >= filters.min_face_px)
    if filters.uncertain != INCLUDE:
        clauses.append(Face.uncertain.is_(filters.uncertain == ONLY))
    return clauses


def flag_totals(filters: Filters, window: Window) -> Select | CompoundSelect:
    """Per platform, the faces flagged uncertain and low resolution: (platform, uncertain, low_resolution)
    groups, from face_flag_hours for whole hours and the rows for the rest, as `face_totals` counts."""
    parts: list[Select] = []
    if window.hours is not None:
        where = time_range(FaceFlagHour.hour, *window.hours)
        if filters.platform is not None:
            where.append(FaceFlagHour.platform == filters.platform)
        sums = [func.sum(getattr(FaceFlagHour, flag)) for flag in FLAGS]
        parts.append(select(FaceFlagHour.platform, *sums).where(*where).group_by(FaceFlagHour.platform))
    if window.rows:
        where = [*face_filters(filters, with_window=False), *within(Face.analyzed_at, window.rows)]
        sums = [func.sum(case((getattr(Face, flag).is_(True), 1), else_=0)) for flag in FLAGS]
        parts.append(select(Face.platform, *sums).where(*where).group_by(Face.platform))
    return counted(parts)


def images_with_chosen_faces(filters: Filters) -> Select:
    """Per platform, the done images under the filters holding at least one of the faces they choose."""
    return (
        select(Image.platform, func.count(func.distinct(Image.id)))
        .join(Face, Face.image_id == Image.id)
        .where(Image.status == DONE, *image_filters(filters), *face_choice(filters))
        .group_by(Image.platform)
    )


def counted(parts: list[Select]) -> Select | CompoundSelect:
    """One statement: the rollup's groups and the rows' groups, summed by the caller."""
    return parts[0] if len(parts) == 1 else union_all(*parts)


def image_totals(filters: Filters, window: Window) -> Select | CompoundSelect:
    """Done images and those with faces per platform: (platform, images, images_with_faces) groups."""
    parts: list[Select] = []
    if window.hours is not None:
        where = time_range(ImageHour.hour, *window.hours)
        if filters.has_window:  # a time filter never matches a NULL finish time
            where.append(ImageHour.hour != NO_FINISH_HOUR)
        if filters.platform is not None:
            where.append(ImageHour.platform == filters.platform)
        parts.append(
            select(ImageHour.platform, func.sum(ImageHour.images), func.sum(ImageHour.images_with_faces))
            .where(*where)
            .group_by(ImageHour.platform)
        )
    if window.rows:
        where = [Image.status == DONE, *image_filters(filters, with_window=False)]
        parts.append(
            select(Image.platform, func.count(), func.coalesce(func.sum(case((Image.face_count > 0, 1), else_=0)), 0))
            .where(*where, *within(Image.finished_at, window.rows))
            .group_by(Image.platform)
        )
    return counted(parts)


# Built once: SQLAlchemy makes an expression object per call, and /stats would build dozens per request.
ROLLUP_COUNTS = tuple(func.sum(getattr(FaceHour, name)) for name in EMOTIONS)
ROLLUP_PAIRS = tuple(func.sum(getattr(FaceHour, pair_column(*pair))) for pair in EMOTION_PAIRS)
ROW_COUNTS = tuple(func.sum(case((Face.emotion == name, 1), else_=0)) for name in EMOTIONS)
IMAGE_PAIRS = tuple(null() for _ in EMOTION_PAIRS)  # a group that is one image: its products are made in Python
PAIR_INDEXES = np.array([(EMOTIONS.index(first), EMOTIONS.index(second)) for first, second in EMOTION_PAIRS])


def face_totals(
    filters: Filters, window: Window, bucket: tuple[str, str] | None = None, *, pairs_dialect: str | None = None
) -> Select | CompoundSelect:
    """Faces per platform, or with `bucket` ((hour or day, dialect)) per bucket: (key, one count per emotion) groups.

    With `pairs_dialect` (the session's dialect), the groups also carry the 28 pair sums of
    EMOTION_PAIRS: face_hours' for whole hours; for the rest, the rows are grouped per image and
    hour (as image_face_counts groups them), without pairs (NULL beside the rollup's) for
    `image_sums` to multiply out.
    """
    parts: list[Select] = []
    if window.hours is not None:
        where = time_range(FaceHour.hour, *window.hours)
        if filters.platform is not None:
            where.append(FaceHour.platform == filters.platform)
        key = FaceHour.platform if bucket is None else bucket_start(FaceHour.hour, *bucket)
        sums = ROLLUP_COUNTS + (ROLLUP_PAIRS if pairs_dialect is not None else ())
        parts.append(select(key, *sums).where(*where).group_by(key))
    if window.rows:
        where = [*face_filters(filters, with_window=False), *within(Face.analyzed_at, window.rows)]
        if pairs_dialect is not None:
            per_image = (Face.image_id, Face.platform, bucket_start(Face.analyzed_at, HOUR, pairs_dialect))
            beside_rollup = IMAGE_PAIRS if parts else ()  # a UNION needs the rollup's columns; alone, not
            parts.append(select(Face.platform, *ROW_COUNTS, *beside_rollup).where(*where).group_by(*per_image))
        else:
            key = Face.platform if bucket is None else bucket_start(Face.analyzed_at, *bucket)
            parts.append(select(key, *ROW_COUNTS).where(*where).group_by(key))
    return counted(parts)


def image_sums(images: list[Sequence[Any]]) -> tuple[list[int], list[int]]:
    """Per-image counts (EMOTIONS order) summed: the counts, and the 28 pair sums sum_i c_ie x c_if."""
    counts = np.array(images, dtype=np.int64).reshape(-1, len(EMOTIONS))
    cross = counts.T @ counts
    return counts.sum(axis=0).tolist(), cross[PAIR_INDEXES[:, 0], PAIR_INDEXES[:, 1]].tolist()


def add_counts(into: dict[str, int], counts: Sequence[Any]) -> None:
    """Add a face_totals row's counts (EMOTIONS order) to `into`."""
    for name, count in zip(EMOTIONS, counts, strict=True):
        into[name] = into.get(name, 0) + int(count or 0)


def batch_counts(
    session: Session, batch_ids: Iterable[int], filters: Filters = NO_FILTERS
) -> dict[int, dict[str, int]]:
    """Per batch: images in each state and faces found, in one grouped query.

    Faces are the sum of the images' `face_count`, which the worker sets in the same
    transaction as the faces themselves; a choice of faces (`min_face_px`, `uncertain`)
    counts the chosen faces instead, in one more query. Batches without images still get zeros.
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
    if filters.chooses_faces:
        chosen = session.execute(
            select(Face.batch_id, func.count())
            .where(Face.batch_id.in_(ids), *face_choice(filters))
            .group_by(Face.batch_id)
        )
        for batch_id in ids:
            counts[batch_id]["faces"] = 0
        for batch_id, faces in chosen:
            counts[batch_id]["faces"] = int(faces)
    return counts


def latest_batches(session: Session, limit: int, filters: Filters = NO_FILTERS) -> Sequence[Batch]:
    """Newest first; ids grow with time, and the primary key orders without a sort.

    Filtered like the dashboard's other panels: `platform` keeps batches with an image on
    that platform, `since`/`until` bound the time the batch was created.
    """
    # Batch.platform is only the submitted one: filter on the images instead
    where = common_filters(filters, Batch.created_at, platform_column=None, batch_column=Batch.id)
    if filters.platform is not None:
        where.append(exists().where(Image.batch_id == Batch.id, Image.platform == filters.platform))
    return session.scalars(select(Batch).where(*where).order_by(Batch.id.desc()).limit(limit)).all()


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


def keyset_page(
    session: Session, query: Select, id_column: InstrumentedAttribute, limit: int, cursor: int | None
) -> tuple[Sequence[Any], int | None]:
    """Newest first by id, `limit` rows after `cursor`: stable while workers keep inserting.

    Returns the page and the cursor for the next one (None on the last page); one row
    beyond `limit` is read to know whether there is a next page.
    """
    if cursor is not None:
        query = query.where(id_column < cursor)
    rows = session.scalars(query.order_by(id_column.desc()).limit(limit + 1)).all()
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


def face_id_bounds(filters: Filters, emotion: str | None) -> list[ColumnElement[bool]]:
    """The lowest and highest id of the faces in the window's hours, from face_hours, as two conditions.

    Redundant, so exact: every face of the window lies in one of those hours. They let an
    id-ordered listing start its scan where the window's faces are: without them, Postgres
    walks the primary key down from the newest face through every face after `until`.
    On a window without faces the bounds are NULL and nothing matches, as nothing would.
    """
    since, until = filters.since, filters.until
    if not filters.has_window:
        return []
    faces = getattr(FaceHour, emotion) if emotion else reduce(operator.add, (getattr(FaceHour, e) for e in EMOTIONS))
    hours: list[ColumnElement[bool]] = [faces > 0]  # hours whose faces were all deleted bound nothing
    hours += time_range(
        FaceHour.hour, None if since is None else floor_hour(since), None if until is None else ceil_hour(until)
    )
    if filters.platform is not None:
        hours.append(FaceHour.platform == filters.platform)
    return [
        Face.id >= select(func.min(FaceHour.min_face_id)).where(*hours).scalar_subquery(),
        Face.id <= select(func.max(FaceHour.max_face_id)).where(*hours).scalar_subquery(),
    ]


def face_conditions(filters: Filters, emotion: str | None = None) -> list[ColumnElement[bool]]:
    """The shared filters plus the face listing's own, the dominant emotion, and the window's id bounds."""
    where = face_filters(filters)
    if emotion is not None:
        where.append(Face.emotion == emotion)
    return where + face_id_bounds(filters, emotion)


def faces_page(
    session: Session,
    filters: Filters = NO_FILTERS,
    *,
    emotion: str | None = None,
    limit: int,
    cursor: int | None = None,
) -> tuple[Sequence[Face], int | None]:
    """Newest faces first, keyset-paginated on id."""
    where = face_conditions(filters, emotion)
    return keyset_page(session, select(Face).where(*where), Face.id, limit, cursor)


def summary(
    images: int, images_with_faces: int, emotion_counts: dict[str, int], flags: dict[str, int] | None = None
) -> dict[str, Any]:
    """One stats block; every emotion is present so clients need no defaults. `flags`: of the faces,
    those uncertain and low resolution, counted apart (they are among the emotions too)."""
    faces = sum(emotion_counts.values())
    return {
        "images": images,
        "images_with_faces": images_with_faces,
        "faces": faces,
        **{flag: (flags or {}).get(flag, 0) for flag in FLAGS},
        "emotions": {
            name: {"count": emotion_counts.get(name, 0), "share": emotion_counts.get(name, 0) / faces if faces else 0.0}
            for name in EMOTIONS
        },
    }


def stats(session: Session, filters: Filters = NO_FILTERS, *, with_pairs: bool = False) -> dict[str, Any]:
    """Totals and emotion shares over analysed images, overall and per platform.

    Two grouped statements (images by platform; faces by platform, a count per emotion), each the
    rollup's groups and the partial hours' rows in one UNION ALL; the totals are sums of
    the groups, so overall and per-platform numbers always agree. A platform whose counts
    went back to zero (its images were deleted) is left out, as it would be counting rows.
    `with_pairs`: every block also holds `cross`, the 7 x 7 sums over images of c_e x c_f
    (EMOTIONS order) that clustered intervals need, from the same statement.

    A choice of faces (`min_face_px`, `uncertain`) is counted from the faces table (the rollups
    know neither), `images_with_faces` then counts the images holding a chosen face, and
    `faces_left_out` says how many faces of the same view the choice leaves out.
    """
    everything = filters.all_faces()
    window = split_window(filters)
    image_rows = session.execute(image_totals(everything, split_window(everything))).all()
    dialect = session.get_bind().dialect.name if with_pairs else None
    face_rows = session.execute(face_totals(filters, window, pairs_dialect=dialect)).all()
    flags_by_platform: dict[str, dict[str, int]] = {}
    for flag_platform, *flagged in session.execute(flag_totals(filters, window)):
        into = flags_by_platform.setdefault(flag_platform, {})
        for flag, count in zip(FLAGS, flagged, strict=True):
            into[flag] = into.get(flag, 0) + int(count or 0)

    emotions_by_platform: dict[str, dict[str, int]] = {}
    all_emotions: dict[str, int] = {}
    pairs_by_platform: dict[str, dict[tuple[str, str], int]] = {}
    images_of: dict[str, list[Sequence[Any]]] = {}  # per-image groups of the rows, their pairs still to make
    for face_platform, *sums in face_rows:
        counts, pairs = sums[: len(EMOTIONS)], sums[len(EMOTIONS) :]
        if with_pairs and (not pairs or pairs[0] is None):
            images_of.setdefault(face_platform, []).append(counts)
            continue
        add_counts(emotions_by_platform.setdefault(face_platform, {}), counts)
        add_counts(all_emotions, counts)
        into = pairs_by_platform.setdefault(face_platform, {})
        for pair, value in zip(EMOTION_PAIRS, pairs, strict=False):
            into[pair] = into.get(pair, 0) + int(value or 0)
    for face_platform, images in images_of.items():  # summed in numpy: a batch is up to 1000 of them
        counts, pairs = image_sums(images)
        add_counts(emotions_by_platform.setdefault(face_platform, {}), counts)
        add_counts(all_emotions, counts)
        into = pairs_by_platform.setdefault(face_platform, {})
        for pair, value in zip(EMOTION_PAIRS, pairs, strict=True):
            into[pair] = into.get(pair, 0) + value

    images_by_platform: dict[str, tuple[int, int]] = {}
    for image_platform, images, with_faces in image_rows:
        before = images_by_platform.get(image_platform, (0, 0))
        images_by_platform[image_platform] = (before[0] + int(images), before[1] + int(with_faces))
    images_by_platform = {name: counts for name, counts in images_by_platform.items() if counts[0]}
    left_out = 0
    if filters.chooses_faces:
        chosen = dict(session.execute(images_with_chosen_faces(filters)).all())
        images_by_platform = {name: (n, int(chosen.get(name, 0))) for name, (n, _) in images_by_platform.items()}
        total: dict[str, int] = {}
        for _platform, *counts in session.execute(face_totals(everything, split_window(everything))):
            add_counts(total, counts)
        left_out = sum(total.values()) - sum(all_emotions.values())
    order = {name: index for index, name in enumerate(PLATFORMS)}
    platforms = sorted(images_by_platform, key=lambda name: (order.get(name, len(order)), name))
    by_platform = {
        name: summary(*images_by_platform[name], emotions_by_platform.get(name, {}), flags_by_platform.get(name))
        for name in platforms
    }
    all_flags = {flag: sum(flags.get(flag, 0) for flags in flags_by_platform.values()) for flag in FLAGS}
    result = {
        **summary(
            sum(images for images, _ in images_by_platform.values()),
            sum(with_faces for _, with_faces in images_by_platform.values()),
            all_emotions,
            all_flags,
        ),
        "faces_left_out": left_out,
        "by_platform": by_platform,
    }
    if with_pairs:
        for name in platforms:
            by_platform[name]["cross"] = cross_matrix(pairs_by_platform.get(name, {}))
        result["cross"] = cross_matrix(
            {pair: sum(pairs.get(pair, 0) for pairs in pairs_by_platform.values()) for pair in EMOTION_PAIRS}
        )
    return result


def cross_matrix(pairs: dict[tuple[str, str], int]) -> list[list[int]]:
    """The symmetric 7 x 7 matrix (EMOTIONS order) of the pair sums."""
    return [[pairs.get((first, second), pairs.get((second, first), 0)) for second in EMOTIONS] for first in EMOTIONS]


def recent_images(
    session: Session,
    filters: Filters = NO_FILTERS,
    *,
    status: str | None = None,
    limit: int,
    cursor: int | None = None,
) -> tuple[Sequence[Image], int | None]:
    """Images across batches, newest first, keyset-paginated, faces loaded in one more SELECT."""
    where = image_filters(filters)
    if status is not None:
        where.append(Image.status == status)
    query = select(Image).where(*where).options(selectinload(Image.faces))
    return keyset_page(session, query, Image.id, limit, cursor)


def image_states(session: Session, filters: Filters = NO_FILTERS) -> dict[str, int]:
    """Images in each state under the shared filters (time filters need `finished_at`, so only
    done and failed images pass them)."""
    counts = dict.fromkeys(IMAGE_STATES, 0)
    where = image_filters(filters)
    rows = session.execute(select(Image.status, func.count()).where(*where).group_by(Image.status))
    for status, count in rows:
        if status in counts:
            counts[status] = int(count)
    return counts


def worker_state(
    queued: int, processing: int, oldest_queued_at: datetime | None, last_finished_at: datetime | None, now: datetime
) -> str:
    """What the queue says about the workers, from the database alone (works on every broker).

    `stalled`: images have waited longer than STALLED_AFTER and none finished meanwhile, which
    is what a queue with no worker looks like; `waiting`: queued, not yet that long.
    """
    if processing:
        return "working"
    if not queued or oldest_queued_at is None:
        return "idle"
    quiet = last_finished_at is None or now - last_finished_at > STALLED_AFTER
    return "stalled" if now - oldest_queued_at > STALLED_AFTER and quiet else "waiting"


def queue_activity(session: Session, now: datetime) -> dict[str, Any]:
    """Across all batches: images waiting and in progress, the oldest wait, the last finish, the verdict."""
    states = image_states(session)
    oldest = as_utc(session.scalar(select(func.min(Image.enqueued_at)).where(Image.status == QUEUED)))
    last = as_utc(session.scalar(select(func.max(Image.finished_at))))
    return {
        "queued": states[QUEUED],
        "processing": states[PROCESSING],
        "oldest_queued_at": oldest,
        "last_finished_at": last,
        "state": worker_state(states[QUEUED], states[PROCESSING], oldest, last, now),
    }


def bucket_start(column: InstrumentedAttribute, bucket: str, dialect: str) -> ColumnElement[Any]:
    """The start of the hour or day a timestamp falls in, in UTC.

    Literal arguments, not bound parameters: Postgres must see the same expression in
    SELECT and GROUP BY, and `bucket` comes from BUCKETS only.
    """
    if dialect == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), column)
        return func.date_trunc(literal_column(f"'{bucket}'"), utc)
    return func.strftime(literal_column(f"'{SQLITE_BUCKET_FORMATS[bucket]}'"), column)


def choose_bucket(start: datetime | None, end: datetime | None) -> str:
    """Hours for a range of up to three days, else days: enough bars to see a trend, few enough to read."""
    if start is None or end is None or end - start <= HOURLY_UP_TO:
        return HOUR
    return DAY


def timeline(session: Session, filters: Filters = NO_FILTERS, *, bucket: str | None = None) -> dict[str, Any]:
    """Faces per emotion per hour or day, grouped in SQL (the rollup's hours and the partial
    hours' rows); buckets without faces are left out.

    The range is `since`..`until`, each defaulting to the first/last face under the filters;
    `bucket` defaults to `choose_bucket` over that range.
    """
    where = face_filters(filters)
    start, end = filters.since, filters.until
    if start is None or end is None:
        extent = select(func.min(Face.analyzed_at), func.max(Face.analyzed_at)).where(*where)
        first, last = session.execute(extent).one()
        start, end = start or as_utc(first), end or as_utc(last)
    bucket = bucket or choose_bucket(start, end)
    dialect = session.get_bind().dialect.name
    rows = session.execute(face_totals(filters, split_window(filters), bucket=(bucket, dialect)))
    buckets: dict[datetime, dict[str, int]] = {}
    for bucket_value, *counts in rows:
        add_counts(buckets.setdefault(as_utc(bucket_value), dict.fromkeys(EMOTIONS, 0)), counts)
    items = [
        {"start": key, "faces": sum(counts.values()), "emotions": counts}
        for key, counts in sorted(buckets.items())
        if sum(counts.values())
    ]
    return {"bucket": bucket, "start": start, "end": end, "items": items}


def faces_for_export(
    session: Session, filters: Filters = NO_FILTERS, emotion: str | None = None
) -> Iterator[tuple[Face, str]]:
    """Every face under the filters (as `faces_page` takes them) with its image URL, newest first,
    fetched in chunks so an export of millions of faces never sits in memory."""
    query = (
        select(Face, Image.url)
        .join(Image, Image.id == Face.image_id)
        .where(*face_conditions(filters, emotion))
        .order_by(Face.id.desc())
        .execution_options(yield_per=EXPORT_CHUNK)
    )
    yield from session.execute(query)  # rows unpack as (face, url)
