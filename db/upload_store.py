"""Uploaded files into the database a block at a time, and the bound on what queued uploads occupy.

A file is never held whole in the API's memory: werkzeug spools it to a temporary file,
and from there it is copied into `image_files.data` in `BLOCK_BYTES` pieces — on Postgres
through `COPY ... FROM STDIN` (the bytea value written as hex as it is read), on SQLite
into a zero-filled blob through incremental blob I/O. Upload rows live only until their
image is analysed (or fails), so their total is what the queue holds; `reserve_upload_bytes`
refuses a batch that would take it over the configured bound. On Postgres an advisory lock
serialises the check across API processes; SQLite has one writer at a time anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from db.schema import UPLOAD, ImageFile

BLOCK_BYTES = 1024 * 1024
UPLOAD_QUOTA_LOCK = 0x736F6369  # pg_advisory_xact_lock key for the queued-upload bound ("soci")


class UploadQueueFull(Exception):
    def __init__(self, queued: int, adding: int, limit: int):
        super().__init__(f"queued uploads hold {queued:,} bytes; {adding:,} more would pass the bound of {limit:,}")
        self.queued, self.adding, self.limit = queued, adding, limit


@dataclass(frozen=True)
class UploadStream:
    """An uploaded file still on the request's spool: its stream (rewound), size and sniffed type."""

    stream: BinaryIO
    size: int
    content_type: str


def queued_upload_bytes(session: Session) -> int:
    total = select(func.coalesce(func.sum(func.length(ImageFile.data)), 0)).where(ImageFile.kind == UPLOAD)
    return session.scalar(total)


def reserve_upload_bytes(session: Session, adding: int, limit: int) -> None:
    """Raise UploadQueueFull unless `adding` more bytes fit beside what queued uploads hold now."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPLOAD_QUOTA_LOCK})
    queued = queued_upload_bytes(session)
    if queued + adding > limit:
        raise UploadQueueFull(queued, adding, limit)


def blocks(stream: BinaryIO) -> Iterator[bytes]:
    stream.seek(0)
    return iter(lambda: stream.read(BLOCK_BYTES), b"")


def store_upload(session: Session, image_id: int, upload: UploadStream, created: datetime) -> None:
    """One `image_files` upload row, its bytes copied from the stream block by block."""
    raw = session.connection().connection.driver_connection
    if session.get_bind().dialect.name == "postgresql":
        copy_sql = "COPY image_files (image_id, kind, content_type, data, created_at) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
            copy.write(f"{image_id}\t{UPLOAD}\t{upload.content_type}\t\\\\x")
            for block in blocks(upload.stream):
                copy.write(block.hex())
            copy.write(f"\t{created.isoformat()}\n")
        return
    cursor = raw.execute(
        "INSERT INTO image_files (image_id, kind, content_type, data, created_at) VALUES (?, ?, ?, zeroblob(?), ?)",
        (image_id, UPLOAD, upload.content_type, upload.size, created.strftime("%Y-%m-%d %H:%M:%S.%f")),
    )
    with raw.blobopen("image_files", "data", cursor.lastrowid) as blob:
        for block in blocks(upload.stream):
            blob.write(block)
