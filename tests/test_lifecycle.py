"""Every transition of db.lifecycle, on Postgres and SQLite, with the invariants checked after each:
faces only on done images, no upload bytes on terminal images, rollups equal to counts from the rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select

from core.vocabulary import DONE, EMOTIONS, FAILED, PROCESSING, QUEUED, TERMINAL_STATES
from db import PREVIEW, UPLOAD, Batch, Database, Face, Image, ImageFile
from db.lifecycle import (
    NewImage,
    UploadedFile,
    claim,
    delete_batch,
    delete_image,
    give_up,
    locked_image,
    prune_previews,
    record_failure,
    record_success,
    requeue,
    schedule_retry,
    store_batch,
    withdraw_batch,
)
from db.queries import stats
from db.schema import utcnow
from tests.test_queries import assert_rollups_match

PHOTO = UploadedFile(b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg")


@dataclass
class FoundFace:
    emotion: str
    box: list[int] = field(default_factory=lambda: [1, 2, 30, 30])
    confidence: float = 0.99

    @property
    def scores(self) -> dict[str, float]:
        return {name: 0.94 if name == self.emotion else 0.01 for name in EMOTIONS}


def assert_invariants(database: Database) -> None:
    with database.session() as session:
        faces_elsewhere = session.scalar(
            select(func.count()).select_from(Face).join(Image, Image.id == Face.image_id).where(Image.status != DONE)
        )
        assert faces_elsewhere == 0, "faces on an image that is not done"
        uploads_on_terminal = session.scalar(
            select(func.count())
            .select_from(ImageFile)
            .join(Image, Image.id == ImageFile.image_id)
            .where(ImageFile.kind == UPLOAD, Image.status.in_(TERMINAL_STATES))
        )
        assert uploads_on_terminal == 0, "upload bytes kept on a terminal image"
        for image in session.scalars(select(Image).where(Image.status == DONE)):
            assert image.face_count == len(image.faces)
        counted_faces = session.scalar(select(func.count()).select_from(Face))
        assert stats(session)["faces"] == counted_faces
    assert_rollups_match(database)


def status_of(database: Database, image_id: int) -> str | None:
    with database.session() as session:
        image = session.get(Image, image_id)
        return None if image is None else image.status


def upload_kept(database: Database, image_id: int) -> bool:
    with database.session() as session:
        return session.get(ImageFile, (image_id, UPLOAD)) is not None


def new_uploads(database: Database, count: int) -> list[int]:
    _, ids = store_batch(
        database, [NewImage(f"upload:p{i}.jpg", "other", PHOTO) for i in range(count)], name=None, platform=None
    )
    return ids


def test_store_claim_succeed(any_database: Database) -> None:
    batch_id, ids = store_batch(
        any_database,
        [NewImage("https://a.example/1.jpg", "twitter"), NewImage("upload:2.jpg", "other", PHOTO)],
        name="two",
        platform=None,
    )
    assert [status_of(any_database, i) for i in ids] == [QUEUED, QUEUED] and upload_kept(any_database, ids[1])
    assert_invariants(any_database)

    claimed = claim(any_database, ids[1])
    assert claimed is not None and claimed.attempts == 1 and status_of(any_database, ids[1]) == PROCESSING
    record_success(any_database, ids[1], [FoundFace("happy"), FoundFace("sad")], {"width": 10}, b"preview")
    assert status_of(any_database, ids[1]) == DONE and not upload_kept(any_database, ids[1])
    assert_invariants(any_database)

    record_success(any_database, ids[1], [FoundFace("happy"), FoundFace("sad")], {}, b"preview")  # redelivered
    with any_database.session() as session:
        assert session.scalar(select(func.count()).select_from(Face)) == 2
        assert session.get(Batch, batch_id).total == 2
    assert claim(any_database, ids[1]) is None  # terminal: left alone
    assert_invariants(any_database)


def test_failure_is_terminal_and_drops_the_upload(any_database: Database) -> None:
    (image_id,) = new_uploads(any_database, 1)
    claim(any_database, image_id)
    record_failure(any_database, image_id, "corrupt_image", "x" * 5000)
    with any_database.session() as session:
        image = session.get(Image, image_id)
        assert (image.status, image.error_code, len(image.error_message)) == (FAILED, "corrupt_image", 2000)
    assert not upload_kept(any_database, image_id)
    record_failure(any_database, image_id, "other", "ignored")  # terminal: left alone
    assert_invariants(any_database)


def test_retry_keeps_the_upload_and_the_last_error(any_database: Database) -> None:
    (image_id,) = new_uploads(any_database, 1)
    claim(any_database, image_id)
    schedule_retry(any_database, image_id, "timeout", "slow server")
    with any_database.session() as session:
        image = session.get(Image, image_id)
        assert (image.status, image.error_code) == (QUEUED, "timeout")
    assert upload_kept(any_database, image_id)
    assert_invariants(any_database)
    assert claim(any_database, image_id).attempts == 2
    record_success(any_database, image_id, [FoundFace("neutral")], {})
    with any_database.session() as session:
        assert session.get(Image, image_id).error_code is None
    assert_invariants(any_database)


def test_sweeper_requeue_and_give_up(any_database: Database) -> None:
    """The give-up path used to leave the upload's bytes behind for ever."""
    lost, kept = new_uploads(any_database, 2)
    for image_id in (lost, kept):
        claim(any_database, image_id)
    now = utcnow()
    with any_database.session() as session:
        give_up(session, locked_image(session, lost), now)
        requeue(locked_image(session, kept), now)
    with any_database.session() as session:
        image = session.get(Image, lost)
        assert (image.status, image.error_code) == (FAILED, "worker_lost")
    assert not upload_kept(any_database, lost)
    assert status_of(any_database, kept) == QUEUED and upload_kept(any_database, kept)
    assert_invariants(any_database)


def test_erasure_removes_everything_and_keeps_stats_exact(any_database: Database) -> None:
    batch_id, ids = store_batch(
        any_database, [NewImage(f"upload:{i}.jpg", "instagram", PHOTO) for i in range(3)], name=None, platform=None
    )
    other_batch, (other,) = store_batch(
        any_database, [NewImage("https://b.example/x.jpg", "twitter")], name=None, platform=None
    )
    for image_id in (*ids, other):
        claim(any_database, image_id)
        record_success(any_database, image_id, [FoundFace("happy"), FoundFace("fear")], {}, b"preview")
    assert_invariants(any_database)

    assert delete_image(any_database, ids[0]) and not delete_image(any_database, ids[0])
    with any_database.session() as session:
        assert session.get(Batch, batch_id).total == 2
    assert_invariants(any_database)

    assert delete_batch(any_database, batch_id) == 2 and delete_batch(any_database, batch_id) is None
    with any_database.session() as session:
        for model, column in ((Image, Image.batch_id), (Face, Face.batch_id)):
            assert session.scalar(select(func.count()).select_from(model).where(column == batch_id)) == 0
        assert session.scalar(select(func.count()).select_from(ImageFile).where(ImageFile.image_id.in_(ids))) == 0
        assert stats(session)["faces"] == 2 and stats(session)["images"] == 1
    assert_invariants(any_database)

    withdraw_batch(any_database, other_batch)
    with any_database.session() as session:
        assert session.scalar(select(func.count()).select_from(Image)) == 0
    assert_invariants(any_database)


def test_prune_previews_keeps_faces(any_database: Database) -> None:
    (image_id,) = new_uploads(any_database, 1)
    claim(any_database, image_id)
    record_success(any_database, image_id, [FoundFace("surprise")], {}, b"preview")
    with any_database.session() as session:
        assert prune_previews(session, utcnow() - timedelta(days=1)) == 0
        assert prune_previews(session, utcnow() + timedelta(seconds=1)) == 1
    with any_database.session() as session:
        assert session.get(ImageFile, (image_id, PREVIEW)) is None
        assert session.scalar(select(func.count()).select_from(Face)) == 1
    assert_invariants(any_database)
