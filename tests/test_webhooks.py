"""Batch-end callbacks against a local receiver, on the real Postgres: signature, retries, refusal."""
# ruff: noqa: F811 - the API fixtures are imported from tests.test_api and named as parameters

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import update

from core.settings import Settings
from core.vocabulary import FAILED, PROCESSING
from db import Batch, Database
from db import callbacks as state
from db.schema import utcnow
from tests.factories import add_batch, add_image, jpeg_bytes
from tests.support import make_settings
from tests.test_api import broker, client, make_client, settings  # noqa: F401 - fixtures
from workers import webhooks
from workers.fetch import FetchPolicy

SECRET = "receiver-shares-this"


@dataclasses.dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@contextmanager
def receiver(statuses: list[int]) -> Iterator[tuple[str, list[Received]]]:
    """A local HTTP receiver answering `statuses` in turn (the last one repeats); yields its URL and requests."""
    received: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(Received(dict(self.headers), body))
            status = statuses[min(len(received), len(statuses)) - 1]
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/socialfer", received
    finally:
        server.shutdown()
        server.server_close()


def hook_settings(tmp_path: Path, **overrides) -> Settings:
    """Settings whose secret signs, whose policy lets the local receiver through, with short retries."""
    values = {"webhook_secret": SECRET, "allow_private_urls": True, "webhook_retry_base_delay": 0.2} | overrides
    return make_settings(tmp_path, **values)


def ended_batch(database: Database, url: str) -> int:
    """A batch of three images (two done with faces, one failed) whose callback is waiting."""
    with database.session() as session:
        batch = add_batch(session, total=3, name="campaign")
        batch.callback_url, batch.callback_state = url, state.WAITING
        add_image(session, batch, emotions=("happy", "happy"))
        add_image(session, batch, emotions=("sad",))
        failed = add_image(session, batch, status=FAILED)
        failed.error_code, failed.error_message = "http_404", "server answered 404"
        return batch.id


def callback_of(database: Database, batch_id: int) -> tuple[str | None, int, int | None, str | None]:
    with database.session() as session:
        batch = session.get(Batch, batch_id)
        return batch.callback_state, batch.callback_attempts, batch.callback_last_status, batch.callback_last_error


def independent_check(secret: str, header: str, body: bytes) -> int:
    """The README's receiver snippet, written out: returns the signed timestamp or fails."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"])
    return int(fields["t"])


def test_the_summary_arrives_signed_once_the_batch_ends(pg_database: Database, tmp_path: Path) -> None:
    with receiver([200]) as (url, received):
        batch_id = ended_batch(pg_database, url)
        with pg_database.session() as session:
            assert state.start_if_ended(session, batch_id)
            assert not state.start_if_ended(session, batch_id)  # only one worker starts it
        assert webhooks.deliver(pg_database, hook_settings(tmp_path), batch_id) is None
    assert len(received) == 1
    request = received[0]
    signed_at = independent_check(SECRET, request.headers["X-Socialfer-Signature"], request.body)
    assert abs(time.time() - signed_at) < 60
    assert request.headers["X-Socialfer-Delivery"] == f"batch-{batch_id}"
    summary = json.loads(request.body)
    assert summary["event"] == "batch.finished"
    assert {k: summary["batch"][k] for k in ("id", "total", "done", "failed", "faces")} == {
        "id": batch_id,
        "total": 3,
        "done": 2,
        "failed": 1,
        "faces": 3,
    }
    assert summary["failures"] == {"http_404": 1}
    assert summary["emotions"]["happy"] == {"count": 2, "share": pytest.approx(2 / 3)}
    assert callback_of(pg_database, batch_id) == ("delivered", 1, 200, None)
    assert not webhooks.verify_signature("another secret", request.body, request.headers["X-Socialfer-Signature"])
    assert not webhooks.verify_signature(SECRET, request.body + b" ", request.headers["X-Socialfer-Signature"])


def test_receivers_reject_a_signature_older_than_five_minutes() -> None:
    body = b'{"event":"batch.finished"}'
    header = webhooks.sign(SECRET, body, 1_000_000)
    assert webhooks.verify_signature(SECRET, body, header, now=1_000_000 + 299)
    assert not webhooks.verify_signature(SECRET, body, header, now=1_000_000 + 301)
    assert not webhooks.verify_signature(SECRET, body, "t=abc,v1=00")


def test_a_batch_with_images_left_does_not_start_its_callback(pg_database: Database) -> None:
    batch_id = ended_batch(pg_database, "http://127.0.0.1:9/hook")
    with pg_database.session() as session:
        add_image(session, session.get(Batch, batch_id), status=PROCESSING)
    with pg_database.session() as session:
        assert not state.start_if_ended(session, batch_id)
        assert state.ended_waiting_batches(session) == []
    assert callback_of(pg_database, batch_id)[0] == "waiting"


def test_a_500_is_retried_with_backoff_until_delivered(pg_database: Database, tmp_path: Path) -> None:
    settings = hook_settings(tmp_path)
    with receiver([500, 200]) as (url, received):
        batch_id = ended_batch(pg_database, url)
        with pg_database.session() as session:
            state.start_if_ended(session, batch_id)
        delay = webhooks.deliver(pg_database, settings, batch_id)
        assert delay == pytest.approx(0.2)
        assert callback_of(pg_database, batch_id) == ("pending", 1, 500, "receiver answered 500")
        assert webhooks.deliver(pg_database, settings, batch_id) is None  # a message before its time claims nothing
        assert len(received) == 1
        time.sleep(delay + 0.1)
        assert webhooks.deliver(pg_database, settings, batch_id) is None
    assert len(received) == 2
    assert callback_of(pg_database, batch_id) == ("delivered", 2, 200, None)
    assert webhooks.retry_delay(3, settings) == pytest.approx(0.8)
    assert webhooks.retry_delay(40, make_settings(tmp_path)) == 1800  # capped below Redis's visibility timeout


def test_a_failing_receiver_is_given_up_a_day_after_the_batch_ended(pg_database: Database, tmp_path: Path) -> None:
    with receiver([503]) as (url, received):
        batch_id = ended_batch(pg_database, url)
        with pg_database.session() as session:
            state.start_if_ended(session, batch_id, now=utcnow() - timedelta(hours=24))
        assert webhooks.deliver(pg_database, hook_settings(tmp_path), batch_id) is None
    assert len(received) == 1
    assert callback_of(pg_database, batch_id) == ("failed", 1, 503, "receiver answered 503")


def test_a_private_address_is_refused_without_a_request(pg_database: Database, tmp_path: Path) -> None:
    with receiver([200]) as (url, received):
        batch_id = ended_batch(pg_database, url)
        with pg_database.session() as session:
            state.start_if_ended(session, batch_id)
        strict = FetchPolicy(allow_private=False, allowed_ports=None)
        assert webhooks.deliver(pg_database, hook_settings(tmp_path), batch_id, policy=strict) is None
    assert received == []
    callback = callback_of(pg_database, batch_id)
    assert callback[:3] == ("failed", 1, None)
    assert callback[3].startswith("blocked_address")


def test_the_sweeper_starts_missed_callbacks_and_republishes_overdue_ones(pg_database: Database) -> None:
    batch_id = ended_batch(pg_database, "http://127.0.0.1:9/hook")
    with pg_database.session() as session:
        assert state.ended_waiting_batches(session) == [batch_id]
        assert state.overdue(session, timedelta(seconds=60)) == []
        session.execute(update(Batch).values(callback_due_at=utcnow() - timedelta(minutes=5)))
    with pg_database.session() as session:
        assert state.overdue(session, timedelta(seconds=60)) == [batch_id]


def test_callback_url_on_a_batch_and_on_an_upload(client, make_client) -> None:
    response = client.post(
        "/api/v1/batches", json={"urls": ["https://x.example/a.jpg"], "callback_url": "https://r.example/h"}
    )
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["callback"] == {
        "state": "waiting",
        "attempts": 0,
        "last_status": None,
        "last_error": None,
    }
    upload = client.post(
        "/api/v1/uploads",
        data={"files": [(io.BytesIO(jpeg_bytes(8, 8)), "a.jpg")], "callback_url": "https://r.example/u"},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 202 and upload.get_json()["callback"]["state"] == "waiting"
    bad = client.post(
        "/api/v1/batches", json={"urls": ["https://x.example/a.jpg"], "callback_url": "ftp://r.example/h"}
    )
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_callback_url"
    unsigned = make_client(webhook_secret="").post(
        "/api/v1/batches", json={"urls": ["https://x.example/a.jpg"], "callback_url": "https://r.example/h"}
    )
    assert unsigned.status_code == 400 and "SOCIALFER_WEBHOOK_SECRET" in unsigned.get_json()["error"]["message"]
    plain = client.post("/api/v1/batches", json={"urls": ["https://x.example/a.jpg"]}).get_json()
    assert plain["callback"] is None
