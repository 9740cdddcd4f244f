"""The stored model: batches of images, images, and the faces found in them.

Faces repeat their image's platform, batch and analysis time so that aggregate
queries filter and group on one table. Two rollup tables count the analysed images
and the faces per UTC hour, so the dashboard's totals read thousands of rows, not
millions; database triggers (migrations 0004 and 0007) keep them exact whoever writes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.vocabulary import EMOTIONS, QUEUED

UPLOAD_URL_PREFIX = "upload:"  # an image sent as a file: its bytes wait in image_files, kind "upload"
UPLOAD, PREVIEW = "upload", "preview"
# The hour under which image_hours counts a done image without a finish time (none in practice:
# the worker stamps both together); a time filter never matches it, as it never matches NULL.
NO_FINISH_HOUR = datetime(1970, 1, 1, tzinfo=UTC)
# Each unordered pair of emotions (a pair with itself included), in EMOTIONS order: face_hours keeps,
# per pair, the sum over images of (faces of the one) x (faces of the other), for clustered intervals.
EMOTION_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (first, second) for index, first in enumerate(EMOTIONS) for second in EMOTIONS[index:]
)


def pair_column(first: str, second: str) -> str:
    """face_hours' column for a pair of emotions, in either order."""
    ordered = sorted((first, second), key=EMOTIONS.index)
    return f"pair_{ordered[0]}_{ordered[1]}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class EmotionCounts:
    """A count column per emotion (EMOTIONS order), for the rollups that count faces by emotion."""

    angry: Mapped[int] = mapped_column(Integer)
    disgust: Mapped[int] = mapped_column(Integer)
    fear: Mapped[int] = mapped_column(Integer)
    happy: Mapped[int] = mapped_column(Integer)
    sad: Mapped[int] = mapped_column(Integer)
    surprise: Mapped[int] = mapped_column(Integer)
    neutral: Mapped[int] = mapped_column(Integer)

    @property
    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in EMOTIONS}


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    platform: Mapped[str | None] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The batch-end callback (db/callbacks.py): waiting -> pending (sending or retrying) -> delivered | failed.
    callback_url: Mapped[str | None] = mapped_column(Text)
    callback_state: Mapped[str | None] = mapped_column(String(16), index=True)
    callback_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    callback_last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status
    callback_last_error: Mapped[str | None] = mapped_column(Text)
    callback_ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # when the batch ended
    callback_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # next attempt, or lease end

    images: Mapped[list[Image]] = relationship(back_populates="batch", order_by="Image.id")


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        Index("ix_images_batch_status", "batch_id", "status"),
        Index("ix_images_status_enqueued", "status", "enqueued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    platform: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED, index=True)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(100))
    byte_size: Mapped[int | None] = mapped_column(Integer)
    face_count: Mapped[int | None] = mapped_column(Integer)
    # Detection's limits on this image (migration 0008): faces found beyond SOCIALFER_MAX_FACES, the
    # smallest face size looked for (NULL: analysed before 0008), whether the scan's pixel ceiling bound.
    faces_beyond_cap: Mapped[int] = mapped_column(Integer, server_default="0")
    min_face_px: Mapped[int | None] = mapped_column(Integer)
    scan_capped: Mapped[bool] = mapped_column(Boolean, server_default=false())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    fetch_ms: Mapped[float | None] = mapped_column(Float)
    analyze_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When its task was last published: the sweeper's clock for images whose message was lost.
    enqueued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)

    batch: Mapped[Batch] = relationship(back_populates="images")
    faces: Mapped[list[Face]] = relationship(
        back_populates="image", order_by="Face.id", cascade="all, delete-orphan", passive_deletes=True
    )


class Face(Base):
    __tablename__ = "faces"
    __table_args__ = (Index("ix_faces_analyzed_emotion", "analyzed_at", "emotion"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    batch_id: Mapped[int] = mapped_column(Integer, index=True)
    platform: Mapped[str] = mapped_column(String(16), index=True)
    analyzed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    w: Mapped[int] = mapped_column(Integer)
    h: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    emotion: Mapped[str] = mapped_column(String(16), index=True)
    score_angry: Mapped[float] = mapped_column(Float)
    score_disgust: Mapped[float] = mapped_column(Float)
    score_fear: Mapped[float] = mapped_column(Float)
    score_happy: Mapped[float] = mapped_column(Float)
    score_sad: Mapped[float] = mapped_column(Float)
    score_surprise: Mapped[float] = mapped_column(Float)
    score_neutral: Mapped[float] = mapped_column(Float)
    # The box's shorter side (original pixels): what the 48 x 48 crop was made from (migration 0008);
    # writers set it (db.lifecycle.record_success), the migration backfilled it from the boxes.
    size_px: Mapped[int] = mapped_column(Integer, server_default="0")
    low_resolution: Mapped[bool] = mapped_column(Boolean, server_default=false())
    uncertain: Mapped[bool] = mapped_column(Boolean, server_default=false())

    image: Mapped[Image] = relationship(back_populates="faces")

    @property
    def box(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    @property
    def scores(self) -> dict[str, float]:
        return {name: getattr(self, f"score_{name}") for name in EMOTIONS}


class ImageFile(Base):
    """Bytes that belong to an image: an uploaded original (until analysed) or a downscaled preview.

    Kept in the database, not on a disk, so any worker on any host can read an upload and
    any API process can serve a preview.
    """

    __tablename__ = "image_files"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class ImageHour(Base):
    """Done images per UTC hour of `finished_at` and platform, and how many of them hold a face.

    Written only by the triggers of migration 0004 on `images` (insert, update, delete,
    truncate), so it always equals counting the images themselves.
    """

    __tablename__ = "image_hours"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    images: Mapped[int] = mapped_column(Integer)
    images_with_faces: Mapped[int] = mapped_column(Integer)


class FaceHour(EmotionCounts, Base):
    """Faces per UTC hour of `analyzed_at` and platform, one count per emotion, kept by triggers on `faces`.

    One row per hour and platform (not per emotion too): a third of the rows to add up, and
    one row for a worker's transaction to update however many emotions its image shows.
    `min_face_id`/`max_face_id` bound the ids of the faces counted in the row (deletes leave
    them wide, never wrong): a time-filtered listing uses them to start its id-ordered scan
    where the window's faces are instead of reading through every newer face.
    """

    __tablename__ = "face_hours"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    min_face_id: Mapped[int] = mapped_column(Integer)
    max_face_id: Mapped[int] = mapped_column(Integer)
    # pair_<e>_<f> (28 columns, EMOTION_PAIRS): the sum over the row's images of c_e x c_f, c_e
    # being the image's faces of emotion e (image_face_counts). With the counts, the exact
    # sufficient statistics of a share's cluster-robust variance (analysis/clustered.py).
    for _first, _second in EMOTION_PAIRS:
        locals()[pair_column(_first, _second)] = mapped_column(BigInteger, nullable=False, server_default="0")
    del _first, _second

    @property
    def pairs(self) -> dict[tuple[str, str], int]:
        return {pair: getattr(self, pair_column(*pair)) for pair in EMOTION_PAIRS}


class ImageFaceCount(EmotionCounts, Base):
    """One image's faces per emotion, within one UTC hour of `analyzed_at` and platform (in practice
    always all of them: the worker stores an image's faces with one time and platform).

    Kept by the triggers on `faces` (migration 0007) so that face_hours' pair sums can be
    updated exactly, even by concurrent writers: every change to a row here changes those sums
    by new x new - old x old. Not a foreign key to images: the cascade from a deleted image
    would remove a row before its faces' triggers subtract them.
    """

    __tablename__ = "image_face_counts"

    image_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)


class ApiKey(Base):
    """An API key: only its SHA-256 is stored (keys are 256-bit random tokens, so a fast hash is
    enough and lets each request be checked with one indexed lookup); the key itself is shown
    once, when it is created. `prefix` is its first characters, to recognise it in a list."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One write, delete or key change: who (the key's name), what, on what, how many."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(Integer, default=0)


class FaceFlagHour(Base):
    """Faces flagged `uncertain` and `low_resolution` per UTC hour of `analyzed_at` and platform.

    Kept by triggers of its own on `faces` (migration 0008), beside face_hours', so `/stats`
    counts the flagged faces apart from the rollups as it counts the emotions.
    """

    __tablename__ = "face_flag_hours"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    uncertain: Mapped[int] = mapped_column(Integer)
    low_resolution: Mapped[int] = mapped_column(Integer)
