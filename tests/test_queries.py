"""db.queries on the real Postgres (and SQLite where the SQL differs): grouped counting in few
statements, keyset paging edges, and hourly rollups that answer exactly what counting the rows would."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core.filters import Filters
from core.vocabulary import DONE, EMOTIONS, FAILED, PLATFORMS, PROCESSING, QUEUED
from db import Batch, Database, Face, Image
from db.queries import FLAGS, batch_counts, faces_page, stats, summary, timeline
from db.schema import EMOTION_PAIRS, NO_FINISH_HOUR, FaceFlagHour, FaceHour, ImageFaceCount, ImageHour
from db.windows import as_utc
from tests.conftest import truncate_all
from tests.factories import T0, add_batch, add_faces, add_image, counting_statements, seed_stats


def test_batch_counts_groups_in_one_statement(pg_database: Database) -> None:
    with pg_database.session() as session:
        busy, empty = add_batch(session, total=6), add_batch(session, total=0)
        for status, emotions in [
            (QUEUED, ()),
            (QUEUED, ()),
            (PROCESSING, ()),
            (DONE, ("happy", "sad")),
            (DONE, ()),
            (FAILED, ()),
        ]:
            add_image(session, busy, status=status, emotions=emotions)
        busy_id, empty_id = busy.id, empty.id
    with pg_database.session() as session, counting_statements(pg_database) as statements:
        counts = batch_counts(session, [busy_id, empty_id, 999])
    assert len(statements) == 1
    assert "GROUP BY" in statements[0]
    assert counts == {
        busy_id: {"queued": 2, "processing": 1, "done": 2, "failed": 1, "faces": 2},
        empty_id: {"queued": 0, "processing": 0, "done": 0, "failed": 0, "faces": 0},
        999: {"queued": 0, "processing": 0, "done": 0, "failed": 0, "faces": 0},
    }


def test_batch_counts_of_no_batches_runs_no_sql(pg_database: Database) -> None:
    with pg_database.session() as session, counting_statements(pg_database) as statements:
        assert batch_counts(session, []) == {}
    assert statements == []


def test_stats_is_three_grouped_statements(pg_database: Database) -> None:
    """Images, faces per emotion, flagged faces: each one grouped statement, however much data."""
    with pg_database.session() as session:
        seed_stats(session)
    with pg_database.session() as session, counting_statements(pg_database) as statements:
        result = stats(session)
    assert len(statements) == 3
    assert all("GROUP BY" in statement for statement in statements)
    assert (result["images"], result["images_with_faces"], result["faces"]) == (4, 3, 6)
    assert list(result["by_platform"]) == ["facebook", "instagram", "twitter"]


def test_faces_page_walks_every_face_once(pg_database: Database) -> None:
    with pg_database.session() as session:
        data = seed_stats(session)
    seen: list[int] = []
    cursor: int | None = None
    pages = 0
    with pg_database.session() as session:
        while True:
            faces, cursor = faces_page(session, limit=4, cursor=cursor)
            seen += [face.id for face in faces]
            pages += 1
            if cursor is None:
                break
    assert seen == sorted(data.face_ids, reverse=True)
    assert pages == 2


def test_faces_page_full_last_page_has_no_cursor(pg_database: Database) -> None:
    with pg_database.session() as session:
        data = seed_stats(session)
        faces, cursor = faces_page(session, limit=len(data.face_ids))
    assert [face.id for face in faces] == sorted(data.face_ids, reverse=True)
    assert cursor is None


# --- hourly rollups: the same answers as counting the rows ------------------------------------------


def hour_of(value: datetime) -> datetime:
    return as_utc(value).replace(minute=0, second=0, microsecond=0)


def recount(session: Session) -> tuple[dict, dict]:
    """What image_hours and face_hours must hold, counted from the rows in Python."""
    images: Counter = Counter()
    for image in session.scalars(select(Image).where(Image.status == DONE)):
        key = (hour_of(image.finished_at) if image.finished_at else NO_FINISH_HOUR, image.platform)
        images[key, "images"] += 1
        images[key, "with_faces"] += int((image.face_count or 0) > 0)
    faces = Counter((hour_of(face.analyzed_at), face.platform, face.emotion) for face in session.scalars(select(Face)))
    expected_images = {
        key: (images[key, "images"], images[key, "with_faces"]) for key, kind in images if kind == "images"
    }
    return expected_images, dict(faces)


def rollups(session: Session) -> tuple[dict, dict]:
    """image_hours and face_hours as stored, rows that went back to zero left out."""
    images = {
        (as_utc(row.hour), row.platform): (row.images, row.images_with_faces)
        for row in session.scalars(select(ImageHour))
        if row.images or row.images_with_faces
    }
    faces = {
        (as_utc(row.hour), row.platform, emotion): count
        for row in session.scalars(select(FaceHour))
        for emotion, count in row.counts.items()
    }
    return images, {key: count for key, count in faces.items() if count}


def image_hour_counts(faces: Sequence[Face]) -> dict[tuple, Counter]:
    """Each image's faces per emotion, per UTC hour and platform: what image_face_counts must hold."""
    counts: dict[tuple, Counter] = {}
    for face in faces:
        counts.setdefault((face.image_id, hour_of(face.analyzed_at), face.platform), Counter())[face.emotion] += 1
    return counts


def pair_sums(counts: dict[tuple, Counter]) -> dict[tuple, int]:
    """Per (hour, platform, pair): the sum over images of c_e x c_f; zeros left out."""
    sums: Counter = Counter()
    for (_, hour, platform), image in counts.items():
        for first, second in EMOTION_PAIRS:
            sums[hour, platform, first, second] += image[first] * image[second]
    return {key: value for key, value in sums.items() if value}


def stored_pairs(session: Session) -> tuple[dict, dict]:
    """image_face_counts and face_hours' pair sums as stored (zeros left out)."""
    images = {
        (row.image_id, as_utc(row.hour), row.platform): Counter(
            {e: getattr(row, e) for e in EMOTIONS if getattr(row, e)}
        )
        for row in session.scalars(select(ImageFaceCount))
    }
    pairs = {
        (as_utc(row.hour), row.platform, *pair): value
        for row in session.scalars(select(FaceHour))
        for pair, value in row.pairs.items()
        if value
    }
    return images, pairs


def flag_recount(session: Session) -> dict:
    """What face_flag_hours must hold: the flagged faces per hour, platform and flag."""
    flagged: Counter = Counter()
    for face in session.scalars(select(Face)):
        for flag in FLAGS:
            flagged[hour_of(face.analyzed_at), face.platform, flag] += int(getattr(face, flag))
    return {key: count for key, count in flagged.items() if count}


def flag_rollups(session: Session) -> dict:
    stored = {
        (as_utc(row.hour), row.platform, flag): getattr(row, flag)
        for row in session.scalars(select(FaceFlagHour))
        for flag in FLAGS
    }
    return {key: count for key, count in stored.items() if count}


def assert_rollups_match(database: Database) -> None:
    with database.session() as session:
        assert rollups(session) == recount(session)
        assert flag_rollups(session) == flag_recount(session)
        expected_counts = image_hour_counts(session.scalars(select(Face)).all())
        assert stored_pairs(session) == (expected_counts, pair_sums(expected_counts))
        bounds = {
            (as_utc(row.hour), row.platform): (row.min_face_id, row.max_face_id)
            for row in session.scalars(select(FaceHour))
        }
        for face in session.scalars(select(Face)):
            low, high = bounds[hour_of(face.analyzed_at), face.platform]
            assert low <= face.id <= high


def seed_random(session: Session, seed: int = 6) -> None:
    """Images over three days at odd minutes and microseconds, some exactly on the hour, a few
    done without a finish time (as a bare status update leaves them)."""
    rng = random.Random(seed)
    batches = [add_batch(session, total=30) for _ in range(3)]
    for index in range(90):
        status = rng.choice([DONE, DONE, DONE, FAILED, QUEUED])
        finished = T0 + timedelta(minutes=rng.randrange(3 * 24 * 60), microseconds=rng.randrange(10**6))
        if index % 9 == 0:
            finished = T0 + timedelta(hours=rng.randrange(72))
        emotions = tuple(rng.choice(EMOTIONS) for _ in range(rng.choice([0, 1, 1, 2, 4]))) if status == DONE else ()
        add_image(
            session,
            rng.choice(batches),
            platform=rng.choice(PLATFORMS),
            status=status,
            finished_at=finished,
            emotions=emotions,
        )
    unfinished = session.scalars(select(Image.id).where(Image.status == DONE).order_by(Image.id).limit(3)).all()
    session.execute(update(Image).where(Image.id.in_(unfinished)).values(finished_at=None))
    # Small and uncertain faces, set by updates: the flag rollup follows them.
    session.execute(update(Face).where(Face.id % 3 == 0).values(w=20, h=26, size_px=20, low_resolution=True))
    session.execute(update(Face).where(Face.id % 4 == 1).values(uncertain=True))
    session.expire_all()  # the rows as stored, for the tests that count them in Python


def test_rollups_follow_every_kind_of_write(any_database: Database) -> None:
    with any_database.session() as session:
        seed_random(session)
    assert_rollups_match(any_database)
    with any_database.session() as session:
        some = session.scalars(select(Image.id).where(Image.status == DONE).order_by(Image.id)).all()
        session.execute(update(Image).where(Image.id.in_(some[3:8])).values(status=FAILED))  # done no more
        session.execute(update(Image).where(Image.id.in_(some[8:12])).values(face_count=0))
        session.execute(update(Image).where(Image.id.in_(some[12:15])).values(finished_at=T0 - timedelta(days=2)))
        session.execute(update(Face).where(Face.id % 5 == 0).values(emotion="fear", analyzed_at=T0 + timedelta(days=9)))
        session.execute(delete(Face).where(Face.id % 7 == 0))
        first_batch = session.scalars(select(Batch.id).order_by(Batch.id)).first()
        session.execute(delete(Batch).where(Batch.id == first_batch))  # the database cascades to images and faces
    assert_rollups_match(any_database)
    truncate_all(any_database)
    with any_database.session() as session:
        assert rollups(session) == ({}, {})
        assert stored_pairs(session) == ({}, {})


def test_concurrent_writers_of_one_image_keep_the_pair_sums_exact(pg_database: Database) -> None:
    """Two transactions add faces to one image at once: the second waits on the image's counts row and
    then builds on the first's committed counts, so the sums of products stay those of the rows."""
    with pg_database.session() as session:
        image_id = add_image(session, add_batch(session), emotions=("happy",)).id
    first_flushed = threading.Event()
    errors: list[BaseException] = []

    def write(emotions: tuple[str, ...], wait: bool) -> None:
        try:
            if wait:
                first_flushed.wait(timeout=10)
            with pg_database.session() as session:
                add_faces(session, session.get(Image, image_id), emotions)  # the trigger runs at this flush
                if not wait:
                    first_flushed.set()
                    time.sleep(0.5)  # the other writer is now blocked on the counts row this one holds
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(("happy", "sad"), False)),
        threading.Thread(target=write, args=(("happy",), True)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert_rollups_match(pg_database)
    with pg_database.session() as session:
        counts = session.scalars(select(ImageFaceCount).where(ImageFaceCount.image_id == image_id)).one()
        assert (counts.happy, counts.sad) == (3, 1)
        row = session.scalars(select(FaceHour)).one()
        assert (row.pairs["happy", "happy"], row.pairs["happy", "sad"], row.pairs["sad", "sad"]) == (9, 3, 1)


def in_window(value: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    if since is None and until is None:
        return True
    return value is not None and (since is None or as_utc(value) >= since) and (until is None or as_utc(value) < until)


def expected_cross(faces: Sequence[Face]) -> list[list[int]]:
    """The sum over images (per UTC hour, as the rollups group them) of c_e x c_f, EMOTIONS order."""
    images = image_hour_counts(faces).values()
    return [[sum(image[first] * image[second] for image in images) for second in EMOTIONS] for first in EMOTIONS]


def expected_stats(
    session: Session, platform: str | None, batch_id: int | None, since, until, with_pairs: bool = False, **choice
) -> dict:
    """The /stats answer counted in Python from the rows: what the rollups must reproduce.

    `choice` (min_face_px, uncertain) chooses faces as Filters does; images with faces then count
    the images holding a chosen face."""
    min_face_px, uncertain = choice.get("min_face_px"), choice.get("uncertain", "include")

    def chosen(face: Face) -> bool:
        wanted = {"include": (False, True), "exclude": (False,), "only": (True,)}[uncertain]
        return face.size_px >= (min_face_px or 0) and face.uncertain in wanted

    def flags(group: list[Face]) -> dict[str, int]:
        return {flag: sum(int(getattr(f, flag)) for f in group) for flag in FLAGS}

    def kept(row_platform: str, row_batch: int, when: datetime | None) -> bool:
        return (platform in (None, row_platform)) and (batch_id in (None, row_batch)) and in_window(when, since, until)

    images = [
        i
        for i in session.scalars(select(Image).where(Image.status == DONE))
        if kept(i.platform, i.batch_id, i.finished_at)
    ]
    every_face = [f for f in session.scalars(select(Face)) if kept(f.platform, f.batch_id, f.analyzed_at)]
    faces = [f for f in every_face if chosen(f)]
    with_chosen = {f.image_id for f in session.scalars(select(Face)) if chosen(f)}  # the image's time decides
    has_faces = (lambda i: i.id in with_chosen) if choice else (lambda i: (i.face_count or 0) > 0)
    blocks = {
        name: summary(
            sum(1 for i in images if i.platform == name),
            sum(1 for i in images if i.platform == name and has_faces(i)),
            Counter(f.emotion for f in faces if f.platform == name),
            flags([f for f in faces if f.platform == name]),
        )
        for name in PLATFORMS
        if any(i.platform == name for i in images)
    }
    result = {
        **summary(len(images), sum(1 for i in images if has_faces(i)), Counter(f.emotion for f in faces), flags(faces)),
        "faces_left_out": len(every_face) - len(faces),
        "by_platform": blocks,
    }
    if with_pairs:
        result["cross"] = expected_cross(faces)
        for name, block in blocks.items():
            block["cross"] = expected_cross([f for f in faces if f.platform == name])
    return result


HOUR = timedelta(hours=1)
WINDOWS = [
    (None, None),
    (T0, None),  # on the hour
    (None, T0 + timedelta(days=1)),
    (T0 + timedelta(minutes=17, seconds=3), T0 + timedelta(days=2, minutes=41)),  # partial hours at both ends
    (T0 + timedelta(minutes=5), T0 + timedelta(minutes=50)),  # inside one hour
    (T0 + timedelta(minutes=30), T0 + timedelta(hours=1, minutes=30)),  # two partial hours, no whole one
    (T0 + 5 * HOUR, T0 + 7 * HOUR),  # whole hours only
    (T0 + timedelta(days=1, minutes=1), None),
    (None, T0 + timedelta(hours=30, seconds=1)),
    (T0 + 9 * HOUR, T0 + 3 * HOUR),  # empty: since after until
    (datetime(1960, 1, 1, tzinfo=UTC), None),  # before the no-finish-time hour
]


def data_windows(faces: Sequence[Face]) -> list[tuple[datetime | None, datetime | None]]:
    """Windows whose ends fall on faces: a face exactly at `since` is in, one exactly at `until` out,
    one a microsecond before `until` in; so the partial hours at both ends hold faces."""
    tick = timedelta(microseconds=1)
    times = sorted(as_utc(face.analyzed_at) for face in faces)
    picks = [times[len(times) * k // 7] for k in range(1, 7)]
    return [
        (picks[0], picks[3]),
        (picks[1], picks[4] + tick),
        (picks[2] + tick, picks[5]),
        (None, picks[2] + tick),
        (picks[4], None),
        (picks[3], picks[3] + tick),
    ]


def test_stats_and_timeline_over_any_window_equal_counting_the_rows(any_database: Database) -> None:
    with any_database.session() as session:
        seed_random(session)
        batch_id = session.scalars(select(Batch.id).order_by(Batch.id)).first()
        faces = session.scalars(select(Face)).all()
        windows = [*WINDOWS, *data_windows(faces)]
        for since, until in windows:
            for platform, batch in [(None, None), ("twitter", None), (None, batch_id), ("facebook", batch_id)]:
                filters = Filters(platform, batch, since, until)
                assert stats(session, filters) == expected_stats(session, platform, batch, since, until), filters
                assert stats(session, filters, with_pairs=True) == expected_stats(
                    session, platform, batch, since, until, with_pairs=True
                ), filters
            for choice in [{"min_face_px": 28}, {"uncertain": "exclude"}, {"min_face_px": 21, "uncertain": "only"}]:
                filters = Filters(since=since, until=until, **choice)
                assert stats(session, filters, with_pairs=True) == expected_stats(
                    session, None, None, since, until, with_pairs=True, **choice
                ), filters
            for bucket, width in [("hour", "hour"), ("day", "day")]:
                got = timeline(session, Filters(since=since, until=until), bucket=bucket)["items"]
                counted: dict[datetime, Counter] = {}
                for face in faces:
                    if in_window(face.analyzed_at, since, until):
                        start = (
                            hour_of(face.analyzed_at) if width == "hour" else hour_of(face.analyzed_at).replace(hour=0)
                        )
                        counted.setdefault(start, Counter())[face.emotion] += 1
                assert [(item["start"], item["faces"]) for item in got] == [
                    (start, sum(counts.values())) for start, counts in sorted(counted.items())
                ], (bucket, since, until)


def test_time_filtered_face_pages_list_every_face_of_the_window_once(any_database: Database) -> None:
    with any_database.session() as session:
        seed_random(session)
        faces = session.scalars(select(Face)).all()
        for since, until in [*WINDOWS, *data_windows(faces)]:
            for platform, emotion in [(None, None), ("instagram", None), (None, "happy")]:
                expected = sorted(
                    (
                        f.id
                        for f in faces
                        if in_window(f.analyzed_at, since, until)
                        and platform in (None, f.platform)
                        and emotion in (None, f.emotion)
                    ),
                    reverse=True,
                )
                seen: list[int] = []
                cursor: int | None = None
                while True:
                    page, cursor = faces_page(
                        session, Filters(platform, since=since, until=until), emotion=emotion, limit=4, cursor=cursor
                    )
                    seen += [face.id for face in page]
                    if cursor is None:
                        break
                assert seen == expected, (platform, emotion, since, until)


def test_unfiltered_stats_read_the_rollups_not_the_rows(pg_database: Database) -> None:
    with pg_database.session() as session:
        seed_stats(session)
    with pg_database.session() as session, counting_statements(pg_database) as statements:
        stats(session)
    assert all("FROM images" not in s and "FROM faces" not in s for s in statements)
    assert any("FROM image_hours" in s for s in statements) and any("FROM face_hours" in s for s in statements)


def test_windows_at_the_ends_of_time(any_database: Database) -> None:
    """No hour to round to past the last one a datetime holds: those windows are counted from the rows."""
    first, last = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    with any_database.session() as session:
        seed_stats(session)
        for since, until in [(first, None), (None, last), (last - timedelta(minutes=30), None), (first, last)]:
            assert stats(session, Filters(since=since, until=until)) == expected_stats(
                session, None, None, since, until
            )
            assert (
                sum(item["faces"] for item in timeline(session, Filters(since=since, until=until))["items"])
                == stats(session, Filters(since=since, until=until))["faces"]
            )
            assert (
                len(faces_page(session, Filters(since=since, until=until), limit=50)[0])
                == stats(session, Filters(since=since, until=until))["faces"]
            )
