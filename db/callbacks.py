"""The batch-end callback's state, one conditional UPDATE per step so concurrent workers agree.

`waiting` (the batch has images left) -> `pending` (the batch ended; due for an attempt) ->
`delivered` or `failed`. Every transition is a single UPDATE ... WHERE on the batch row:
the database serialises writers on that row, so exactly one worker starts a callback, and
exactly one task claims each attempt (a duplicate or early message finds nothing to claim).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from core.vocabulary import FAILED, PROCESSING, QUEUED
from db.schema import Batch, Image, utcnow

WAITING, PENDING, DELIVERED, CALLBACK_FAILED = "waiting", "pending", "delivered", "failed"


@dataclass(frozen=True)
class Attempt:
    """A claimed delivery attempt: where to send, which attempt this is, when the batch ended."""

    batch_id: int
    url: str
    attempt: int
    ended_at: datetime


def unfinished_images(batch_id):
    return exists().where(Image.batch_id == batch_id, Image.status.in_((QUEUED, PROCESSING)))


def start_if_ended(session: Session, batch_id: int, now: datetime | None = None) -> bool:
    """`waiting` -> `pending` once no image of the batch is queued or processing; True for the caller that did it."""
    now = now or utcnow()
    started = session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.callback_state == WAITING, ~unfinished_images(batch_id))
        .values(callback_state=PENDING, callback_ended_at=now, callback_due_at=now)
        .returning(Batch.id)
    ).first()
    return started is not None


def ended_waiting_batches(session: Session, now: datetime | None = None) -> list[int]:
    """Start the callbacks of batches that ended without a worker noticing (e.g. the sweeper gave up an image)."""
    ids = session.scalars(
        select(Batch.id).where(Batch.callback_state == WAITING, ~unfinished_images(Batch.id)).limit(1000)
    ).all()
    return [batch_id for batch_id in ids if start_if_ended(session, batch_id, now)]


def overdue(session: Session, grace: timedelta, now: datetime | None = None) -> list[int]:
    """Pending callbacks whose attempt is overdue by `grace`: their message was lost (a broker restart)."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(Batch.id).where(Batch.callback_state == PENDING, Batch.callback_due_at < now - grace).limit(1000)
        )
    )


def claim_attempt(session: Session, batch_id: int, lease: timedelta, now: datetime | None = None) -> Attempt | None:
    """Take the due attempt: count it and move `due_at` past the lease, so no other message takes it meanwhile."""
    now = now or utcnow()
    row = session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.callback_state == PENDING, Batch.callback_due_at <= now)
        .values(callback_attempts=Batch.callback_attempts + 1, callback_due_at=now + lease)
        .returning(Batch.callback_url, Batch.callback_attempts, Batch.callback_ended_at)
    ).first()
    if row is None:
        return None
    return Attempt(batch_id, row[0], row[1], row[2] or now)


def record_attempt(
    session: Session,
    batch_id: int,
    *,
    state: str,
    status: int | None,
    error: str | None,
    due_at: datetime | None = None,
) -> None:
    """The attempt's result: `delivered`, `failed`, or `pending` again until `due_at`."""
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.callback_state == PENDING)
        .values(callback_state=state, callback_last_status=status, callback_last_error=error, callback_due_at=due_at)
    )


def failure_codes(session: Session, batch_id: int) -> dict[str, int]:
    """Failed images per error code, most frequent first."""
    rows = session.execute(
        select(Image.error_code, func.count())
        .where(Image.batch_id == batch_id, Image.error_code.is_not(None), Image.status == FAILED)
        .group_by(Image.error_code)
        .order_by(func.count().desc(), Image.error_code)
    )
    return {code: int(count) for code, count in rows}
