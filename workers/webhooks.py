"""Batch-end callbacks: a signed POST of the batch's summary to the `callback_url` given at submission.

The body is JSON; the `X-Socialfer-Signature` header is `t=<unix seconds>,v1=<hex>` where
the hex is HMAC-SHA256 with `SOCIALFER_WEBHOOK_SECRET` over `f"{t}.".encode() + body`.
Receivers recompute it and reject a timestamp older than five minutes (`verify_signature`).
Delivery goes through the image fetcher's SSRF policy (workers.fetch: the address is checked,
then connected to as checked; no redirects followed), is retried with exponential backoff
while the receiver fails, and gives up `webhook_give_up_after` (24 h) after the batch ended.
Delivery is at least once: a receiver should use `X-Socialfer-Delivery` to drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import requests

from core.filters import Filters
from db import Batch, Database
from db import callbacks as state
from db.queries import batch_counts, stats
from db.schema import utcnow
from workers.celery_app import QUEUE
from workers.fetch import FetchError, FetchPolicy, PinnedAdapter, check_url, host_header, pinned_url
from workers.metrics import WEBHOOK_DELIVERIES

if TYPE_CHECKING:
    from celery import Celery

    from core.settings import Settings

log = logging.getLogger(__name__)

DELIVER_CALLBACK = "socialfer.deliver_callback"
SIGNATURE_HEADER = "X-Socialfer-Signature"
DELIVERY_HEADER = "X-Socialfer-Delivery"
MAX_SIGNATURE_AGE = 300  # seconds a receiver should accept
PERMANENT_CODES = {"unsupported_scheme", "credentials_in_url", "invalid_url", "blocked_port", "blocked_address"}


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, body: bytes, header: str, *, max_age: float = MAX_SIGNATURE_AGE, now: float | None = None
) -> bool:
    """What a receiver does: the signature matches and the timestamp is at most `max_age` seconds old."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > max_age:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def batch_summary(database: Database, batch_id: int) -> dict[str, Any]:
    """What the callback says: the batch's counts, its emotion shares and its failure codes."""
    with database.session() as session:
        batch = session.get(Batch, batch_id)
        counts = batch_counts(session, [batch_id])[batch_id]
        summary = stats(session, Filters(batch_id=batch_id))
        return {
            "event": "batch.finished",
            "batch": {"id": batch_id, "name": batch.name, "total": batch.total, **counts},
            "emotions": summary["emotions"],
            "failures": state.failure_codes(session, batch_id),
        }


@dataclass(frozen=True)
class Delivery:
    status: int | None  # the receiver's HTTP status, None if none answered
    error: str | None  # why it did not count as delivered
    permanent: bool = False  # refused by policy: retrying cannot help


def post_signed(url: str, body: bytes, headers: dict[str, str], settings: Settings, policy: FetchPolicy) -> Delivery:
    """One POST to a checked, pinned address; a redirect is not followed (it would skip the check)."""
    try:
        target = check_url(url, policy)
    except FetchError as exc:
        return Delivery(None, f"{exc.code}: {exc.message}", exc.code in PERMANENT_CODES)
    session = requests.Session()
    session.trust_env = False
    session.mount(f"{target.scheme}://", PinnedAdapter(target.host))
    try:
        response = session.post(
            pinned_url(target),
            data=body,
            headers={**headers, "Host": host_header(target), "Content-Type": "application/json"},
            allow_redirects=False,
            timeout=(settings.connect_timeout, settings.read_timeout),
            verify=settings.ca_bundle or True,
        )
    except requests.RequestException as exc:
        return Delivery(None, f"{exc.__class__.__name__}: {exc}"[:500])
    finally:
        session.close()
    if 200 <= response.status_code < 300:
        return Delivery(response.status_code, None)
    return Delivery(response.status_code, f"receiver answered {response.status_code}")


def retry_delay(attempt: int, settings: Settings) -> float:
    return min(settings.webhook_retry_max_delay, settings.webhook_retry_base_delay * 2 ** (attempt - 1))


def publish(app: Celery, batch_ids: list[int], countdown: float | None = None) -> None:
    with app.producer_or_acquire() as producer:
        for batch_id in batch_ids:
            app.send_task(DELIVER_CALLBACK, args=[batch_id], queue=QUEUE, producer=producer, countdown=countdown)


def start_if_batch_ended(app: Celery, database: Database, batch_id: int) -> bool:
    """Called after an image's final state: the worker that finished the batch's last image sends its callback."""
    with database.session() as session:
        started = state.start_if_ended(session, batch_id)
    if started:
        try:
            publish(app, [batch_id])
        except Exception as exc:  # the sweeper publishes overdue callbacks again
            log.warning("callback of batch %s not published (%s); the sweeper will retry", batch_id, exc)
    return started


def deliver(database: Database, settings: Settings, batch_id: int, policy: FetchPolicy | None = None) -> float | None:
    """One attempt at the batch's callback; returns the delay before the next one, or None when settled."""
    lease = timedelta(seconds=settings.connect_timeout + 2 * settings.read_timeout + 30)
    with database.session() as session:
        attempt = state.claim_attempt(session, batch_id, lease)
    if attempt is None:
        return None  # not due, already settled, or another task has it
    body = json.dumps(batch_summary(database, batch_id), separators=(",", ":")).encode()
    headers = {
        SIGNATURE_HEADER: sign(settings.webhook_secret, body, int(time.time())),
        DELIVERY_HEADER: f"batch-{batch_id}",
        "User-Agent": "socialfer-webhook/0.1",
    }
    result = post_signed(attempt.url, body, headers, settings, policy or FetchPolicy.from_settings(settings))
    now = utcnow()
    delay = retry_delay(attempt.attempt, settings)
    gave_up = (now - attempt.ended_at).total_seconds() + delay > settings.webhook_give_up_after
    if result.error is None:
        outcome, next_state, due = "delivered", state.DELIVERED, None
    elif result.permanent:
        outcome, next_state, due = "refused", state.CALLBACK_FAILED, None
    elif gave_up:
        outcome, next_state, due = "failed", state.CALLBACK_FAILED, None
    else:
        outcome, next_state, due = "retry", state.PENDING, now + timedelta(seconds=delay)
    with database.session() as session:
        state.record_attempt(session, batch_id, state=next_state, status=result.status, error=result.error, due_at=due)
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    log.info("callback of batch %s, attempt %s: %s (%s)", batch_id, attempt.attempt, outcome, result.error or "ok")
    return delay if due is not None else None


def sweep_callbacks(app: Celery, database: Database, grace: float) -> list[int]:
    """The sweeper's part: start callbacks of batches that ended unnoticed, republish overdue ones."""
    with database.session() as session:
        ids = state.ended_waiting_batches(session) + state.overdue(session, timedelta(seconds=grace))
    if ids:
        publish(app, ids)
    return ids
